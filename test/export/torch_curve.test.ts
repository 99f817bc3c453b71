/**
 * An exported training run learns as vmm does (issue #24): a small VAE trained by vmm (the library's
 * Trainer, wasm) and by the exported train.py (PyTorch, CPU) from the same initial weights, with
 * the same batch, learning rate and steps, gives the same bound curve within Monte Carlo error.
 *
 * Each side trains R runs that differ only in their data and noise seeds. The curve is cut into W
 * windows of steps; each run's figure in a window is its mean training bound there. In each window
 * the two sides' means are compared with a two-sample t statistic whose standard error is the
 * measured spread between runs (pooled over both sides): it holds the batch-to-batch noise of the
 * bound and the run-to-run spread of the trajectories (larger here: about 3 nats against 1.5 within
 * a run), so no tolerance is set by hand. The critical value is Student's t with 2R - 2 degrees of
 * freedom at a two-sided 0.1 % over the W windows (Bonferroni).
 *
 * Checked by hand once (2026-12, R = 4): the exported package with a learning rate 10x larger fails
 * in the first window (t = -39), 10x smaller in every window (t = 35 to 187); the same settings
 * give |t| < 1 (the four windows: -0.13, -0.82, -0.59, -0.35).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { load, loadWeights, saveWeights, train } from '../../src/index.ts';
import { exportTo, torchMissing, torchPython } from './torch_helpers.ts';

const has = torchPython() !== undefined;
if (!has && process.env['VMM_REQUIRE_TORCH'] === '1') throw new Error(`VMM_REQUIRE_TORCH=1: ${torchMissing}`);

/** models/vae.vmm at a fraction of its width: 200 steps take about a second on each side. */
const TINY_VAE = `model tiny_vae
const D = 28 * 28
const Z = 8
data x : binary[D]
net enc = mlp(D, 64, 2 * Z)
net dec = mlp(Z, 64, D)
latent z : real[Z] ~ Normal(loc: 0, scale: 1)
observe x ~ Bernoulli(logits: dec(z))
guide {
  z ~ Normal(enc(x))
}
train {
  estimator = iwae(k: 1)
  optimizer = adam(lr: 3e-3)
  batch = 32
  dataset = mnist
}
`;

const STEPS = 200;
const RUNS = 4;
const WINDOWS = 4;
/** Student's t quantile, 2 * RUNS - 2 = 6 degrees of freedom, at 1 - 0.001 / (2 * WINDOWS). */
const T_CRITICAL = 7.71;

/** Runs `python args` and resolves with its exit status and output. */
function python(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    const p = spawn(torchPython()!, args, { env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (status) => done({ status, out }));
  });
}

function meanSd(xs: number[]): { mean: number; variance: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, variance: xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1) };
}

describe.skipIf(!has)(`the bound curve of an exported training run (${has ? torchPython() : torchMissing})`, () => {
  it(`matches vmm's within Monte Carlo error (tiny VAE, ${RUNS} runs a side, ${STEPS} steps of batch 32)`, async () => {
    const { dir } = exportTo(TINY_VAE, undefined, true);
    const work = mkdtempSync(join(tmpdir(), 'vmm-curve-'));
    const init = join(work, 'init.safetensors');
    const first = await load(TINY_VAE, { backend: { force: 'wasm' }, seed: 1 });
    await saveWeights(first, init);
    first.dispose();

    const vmm: number[][] = [];
    for (let r = 1; r <= RUNS; r++) {
      const trainer = await load(TINY_VAE, { backend: { force: 'wasm' }, seed: 100 + r });
      loadWeights(trainer, init);
      const bounds: number[] = [];
      await train(trainer, { steps: STEPS, seed: 100 + r, onStep: (m) => bounds.push(m.bound) });
      trainer.dispose();
      vmm.push(bounds);
    }

    // Two processes at a time (the machine has two cores).
    const torch: number[][] = [];
    for (let r = 1; r <= RUNS; r += 2) {
      const pair = [r, r + 1].filter((s) => s <= RUNS);
      const outs = await Promise.all(
        pair.map((s) =>
          python([join(dir, 'train.py'), '--steps', String(STEPS), '--log-every', '1', '--valid-every', '0', '--device', 'cpu', '--seed', String(100 + s), '--init', init, '--out', join(work, `run${s}`)]),
        ),
      );
      for (const [i, o] of outs.entries()) {
        expect(o.status, o.out).toBe(0);
        const records = readFileSync(join(work, `run${pair[i]}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; bound: number });
        const train = records.filter((m) => m.kind === 'train');
        expect(train.map((m) => m.step)).toEqual(Array.from({ length: STEPS }, (_, k) => k + 1));
        torch.push(train.map((m) => m.bound));
      }
    }

    const width = STEPS / WINDOWS;
    const rows: string[] = [];
    const ts: number[] = [];
    for (let w = 0; w < WINDOWS; w++) {
      const figure = (curve: number[]) => meanSd(curve.slice(w * width, (w + 1) * width)).mean;
      const a = meanSd(vmm.map(figure));
      const b = meanSd(torch.map(figure));
      const se = Math.sqrt(((a.variance + b.variance) / 2) * (2 / RUNS));
      const t = (a.mean - b.mean) / se;
      ts.push(t);
      rows.push(`steps ${w * width + 1}-${(w + 1) * width}: vmm ${a.mean.toFixed(2)}, export ${b.mean.toFixed(2)}, se of the difference ${se.toFixed(2)}, t ${t.toFixed(2)}`);
    }
    for (const t of ts) expect(Math.abs(t), rows.join('\n')).toBeLessThan(T_CRITICAL);
  }, 300_000);
});
