/**
 * `vmm export pytorch` beyond one trace: the truncated address proposal emitted, what it would
 * refuse (a located VMM3040), data-parallel training (two gloo processes on half batches give,
 * after the all-reduce, the gradient of one process on the whole batch), and torchrun
 * (`python3 -m torch.distributed.run`) running train.py into a run folder that `vmm eval` reads.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportDiagnostics, exportPytorch } from '../../src/export/torch/package.ts';
import { loadTrained } from '../../src/jobs/evaluate_run.ts';
import { runCli } from '../cli/run_cli.ts';
import { exportTo, runPython, torchMissing, torchPython } from './torch_helpers.ts';
import { gradNanSource } from '../runtime/fixtures/grad_nan.ts';

const has = torchPython() !== undefined;
if (!has && process.env['VMM_REQUIRE_TORCH'] === '1') throw new Error(`VMM_REQUIRE_TORCH=1: ${torchMissing}`);

describe('what the PyTorch export emits and refuses', () => {
  it('the truncated address proposal (address = topk(k, tail)) in training and in the validation trace', () => {
    const r = exportPytorch(readFileSync('models/vma_mnist.vmm', 'utf8'), { overrides: { estimator: 'rws', k: 2, address: { kind: 'topk', k: 2, tail: 1 } } });
    expect(r.diagnostics).toEqual([]);
    expect(r.files!['model.py']!.match(/t\.truncated_guide\('a', .*, 2, 1\)/g)?.length).toBe(2);
  });

  // Every construct of models/ has an emission; the diagnostic a missing one gets, on made-up problems.
  it('a construct without an emission: VMM3040 at its declaration, or at the estimator', () => {
    const source = readFileSync('models/vma_mnist.vmm', 'utf8');
    const { ir } = exportPytorch(source);
    const [est, net] = exportDiagnostics(source, ir!, [
      { construct: 'the estimator X', at: 'estimator' },
      { construct: 'the layer Y', at: 'enc' },
    ]);
    expect(est!.code).toBe('VMM3040');
    expect(est!.message).toContain('cannot emit the estimator X in vma_mnist');
    expect(source.slice(est!.span.start, est!.span.end)).toContain('estimator');
    expect(net!.message).toContain("(at 'enc')");
    expect(source.slice(net!.span.start, net!.span.end)).toMatch(/^net enc/);
  });

  it('vmm export pytorch with its data set missing writes the package, says so in one place, and exits 1', async () => {
    const out = mkdtempSync(join(tmpdir(), 'vmm-export-nodata-'));
    const empty = mkdtempSync(join(tmpdir(), 'vmm-empty-data-'));
    const r = await runCli('export', 'pytorch', 'models/vma_omniglot_large.vmm', '--out', out, '--data', empty);
    expect(r.code).toBe(1);
    expect(existsSync(join(out, 'model.py')) && existsSync(join(out, 'train.py'))).toBe(true);
    expect(existsSync(join(out, 'data'))).toBe(false);
    expect(r.out).toContain('no data/ written (see above): train.py needs --data FILE');
    expect(r.err).toMatch(/^vmm: data file omniglot28_index\.json not found/);
  });
});

describe.skipIf(!has)(`training the PyTorch export (${has ? torchPython() : torchMissing})`, () => {
  it('two gloo processes on half batches all-reduce to the gradient of the whole batch', () => {
    const { dir } = exportTo(readFileSync('models/vma_mnist.vmm', 'utf8'));
    // The whole batch once with fresh noise; then each rank replays its half of the draws.
    const out = runPython(
      `
import os, tempfile, torch, torch.distributed as dist, torch.multiprocessing as mp
import model as M, vmm_runtime as rt
torch.manual_seed(0)
B, Mem, K = 6, 5, M.ESTIMATOR['k']
inputs = {'x': (torch.rand(B, 784) < 0.3).float(), 'mem': (torch.rand(B, Mem, 784) < 0.3).float()}
def grads(model, inputs, noise):
    r = M.forward_estimate(model, inputs, K, noise, {'steps': 0, 'runningMean': None})
    t = r.pop('trace', None)
    (-r['surrogate']).backward()
    return {n: p.grad.clone() for n, p in model.vmm_parameters().items()}
model = M.Model(1)
t = model.trace(inputs, K, rt.Noise(torch.Generator().manual_seed(5)))
values = dict(t.values)
full = grads(M.Model(1), inputs, rt.Noise(values=values))
store = tempfile.mktemp()
def rank(r, world, q):
    dist.init_process_group('gloo', init_method='file://' + store, rank=r, world_size=world)
    half = slice(r * B // world, (r + 1) * B // world)
    part = {n: v[half] for n, v in inputs.items()}
    vals = {n: v[:, half] for n, v in values.items()}
    g = grads(M.Model(1), part, rt.Noise(values=vals))
    for n in sorted(g):
        dist.all_reduce(g[n]); g[n] /= world
    if r == 0:
        q.put(max(float((g[n] - full[n]).abs().max() / (full[n].abs().max() + 1e-6)) for n in g))
    dist.destroy_process_group()
ctx = mp.get_context('fork')
q = ctx.Queue()
ps = [ctx.Process(target=rank, args=(r, 2, q)) for r in range(2)]
[p.start() for p in ps]
err = q.get(timeout=240)
[p.join() for p in ps]
print('REL', err)
`.replace(/^\n/, ''),
      dir,
    );
    const rel = Number(/REL (\S+)/.exec(out)?.[1]);
    expect(rel).toBeLessThan(1e-5);
  }, 300_000);

  // torchrun itself (its module form): Debian's torch 1.13 on Python 3.11 fails on torchrun's own
  // --redirects / --tee defaults (Python 3.11's IntFlag iteration skips Std.NONE, so "0" parses to
  // None); giving both flags explicitly works, and --standalone picks a free rendezvous port.
  it('train.py under python3 -m torch.distributed.run (2 gloo processes) writes a run folder that vmm eval reads', async () => {
    const { dir } = exportTo(readFileSync('models/vae.vmm', 'utf8'), undefined, true);
    const work = mkdtempSync(join(tmpdir(), 'vmm-torchrun-'));
    const run = join(work, 'run');
    const launcher = ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--redirects', '1', '--tee', '1'];
    const args = [...launcher, join(dir, 'train.py'), '--steps', '4', '--batch', '8', '--log-every', '2', '--device', 'cpu', '--out', run];
    const r = await new Promise<{ status: number | null; out: string; err: string }>((done) => {
      const p = spawn(torchPython()!, args, { env: { ...process.env, OMP_NUM_THREADS: '1' } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('close', (status) => done({ status, out, err }));
    });
    expect(r.status, r.err + r.out).toBe(0);
    // Rank 0 alone prints, teed by the launcher with its prefix: a header, the logged steps, where the run went.
    const lines = r.out.trim().split('\n');
    expect(lines.every((l) => l.startsWith('[default0]:')), r.out).toBe(true);
    expect(lines[0]).toContain('batch 8 = 2 processes x 4 (gloo)');
    expect(lines.filter((l) => /step \d+\/4 .* bound/.test(l)).length).toBe(2);
    expect(lines.at(-1)).toContain(`wrote ${run}`);
    const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; bound: number });
    const train = metrics.filter((m) => m.kind === 'train');
    expect(train.map((m) => m.step)).toEqual([2, 4]);
    expect(train.every((m) => Number.isFinite(m.bound))).toBe(true);
    // Validation as vmm's train loop records it (every step of so short a run), by rank 0 on the held-out images.
    const valid = metrics.filter((m) => m.kind === 'valid');
    expect(valid.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(valid.every((m) => Number.isFinite(m.bound) && m.bound < 0)).toBe(true);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { exported: { world: number } };
    expect(config.exported.world).toBe(2);
    const t = loadTrained(run);
    expect(t.weights).toBe(join(run, 'final'));
    t.model.dispose();
    const ev = await runCli('eval', run, '--quick', '--backend', 'wasm');
    expect(ev.code, ev.err).toBe(0);
    const report = JSON.parse(readFileSync(join(run, 'eval', 'eval.json'), 'utf8')) as { quick: boolean; plainNll: { nll: number; examples: number } };
    expect(report.quick).toBe(true);
    expect(report.plainNll.nll).toBeGreaterThan(0);
    expect(report.plainNll.examples).toBeGreaterThan(0);
  }, 300_000);

  it("a gradient that is not finite though the loss is: skipped and named as vmm's trainer does, five in a row stop the run", () => {
    const { dir } = exportTo(gradNanSource(false), undefined, true);
    const run = join(mkdtempSync(join(tmpdir(), 'vmm-torch-gradnan-')), 'run');
    const r = spawnSync(torchPython()!, [join(dir, 'train.py'), '--steps', '20', '--batch', '4', '--device', 'cpu', '--out', run], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toContain('step 1: the gradient of net/f/0/b, net/f/0/w is not finite (the loss is');
    expect(r.stderr).toContain('the gradient of net/f/0/b, net/f/0/w was not finite at 5 steps in a row (to step 5), though the loss was; training stopped');
    const skipped = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; variables?: string[] }).filter((m) => m.kind === 'skipped');
    expect(skipped.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    expect(skipped[0]?.variables).toEqual(['net/f/0/b', 'net/f/0/w']);
  }, 120_000);

  it('vmm sample and vmm classify open a run folder train.py wrote (vma_mnist)', async () => {
    const { dir } = exportTo(readFileSync('models/vma_mnist.vmm', 'utf8'));
    const work = mkdtempSync(join(tmpdir(), 'vmm-torch-run-'));
    // Labelled images for train.py's episodes, a support set and queries for classify.
    runPython(
      `
import numpy as np
r = np.random.default_rng(0)
np.savez(${JSON.stringify(join(work, 'images.npz'))}, images=(r.random((60, 784)) * 255).astype(np.uint8), labels=np.repeat(np.arange(10), 6).astype(np.int32))
np.savez(${JSON.stringify(join(work, 'support.npz'))}, images=(r.random((3, 28, 28)) * 255).astype(np.uint8), labels=np.array([5, 6, 7]))
np.save(${JSON.stringify(join(work, 'queries.npy'))}, r.random((4, 784)).astype(np.float32))
`,
      dir,
    );
    const run = join(work, 'run');
    runPython(`import subprocess, sys
subprocess.run([sys.executable, 'train.py', '--steps', '2', '--batch', '4', '--device', 'cpu', '--data', ${JSON.stringify(join(work, 'images.npz'))}, '--out', ${JSON.stringify(run)}], check=True)`, dir);
    const sampled = await runCli('sample', run, '--rows', '2', '--samples', '3', '--backend', 'wasm');
    expect(sampled.code, sampled.err).toBe(0);
    for (const f of ['samples.png', 'reconstructions.png']) expect(readFileSync(join(run, 'samples', f)).subarray(1, 4).toString()).toBe('PNG');
    const classified = await runCli('classify', run, '--memory', join(work, 'support.npz'), '--queries', join(work, 'queries.npy'), '--json', '--backend', 'wasm');
    expect(classified.code, classified.err).toBe(0);
    const rows = classified.out.trim().split('\n').map((l) => JSON.parse(l) as { query: number; label: string; prob: number });
    expect(rows.map((x) => x.query)).toEqual([0, 1, 2, 3]);
    for (const x of rows) {
      expect(['5', '6', '7']).toContain(x.label);
      expect(x.prob).toBeGreaterThan(0);
    }
  }, 300_000);
});
