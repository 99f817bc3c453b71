/**
 * `npm run bench`: the benchmark model of ../shared/docs/bench-model.md, timed through the vmm
 * trainer and through the hand-written PyTorch reference (bench/reference/bench_vma.py), run
 * interleaved (vmm, reference, vmm, reference, ...) configuration by configuration, each in its own
 * process so peak memory is per configuration. The reference is skipped, and the table says so,
 * when no Python with torch is found (Debian: apt-get install python3-torch).
 *
 * Variants: `hard` (VIMCO) and `soft`, the spec's soft variant (deterministic attention written
 * out, bench/bench_vma_soft.vmm: the work of the reference's `--variant soft`); `soft-query` times
 * vmm's own soft attention (a latent query per sample, src/ir/addressing.ts), which has no twin.
 *
 * Writes bench/results/train.md, bench/results/addressing.md and bench/results/latest.json.
 *
 *   npm run bench                         full sweep (M = 8..2048, hard and soft)
 *   npm run bench -- --quick              M = 8, 128 only, fewer steps
 *   npm run bench -- --M 32,512 --steps 20 --backend wasm
 *   npm run bench -- --conv-only           only the convolutional model (models/vma_omniglot.vmm)
 *
 * The convolutional VMA model (models/vma_omniglot.vmm, hard/VIMCO, memory M + 2 dummies) is timed
 * beside its PyTorch twin (bench/reference/bench_vma_conv.py) for each `--conv-M`, and, where the
 * OpenBLAS module is in use, also with wasm's own convolutions (VMM_BLAS_CONV=0: the products
 * stay native; what main had before the native convolutions) and without OpenBLAS (VMM_BLAS=0).
 * Writes bench/results/conv.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { markdownTable } from '../src/report/markdown.ts';

const { values: a } = parseArgs({
  options: {
    M: { type: 'string', default: '8,32,128,512,2048' },
    variants: { type: 'string', default: 'hard,soft' },
    /** Runs of vmm and of the reference per configuration, interleaved (ABBA); the table shows their median. */
    repeats: { type: 'string', default: '3' },
    /** Timed steps per configuration; `auto`: 30 for M <= 128 (fast steps, noisy machine), 10 above. */
    steps: { type: 'string', default: 'auto' },
    /**
     * Untimed steps first, the same on both sides; `auto`: 100 for M <= 128, 10 above. vmm's first
     * steps are slow (V8's and the wasm module's compilation tiers, the heap and the BLAS thread
     * pool growing): with 3, the median of 30 timed steps still held some of them and vmm /
     * PyTorch read 0.72 at M = 8 where the steady rate is 0.97 (2026-12-07); 30 was still short:
     * at M = 32 hard, medians of ten steps from the first fall 72, 52, 42, 45, 38, 32, 30, 33, 26,
     * 26 ms and hold there, while the reference's steps show no trend (docs/benchmarks.md, session
     * 18). A user's run is thousands of steps: the steady rate is what it sees, and the warm-up's
     * cost is reported beside it (`warm-up s`).
     */
    warmup: { type: 'string', default: 'auto' },
    'conv-warmup': { type: 'string', default: '3' },
    memories: { type: 'string', default: '10000,100000' },
    backend: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-reference': { type: 'boolean', default: false },
    /** Memory sizes for the convolutional model ('' to skip it). */
    'conv-M': { type: 'string', default: '32' },
    'conv-steps': { type: 'string', default: '10' },
    'conv-only': { type: 'boolean', default: false },
    /** Re-render the tables from a saved bench/results/latest.json instead of measuring. */
    'from-json': { type: 'string' },
    /** Where the tables and latest.json go (default bench/results). */
    out: { type: 'string' },
  },
});

const root = join(import.meta.dirname, '..');
const Ms = (a.quick ? '8,128' : a.M).split(',').map(Number);
const stepsFor = (M: number): string => (a.quick ? '5' : a.steps === 'auto' ? (M <= 128 ? '30' : '10') : a.steps);
const warmupFor = (M: number): string => (a.quick ? '3' : a.warmup === 'auto' ? (M <= 128 ? '100' : '10') : a.warmup);
const variants = a.variants.split(',');

function findPython(): string | undefined {
  if (a['no-reference']) return undefined;
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

type Row = Record<string, number | string>;

/**
 * Each side runs as its user runs it: in the environment of the shell that started the bench (npm's
 * own npm_* variables dropped), with no thread or BLAS settings added by the harness; the
 * reference applies its documented defaults itself (torch 1 thread, OPENBLAS_NUM_THREADS=2 unless
 * set). `env` adds only what a comparison column needs (VMM_BLAS=0, ...).
 */
const userEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));

function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Row | undefined {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...userEnv, ...env }, maxBuffer: 1 << 26 });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) {
    process.stderr.write(`failed: ${cmd} ${args.join(' ')}\n${r.stderr.slice(-2000)}\n`);
    return undefined;
  }
  return JSON.parse(line) as Row;
}

const repeats = Math.max(1, Number(a.repeats));

/** The median of the finite values (NaN if none). */
const medOf = (xs: number[]): number => {
  const v = xs.filter(Number.isFinite).sort((p, q) => p - q);
  if (v.length === 0) return NaN;
  const h = v.length >> 1;
  return v.length % 2 ? v[h]! : (v[h - 1]! + v[h]!) / 2;
};

/**
 * Several runs of one configuration as one row: steps (and examples) per second the median of the
 * runs' medians (the mean of two), peak memory the largest; `runs_steps_per_s` keeps each run's.
 */
function combine(runs: (Row | undefined)[]): Row | undefined {
  const ok = runs.filter((r): r is Row => r !== undefined);
  if (ok.length === 0) return undefined;
  const med = (key: string) => medOf(ok.map((r) => Number(r[key])));
  const sps = ok.map((r) => Number(r.steps_per_s));
  return {
    ...ok[0]!,
    steps_per_s: med('steps_per_s'),
    examples_per_s: med('examples_per_s'),
    /** Throughput over the timed steps (1 / mean step, spikes included), median over the runs. */
    mean_steps_per_s: medOf(ok.map(meanSps)),
    /** Seconds the warm-up steps took, median over the runs. */
    warmup_s: medOf(ok.map((r) => (Array.isArray(r.warmup_ms) ? (r.warmup_ms as unknown as number[]).reduce((x, y) => x + y, 0) / 1000 : NaN))),
    /** The fastest single step of any run, as steps/s. */
    steps_per_s_best: Math.max(...ok.map(bestSps)),
    /** Slowest over fastest run median: how far one run of this side moved from another. */
    run_spread: Math.max(...sps) / Math.min(...sps),
    peak_rss_mb: Math.max(...ok.map((r) => Number(r.peak_rss_mb))),
    runs: ok.length,
    runs_steps_per_s: sps.map((x) => x.toFixed(2)).join(' '),
  };
}

/** A run's throughput over its timed steps (vmm: mean_ms; the reference: mean_step_s). */
function meanSps(r: Row): number {
  if (r.mean_ms !== undefined) return 1000 / Number(r.mean_ms);
  if (r.mean_step_s !== undefined) return 1 / Number(r.mean_step_s);
  return NaN;
}

/** A run's fastest step as steps/s (vmm: min_ms; the reference: min_step_s). */
function bestSps(r: Row): number {
  if (r.steps_per_s_best !== undefined) return Number(r.steps_per_s_best);
  if (r.min_ms !== undefined) return 1000 / Number(r.min_ms);
  if (r.min_step_s !== undefined) return 1 / Number(r.min_step_s);
  return Number(r.steps_per_s);
}

const saved = a['from-json'] ? (JSON.parse(readFileSync(a['from-json'], 'utf8')) as { settings: string; train: typeof train; addressing: typeof addressing }) : undefined;
const vmmArgs = (extra: string[]) => ['--expose-gc', 'bin/run-ts.mjs', 'bench/vmm_config.ts', ...extra, ...(a.backend ? ['--backend', a.backend] : [])];
const refEnv = {};
/** The 1-minute load average before each timed run: the table's header says how quiet the machine was. */
const loads: number[] = [];
const python = saved ? undefined : findPython();
const torchVersion = python ? spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim() : undefined;
const refBlas = process.env['OPENBLAS_NUM_THREADS'] ?? '2';
if (!saved) process.stderr.write(python ? `reference: PyTorch ${torchVersion} (${python}), torch.set_num_threads(1), OPENBLAS_NUM_THREADS=${refBlas}\n` : 'reference: skipped (no python3 with torch; apt-get install python3-torch)\n');
if (!saved && loadavg()[0] > 0.5 * cpus().length) process.stderr.write(`warning: 1-minute load ${loadavg()[0].toFixed(1)} on ${cpus().length} cores: the machine is not quiet, figures will be slow and spread\n`);

/**
 * Where the optional OpenBLAS products are in use, every configuration also runs with them off
 * (VMM_BLAS=0), so the table shows what a machine without libopenblas-dev gets.
 */
const train: { vmm?: Row; vmmWasm?: Row; ref?: Row; variant: string; M: number }[] = saved?.train ?? [];
for (const M of saved || a['conv-only'] ? [] : Ms) {
  for (const variant of variants) {
    const args = ['--variant', variant, '--M', String(M), '--steps', stepsFor(M), '--warmup', warmupFor(M)];
    process.stderr.write(`M=${M} ${variant}:`);
    const vmmRuns: (Row | undefined)[] = [];
    const refRuns: (Row | undefined)[] = [];
    // ABBA: vmm first in even runs, the reference first in odd ones, so neither always follows the other.
    for (let r = 0; r < repeats; r++) {
      const vmmRun = () => (process.stderr.write(' vmm...'), loads.push(loadavg()[0]), vmmRuns.push(runJson(process.execPath, vmmArgs(args))));
      // vmm's own soft attention (a latent query per sample, `soft-query`) has no PyTorch twin.
      const twin = variant !== 'soft-query';
      const refRun = () => (python && twin ? (process.stderr.write(' reference...'), loads.push(loadavg()[0]), refRuns.push(runJson(python, ['bench/reference/bench_vma.py', ...args, '--json'], refEnv))) : 0);
      if (r % 2 === 0) (vmmRun(), refRun());
      else (refRun(), vmmRun());
    }
    const vmm = combine(vmmRuns);
    const ref = combine(refRuns);
    const vmmWasm = vmm?.blas_threads ? (process.stderr.write(' vmm wasm-only...'), runJson(process.execPath, vmmArgs(args), { VMM_BLAS: '0' })) : undefined;
    const sps = (r: Row | undefined) => (r ? Number(r.steps_per_s).toFixed(2) : '-');
    process.stderr.write(` ${sps(vmm)}${vmmWasm ? ` (wasm-only ${sps(vmmWasm)})` : ''} vs ${sps(ref)} steps/s\n`);
    train.push({ vmm, ...(vmmWasm ? { vmmWasm } : {}), ref, variant, M });
  }
}

const addressing: { vmm?: Row; ref?: Row; N: number }[] = saved?.addressing ?? [];
for (const N of saved || a['conv-only'] ? [] : a.quick ? [10000] : a.memories.split(',').filter(Boolean).map(Number)) {
  const args = ['--addressing-only', '--memory', String(N), '--queries', '32'];
  const vmm = runJson(process.execPath, vmmArgs(args));
  const ref = python ? runJson(python, ['bench/reference/bench_vma.py', ...args, '--json'], refEnv) : undefined;
  addressing.push({ vmm, ref, N });
}

/** The convolutional model: vmm (native convolutions), its PyTorch twin, vmm with wasm convolutions, vmm without OpenBLAS. */
const conv: { vmm?: Row; ref?: Row; vmmWasmConv?: Row; vmmWasm?: Row; M: number }[] = (saved as { conv?: typeof conv } | undefined)?.conv ?? [];
for (const M of saved || !a['conv-M'] ? [] : a['conv-M'].split(',').map(Number)) {
  const args = ['--variant', 'hard', '--M', String(M), '--steps', a.quick ? '3' : a['conv-steps'], '--warmup', a['conv-warmup']];
  process.stderr.write(`conv M=${M}: vmm...`);
  const vmm = runJson(process.execPath, vmmArgs(['--model', 'conv', ...args]));
  process.stderr.write(python ? ' reference...' : '');
  const ref = python ? runJson(python, ['bench/reference/bench_vma_conv.py', ...args, '--json'], refEnv) : undefined;
  const native = Boolean(vmm?.blas_threads);
  process.stderr.write(native ? ' vmm wasm convolutions...' : '');
  const vmmWasmConv = native ? runJson(process.execPath, vmmArgs(['--model', 'conv', ...args]), { VMM_BLAS_CONV: '0' }) : undefined;
  process.stderr.write(native ? ' vmm wasm-only...' : '');
  const vmmWasm = native ? runJson(process.execPath, vmmArgs(['--model', 'conv', ...args]), { VMM_BLAS: '0' }) : undefined;
  const sps = (r: Row | undefined) => (r ? Number(r.steps_per_s).toFixed(3) : '-');
  process.stderr.write(` ${sps(vmm)} vs ${sps(ref)} steps/s (wasm convolutions ${sps(vmmWasmConv)}, wasm-only ${sps(vmmWasm)})\n`);
  conv.push({ vmm, ref, ...(vmmWasmConv ? { vmmWasmConv } : {}), ...(vmmWasm ? { vmmWasm } : {}), M });
}

/** The reference prints `results: {top1_precomputed_embedding: {queries_per_s}, ...}`. */
const refQps = (r: Row | undefined, key: string): unknown => (r?.results as unknown as Record<string, { queries_per_s: number }> | undefined)?.[key]?.queries_per_s;
const f = (x: unknown, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');
const backend = train.find((t) => t.vmm)?.vmm ?? conv.find((t) => t.vmm)?.vmm;
const coretype = process.env['OPENBLAS_CORETYPE'];
const settings = saved?.settings ??
  `vmm backend: ${backend?.backend ?? '?'} (threads ${backend?.threads ?? '?'}, SIMD ${backend?.simd ?? '?'}, matrix products: ${
    backend?.blas_threads
      ? `OpenBLAS sgemm${backend.blas_core ? ` (${backend.blas_core} kernels)` : ''}, ${backend.blas_threads} threads${backend.blas_pool ? " (vmm's pool)" : ''}, ${backend.blas_module === 'prebuilt' ? 'the prebuilt module a plain npm install gets' : `module ${backend.blas_module ?? '?'}`}`
      : `wasm (${backend?.blas_why_not ?? 'no OpenBLAS module'})`
  }); ` +
  (coretype !== undefined ? `OPENBLAS_CORETYPE=${coretype} in the environment of both; ` : '') +
  (python ? `reference: PyTorch ${torchVersion}, torch.set_num_threads(1), OPENBLAS_NUM_THREADS=${refBlas}` : 'reference: not run (no torch)') +
  `; each side in the environment of the shell that started the bench; ${cpus().length} cores (${cpus()[0]?.model ?? ''}); B=32, K=4, median of ${a.steps === 'auto' && !a.quick ? '30 (M <= 128) or 10' : stepsFor(0)} steps after ${a.warmup === 'auto' && !a.quick ? '100 (M <= 128) or 10' : warmupFor(0)} warm-up (means: throughput over the timed steps, spikes included; warm-up s: the warm-up steps' total), ${repeats === 1 ? 'one run' : `median of ${repeats} interleaved runs (vmm, reference, reference, vmm, ...)`} per configuration (wasm-only: one run); best: the fastest step of any run; spread: slowest over fastest run median; 1-minute load before the runs ${loads.length ? `${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}` : '?'}; ${new Date().toISOString().slice(0, 10)}`;

const trainMd = markdownTable(
  ['M', 'variant', 'vmm steps/s', 'ref steps/s', 'vmm / ref', 'vmm / ref (means)', 'warm-up s (vmm, ref)', 'vmm best', 'ref best', 'vmm spread', 'ref spread', 'vmm wasm-only steps/s', 'wasm-only / ref', 'vmm ex/s', 'vmm peak MB', 'ref peak MB', 'vmm bound', 'ref bound'],
  train.map((t) => [
    String(t.M),
    t.variant,
    f(t.vmm?.steps_per_s),
    f(t.ref?.steps_per_s),
    t.vmm && t.ref ? f(Number(t.vmm.steps_per_s) / Number(t.ref.steps_per_s)) : '-',
    t.vmm && t.ref ? f(Number(t.vmm.mean_steps_per_s) / Number(t.ref.mean_steps_per_s)) : '-',
    `${f(t.vmm?.warmup_s, 1)}, ${f(t.ref?.warmup_s, 1)}`,
    f(t.vmm?.steps_per_s_best),
    f(t.ref?.steps_per_s_best),
    f(t.vmm?.run_spread),
    f(t.ref?.run_spread),
    f(t.vmmWasm?.steps_per_s),
    t.vmmWasm && t.ref ? f(Number(t.vmmWasm.steps_per_s) / Number(t.ref.steps_per_s)) : '-',
    f(t.vmm?.examples_per_s, 0),
    f(t.vmm?.peak_rss_mb, 0),
    f(t.ref?.peak_rss_mb, 0),
    f(t.vmm?.bound, 1),
    f(t.ref?.bound_last_step, 1),
  ]),
);
const addrMd = markdownTable(
  ['memory entries', 'vmm q/s top-1', 'vmm q/s sample (1 draw)', 'vmm q/s top-1 incl. embedding', 'ref q/s top-1', 'ref q/s sample (4 draws)', 'ref q/s top-1 incl. embedding'],
  addressing.map((r) => [
    String(r.N),
    f(r.vmm?.qps_top1, 0),
    f(r.vmm?.qps_sample, 0),
    f(r.vmm?.qps_top1_with_embedding, 0),
    f(refQps(r.ref, 'top1_precomputed_embedding'), 0),
    f(refQps(r.ref, 'sample_precomputed_embedding'), 0),
    f(refQps(r.ref, 'top1_incl_embedding'), 0),
  ]),
);
const ratio = (x: Row | undefined, y: Row | undefined) => (x && y ? f(Number(x.steps_per_s) / Number(y.steps_per_s)) : '-');
const convMd = markdownTable(
  ['M (+2 dummies)', 'vmm steps/s', 'ref steps/s', 'vmm / ref', 'vmm, wasm convolutions', 'native / wasm convolutions', 'vmm wasm-only', 'vmm peak MB', 'ref peak MB', 'vmm bound', 'ref bound'],
  conv.map((t) => [
    String(t.M),
    f(t.vmm?.steps_per_s, 3),
    f(t.ref?.steps_per_s, 3),
    ratio(t.vmm, t.ref),
    f(t.vmmWasmConv?.steps_per_s, 3),
    ratio(t.vmm, t.vmmWasmConv),
    f(t.vmmWasm?.steps_per_s, 3),
    f(t.vmm?.peak_rss_mb, 0),
    f(t.ref?.peak_rss_mb, 0),
    f(t.vmm?.bound, 1),
    f(t.ref?.bound_last_step, 1),
  ]),
);
const out = a.out ?? join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
if (train.length) writeFileSync(join(out, 'train.md'), `Training steps (bench-model.md), ${settings}\n\n${trainMd}\n`);
if (addressing.length) writeFileSync(join(out, 'addressing.md'), `Test-time addressing q(a|x) of 32 queries against one shared memory; ${settings}\n\n${addrMd}\n`);
const convSettings = settings
  .replace(/median of [^;]*?warm-up/, `median of ${a.quick ? 3 : a['conv-steps']} steps after ${a.quick ? 3 : a['conv-warmup']} warm-up`)
  .replace(/, (one run|median of \d+ interleaved runs[^;]*?) per configuration \(wasm-only: one run\)/, ', one run per configuration');
if (conv.length) writeFileSync(join(out, 'conv.md'), `Convolutional VMA model (models/vma_omniglot.vmm, hard, VIMCO, memory M + 2 learned entries) against its PyTorch twin (bench/reference/bench_vma_conv.py); ${convSettings}\n\n${convMd}\n`);
const latest = a['conv-only'] ? 'latest_conv.json' : 'latest.json';
writeFileSync(join(out, latest), JSON.stringify({ settings, train, addressing, conv }, null, 2) + '\n');
process.stdout.write(`${settings}\n\n${train.length ? `${trainMd}\n\n${addrMd}\n\n` : ''}${conv.length ? convMd : ''}\n`);
