/**
 * The `vmm` command end to end, in-process: exit codes, diagnostics on stderr, and a small
 * version of every run command (train, resume, eval, sample, compare) on the embedded MNIST data.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli as run } from './run_cli.ts';

const ROOT = join(__dirname, '..', '..');
const MODELS = join(ROOT, 'models');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


describe('front-end commands', () => {
  it('check: every model is clean (exit 0)', async () => {
    const r = await run('check', join(MODELS, 'vma_mnist.vmm'), join(MODELS, 'gmm.vmm'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('vma_mnist.vmm: ok');
  });

  it('check: a mistake is reported as file:line:col with the code and a caret (exit 1)', async () => {
    const bad = join(tmp, 'bad.vmm');
    writeFileSync(bad, 'const D = 4\ndata x : binary[D]\nnet f = linear(D, 3)\nobserve x ~ Bernoulli(logits: f(x))\n');
    const r = await run('check', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.vmm:4:\d+: error\[VMM\d{4}\]/);
    expect(r.err).toContain('^');
  });

  it('misuse exits 2: missing file, unknown command, unknown stage', async () => {
    expect((await run('check', join(tmp, 'nope.vmm'))).code).toBe(2);
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run('dump', 'tokens', join(MODELS, 'vae.vmm'))).code).toBe(2);
    expect((await run('train', join(MODELS, 'vae.vmm'), '--estimator', 'magic')).code).toBe(2);
  });

  it('--help describes the commands (exit 0)', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.out + r.err).toMatch(/train/);
  });

  it('check --explain, dump ast|ir, fmt --check, compile', async () => {
    const f = join(MODELS, 'vma_mnist.vmm');
    const ex = await run('check', '--explain', f);
    expect(ex.code).toBe(0);
    expect(ex.out).toMatch(/guide/i);
    const ir = await run('dump', 'ir', f);
    expect(ir.code).toBe(0);
    expect(ir.out).toContain('model vma_mnist');
    const ast = await run('dump', 'ast', f);
    expect(JSON.parse(ast.out).kind).toBe('Program');
    expect((await run('fmt', '--check', f)).code).toBe(0);
    const hard = await run('compile', f);
    expect(hard.out).toContain('VIMCO');
    const soft = await run('compile', f, '--addressing', 'soft');
    expect(soft.out).toContain('soft attention');
    expect((await run('compile', join(MODELS, 'vae.vmm'), '--estimator', 'soft')).code).toBe(2);
  });

  it('fmt --check fails on a file that is not canonical', async () => {
    const ugly = join(tmp, 'ugly.vmm');
    writeFileSync(ugly, 'const D=4\ndata x:binary[D]\nnet f=linear(D,D)\nobserve x~Bernoulli(logits:f(x))\n');
    expect((await run('fmt', '--check', ugly)).code).toBe(1);
    expect((await run('fmt', ugly)).code).toBe(0);
    expect((await run('fmt', '--check', ugly)).code).toBe(0);
  });
});

describe('run commands on the embedded MNIST data', () => {
  const model = join(MODELS, 'vma_mnist.vmm');
  const runDir = join(tmp, 'run');
  const common = ['--batch', '4', '--classes', '2', '--shots', '1', '--valid-size', '8', '--valid-every', '2', '--quiet', '--backend', 'wasm'];

  it('train writes a run directory; resume continues it', async () => {
    const r = await run('train', model, '--steps', '3', '--out', runDir, ...common);
    expect(r.code, r.err).toBe(0);
    for (const f of ['config.json', 'model.vmm', 'metrics.jsonl', 'summary.json']) expect(existsSync(join(runDir, f))).toBe(true);
    expect(existsSync(join(runDir, 'checkpoint'))).toBe(true);
    expect(existsSync(join(runDir, 'final'))).toBe(true);
    const again = await run('train', model, '--steps', '3', '--out', runDir, ...common);
    expect(again.code).toBe(1); // refuses to overwrite a run
    expect(again.err).toContain('--resume');
    const resumed = await run('train', '--resume', runDir, '--steps', '5', '--quiet', '--backend', 'wasm');
    expect(resumed.code, resumed.err).toBe(0);
    const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; step: number })
      .filter((m) => m.kind === 'train')
      .map((m) => m.step);
    expect(Math.max(...steps)).toBe(5);
  });

  it('eval writes a report with NLL, KL and accuracy', async () => {
    const r = await run('eval', runDir, '--episodes', '4', '--samples', '8', '--memory-sizes', '1,2', '--classes-list', '1', '--ways', '2', '--large', '6', '--backend', 'wasm', '--json');
    expect(r.code, r.err).toBe(0);
    // --json: the results on stdout, progress on stderr.
    expect((JSON.parse(r.out) as { nll: unknown[] }).nll.length).toBe(2);
    const report = readFileSync(join(runDir, 'eval', 'report.md'), 'utf8');
    expect(report).toContain('Test NLL');
    expect(report).toContain('2-way 1-shot');
    const json = JSON.parse(readFileSync(join(runDir, 'eval', 'eval.json'), 'utf8'));
    expect(json.nll.length).toBe(2);
    for (const c of json.nll) expect(c.nll).toBeGreaterThan(0);
    expect(existsSync(join(runDir, 'eval', 'nll_vs_memory.svg'))).toBe(true);
  });

  it('sample writes PNG grids', async () => {
    const r = await run('sample', runDir, '--rows', '2', '--samples', '3', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    for (const f of ['samples.png', 'reconstructions.png']) {
      const png = readFileSync(join(runDir, 'samples', f));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
    }
  });

  it('compare trains hard, soft and the no-memory control over seeds and writes one table', async () => {
    const out = join(tmp, 'compare');
    const r = await run('compare', model, '--variants', 'hard,soft', '--seeds', '2', '--steps', '2', '--out', out, '--eval-episodes', '4', '--eval-samples', '4', '--memory-sizes', '1,2', ...common, '--json');
    expect(r.code, r.err).toBe(0);
    const entries = JSON.parse(r.out) as { variant: string; seed: number; eval: { bound: string } }[];
    expect(entries.map((v) => `${v.variant} ${v.seed}`)).toEqual([
      'vma_mnist (hard, vimco) 1',
      'vma_mnist (hard, vimco) 2',
      'vma_mnist (soft attention) 1',
      'vma_mnist (soft attention) 2',
      'vma_mnist (no-memory control) 1',
      'vma_mnist (no-memory control) 2',
    ]);
    expect(entries[2]!.eval.bound).toMatch(/soft-attention model/);
    expect(entries[4]!.eval.bound).toMatch(/no-memory control/);
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(md).toMatch(/\| *vma_mnist \(hard, vimco\) *\| *2 *\|/);
    expect(md).toMatch(/vs no-memory control at M=2 \(paired\)/);
    expect(md).toMatch(/seed-level standard error/);
    expect(existsSync(join(out, 'nll_vs_memory.svg'))).toBe(true);
    // Run again: every run is finished, nothing trains again.
    const again = await run('compare', model, '--variants', 'hard,soft', '--seeds', '2', '--steps', '2', '--out', out, '--eval-episodes', '4', '--eval-samples', '4', '--memory-sizes', '1,2', '--backend', 'wasm', '--batch', '2');
    expect(again.code, again.err).toBe(0);
    expect(again.err.match(/finished earlier/g)).toHaveLength(6);
  }, 300_000); // six short trainings and evaluations: well under a minute on a quiet machine

  it('compare evaluates finished runs on the same targets: paired differences across runs', async () => {
    const out = join(tmp, 'compare-runs');
    const runs = [join(tmp, 'compare', 'hard-s1'), join(tmp, 'compare', 'soft-s1')];
    const r = await run('compare', ...runs, '--out', out, '--eval-episodes', '6', '--eval-samples', '4', '--memory-sizes', '1,2', '--classes-list', '1', '--quiet', '--backend', 'wasm', '--json');
    expect(r.code, r.err).toBe(0);
    const entries = JSON.parse(r.out) as { variant: string; eval: { parameters: number; nll: { memory: number; values: number[] }[] } }[];
    expect(entries.map((e) => e.variant)).toEqual(['vma_mnist (hard, vimco)', 'vma_mnist (soft attention)']);
    // The same evaluation seed: both runs are scored on the same 6 targets at each M.
    for (const e of entries) {
      expect(e.eval.parameters).toBeGreaterThan(1000);
      for (const c of e.eval.nll) expect(c.values).toHaveLength(6);
    }
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(md).toMatch(/vs vma_mnist .* at M=2 \(paired\)/);
    // A second comparison with the same evaluation settings reuses the runs' saved evaluations.
    const again = await run('compare', ...runs, '--out', out, '--eval-episodes', '6', '--eval-samples', '4', '--memory-sizes', '1,2', '--classes-list', '1', '--backend', 'wasm', '--json');
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain('using its evaluation');
    expect((JSON.parse(again.out) as typeof entries).map((e) => e.eval.nll.map((c) => c.values))).toEqual(entries.map((e) => e.eval.nll.map((c) => c.values)));
  });

  it('compare trains several model files, each with its own estimator, under a time budget', async () => {
    const out = join(tmp, 'compare-files');
    const files = [model, join(MODELS, 'vsm_mnist.vmm')];
    const r = await run('compare', ...files, '--seeds', '1', '--no-control', '--minutes', '0.05', '--steps', '3', '--out', out, '--eval-episodes', '4', '--eval-samples', '4', '--memory-sizes', '1,2', ...common, '--json');
    expect(r.code, r.err).toBe(0);
    const entries = JSON.parse(r.out) as { variant: string; run: string; train: { steps: number; trainedSeconds: number } }[];
    expect(entries.map((e) => e.run)).toEqual([join(out, 'vma_mnist-vimco'), join(out, 'vsm_mnist-vimco')]);
    for (const e of entries) {
      expect(e.train.steps).toBeGreaterThanOrEqual(1);
      expect(e.train.steps).toBeLessThanOrEqual(3);
      expect(existsSync(join(e.run, 'final'))).toBe(true);
    }
  });
});

describe('train --minutes', () => {
  it('stops when the budget is spent, writes the final weights, and a resume needs a larger budget', async () => {
    const out = join(tmp, 'budget');
    const flags = ['--batch', '2', '--classes', '2', '--shots', '1', '--valid-size', '4', '--quiet', '--backend', 'wasm'];
    const r = await run('train', join(MODELS, 'vma_mnist.vmm'), '--minutes', '0.01', '--out', out, ...flags);
    expect(r.code, r.err).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { budgetSpent: boolean; trainedSeconds: number; steps: number };
    expect(summary.budgetSpent).toBe(true);
    expect(summary.trainedSeconds).toBeGreaterThanOrEqual(0.6);
    expect(existsSync(join(out, 'final'))).toBe(true);
    const spent = await run('train', '--resume', out, '--quiet', '--backend', 'wasm');
    expect(spent.code).toBe(1);
    expect(spent.err).toContain('time budget');
    const more = await run('train', '--resume', out, '--minutes', '0.02', '--quiet', '--backend', 'wasm');
    expect(more.code, more.err).toBe(0);
    const after = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { trainedSeconds: number; steps: number };
    expect(after.trainedSeconds).toBeGreaterThanOrEqual(1.2);
    expect(after.steps).toBeGreaterThan(summary.steps);
    expect((await run('train', join(MODELS, 'vma_mnist.vmm'), '--minutes', '0', '--out', join(tmp, 'zero'), ...flags)).code).toBe(2);
  });
});

describe('train --min-shots', () => {
  it('records the fewest shots in the run, and refuses more than --shots in one line', async () => {
    const out = join(tmp, 'minshots');
    const flags = ['--batch', '2', '--classes', '2', '--valid-size', '4', '--valid-every', '2', '--quiet', '--backend', 'wasm'];
    const r = await run('train', join(MODELS, 'vma_mnist.vmm'), '--steps', '3', '--shots', '3', '--min-shots', '1', '--out', out, ...flags);
    expect(r.code, r.err).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { data: { shots: number; minShots?: number } };
    expect(config.data).toMatchObject({ shots: 3, minShots: 1 });
    const bad = await run('train', join(MODELS, 'vma_mnist.vmm'), '--steps', '3', '--shots', '2', '--min-shots', '3', '--out', join(tmp, 'minshots-bad'), ...flags);
    expect(bad.code).not.toBe(0);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toContain('--min-shots 3 exceeds the 2 shots per class');
  });
});
