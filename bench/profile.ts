/**
 * Profiles one training step of a model with `tf.profile`: kernel time and count by kernel name,
 * the tensors a step creates, and the wall-clock time of unprofiled steps, so that per-op dispatch
 * (wall time not spent in kernels) shows next to the arithmetic.
 *
 *   node bin/run-ts.mjs bench/profile.ts models/bench_vma.vmm hard 512 [--B 32 --K 4 --steps 10
 *       --warmup 3 --profiled 3 --top 25 --shapes 15 --dim 512 --backend wasm --json]
 *
 * variant: `hard` (vimco with K), `soft` (soft attention with K), or any estimator kind
 * (`iwae`, `reinforce`, `enumerate`, ...); `model` keeps the file's own train block.
 * M binds every size symbol of the memories. Data and memories are random binary (real inputs
 * uniform in [-1, 1]), made once (not timed). Needs the model to compile and its estimator to apply.
 *
 * Kernel times: tfjs times each kernel call (on wasm, a synchronous host timer around the call).
 * Ops that run through `tf.customGrad` or a forward function (no registered kernel of that name,
 * e.g. the batched gather, stopGradient) show as "composite" entries: their time includes the
 * kernels they call, which are also listed, so composites are left out of the totals.
 * `--shapes N` lists the N costliest (kernel, input shapes) groups; `--dim N` lists every kernel
 * group touching an axis of size N (to see what scales with M: use an M no other axis has).
 * `--sequence` lists the first profiled step's kernels in the order they ran, with their shapes
 * (composites marked, the optimizer's start marked): where each dispatch comes from.
 *
 * Phases: the optimizer's share is the kernels run inside `optimizer.apply`; "forward, no tape"
 * is one more profile of the objective alone outside any gradient (what evaluation costs); the
 * rest of a step is the forward pass under the tape (with the copies it saves) and the backward.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { Rng } from '../src/random/rng.ts';
import { estimateObjective } from '../src/lower/objective.ts';
import type { IrProgram, Size } from '../src/ir/types.ts';
import type { RawBatch } from '../src/data/bind.ts';
import { median } from './stats.ts';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    B: { type: 'string', default: '32' },
    K: { type: 'string', default: '4' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    profiled: { type: 'string', default: '3' },
    top: { type: 'string', default: '25' },
    shapes: { type: 'string', default: '0' },
    dim: { type: 'string' },
    sequence: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'wasm' },
    json: { type: 'boolean', default: false },
  },
});

const [modelFile, variant = 'hard', mArg = '32'] = positionals;
if (!modelFile) {
  process.stderr.write('usage: profile.ts MODEL.vmm [hard|soft|<estimator>|model] [M] [--B 32 --K 4 ...]\n');
  process.exit(2);
}
const M = Number(mArg);
const B = Number(a.B);
const K = Number(a.K);

function concrete(s: Size): number {
  let n = s.c;
  for (const [, c] of Object.entries(s.terms)) n += c * M;
  return n;
}

/** Random inputs for every data and memory of the model, `[B, ...]` each (one memory per episode). */
function randomBatch(ir: IrProgram, seed: number): RawBatch {
  const rng = new Rng(seed);
  const inputs: RawBatch['inputs'] = [];
  for (const d of [...ir.data, ...ir.memories]) {
    const shape = [B, ...d.type.shape.map(concrete)];
    const n = shape.reduce((x, y) => x * y, 1);
    const real = d.type.elem === 'real';
    const data = Float32Array.from({ length: n }, () => (real ? rng.nextFloat() * 2 - 1 : rng.nextFloat() < 0.5 ? 1 : 0));
    inputs.push({ name: d.name, data, shape, plates: ['batch'] });
  }
  return { inputs };
}

const backend = await selectBackend({ force: a.backend as 'wasm' | 'cpu' | 'tensorflow', log: () => {} });
tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
const fe = frontEnd(readFileSync(modelFile, 'utf8'));
if (!fe.ir) {
  process.stderr.write(`${modelFile} does not compile\n`);
  process.exit(1);
}
const kind = variant === 'hard' ? 'vimco' : variant === 'model' ? fe.ir.train.estimator.kind : variant;
const estimator = variant === 'model' ? fe.ir.train.estimator : ({ ...fe.ir.train.estimator, kind, k: K } as typeof fe.ir.train.estimator);
const ir: IrProgram = { ...fe.ir, train: { ...fe.ir.train, batch: B, estimator } };
const trainer = new Trainer(ir, 1);
const batch = randomBatch(ir, 1);

for (let i = 0; i < Number(a.warmup); i++) trainer.step(batch);
const wall: number[] = [];
for (let i = 0; i < Number(a.steps); i++) {
  const t0 = performance.now();
  trainer.step(batch);
  wall.push(performance.now() - t0);
}

interface Group {
  name: string;
  shapes?: string;
  count: number;
  ms: number;
}

const nProfiled = Math.max(1, Number(a.profiled));
const byName = new Map<string, Group>();
const byShape = new Map<string, Group>();
const composites = new Map<string, Group>();
let kernelCalls = 0;
let kernelMs = 0;
let bytesAllocated = 0;
let peakBytes = 0;
const profiledWall: number[] = [];
const registered = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;
const add = (m: Map<string, Group>, key: string, g: Omit<Group, 'count' | 'ms'>, ms: number) => {
  const cur = m.get(key) ?? { ...g, count: 0, ms: 0 };
  cur.count += 1;
  cur.ms += ms;
  m.set(key, cur);
};
// Marks where the optimizer's kernels start in each profiled step.
let optimizerStart = -1;
const engineState = (tf.engine() as unknown as { state: { activeProfile: { kernels: unknown[] } } }).state;
const apply = trainer.optimizer.apply.bind(trainer.optimizer);
trainer.optimizer.apply = (grads) => {
  optimizerStart = engineState.activeProfile.kernels.length;
  apply(grads);
};
const phase = { optimizerCalls: 0, optimizerMs: 0 };
let sequence: string[] = [];
for (let i = 0; i < nProfiled; i++) {
  const t0 = performance.now();
  optimizerStart = -1;
  const info = await tf.profile(() => {
    trainer.step(batch);
    return [];
  });
  for (const [j, k] of info.kernels.entries()) {
    if (j >= optimizerStart && optimizerStart >= 0 && registered(k.name)) {
      phase.optimizerCalls++;
      phase.optimizerMs += k.kernelTimeMs as number;
    }
  }
  profiledWall.push(performance.now() - t0);
  if (a.sequence && i === 0) sequence = info.kernels.map((k, j) => `${j === optimizerStart ? '-- optimizer --\n' : ''}${registered(k.name) ? '' : '  (composite) '}${k.name} ${k.inputShapes.map((s) => (s ? `[${s.join(',')}]` : '-')).join(' ')} -> ${k.outputShapes.map((s) => `[${s.join(',')}]`).join(' ')}`);
  peakBytes = Math.max(peakBytes, info.peakBytes);
  for (const k of info.kernels) {
    const ms = k.kernelTimeMs as number;
    if (!registered(k.name)) {
      add(composites, k.name, { name: k.name }, ms);
      continue;
    }
    kernelCalls++;
    kernelMs += ms;
    bytesAllocated += Math.max(0, k.bytesAdded);
    add(byName, k.name, { name: k.name }, ms);
    const shapes = `${k.inputShapes.map((s) => (s ? `[${s.join(',')}]` : '-')).join(' ')} -> ${k.outputShapes.map((s) => `[${s.join(',')}]`).join(' ')}`;
    add(byShape, `${k.name} ${shapes}`, { name: k.name, shapes }, ms);
  }
}

// The objective alone, outside any gradient tape.
const fwd = await tf.profile(() => {
  tf.tidy(() => {
    const inputs = trainer.model.inputs(batch);
    const baseline = trainer.estimator.needsBaselineNet ? trainer.model.baseline(inputs) : undefined;
    estimateObjective({
      ir: trainer.ir, // after withAddressing (soft attention's transform)
      inputs,
      applyNet: trainer.model.applyNet,
      estimator: trainer.estimator,
      state: trainer.estimator.initState(),
      rng: new Rng(7),
      ...(baseline ? { baseline } : {}),
    });
  });
  return [];
});
const fwdKernels = fwd.kernels.filter((k) => registered(k.name));
const forwardNoTape = { calls: fwdKernels.length, ms: fwdKernels.reduce((a, k) => a + (k.kernelTimeMs as number), 0) };

const per = (x: number) => x / nProfiled;
const sortByMs = (m: Map<string, Group>) => [...m.values()].sort((x, y) => y.ms - x.ms);
const wallMed = median(wall);
const result = {
  model: modelFile,
  variant,
  estimator: kind,
  M,
  B,
  K,
  backend: backend.name,
  threads: backend.threads,
  median_ms: wallMed,
  min_ms: Math.min(...wall),
  profiled_ms: median(profiledWall),
  kernel_calls_per_step: per(kernelCalls),
  kernel_ms_per_step: per(kernelMs),
  mib_allocated_per_step: per(bytesAllocated) / 2 ** 20,
  phases: {
    forward_no_tape: forwardNoTape,
    optimizer: { calls: per(phase.optimizerCalls), ms: per(phase.optimizerMs) },
    taped_forward_and_backward: {
      calls: per(kernelCalls - phase.optimizerCalls),
      ms: per(kernelMs - phase.optimizerMs),
    },
  },
  peak_bytes: peakBytes,
  kernels: sortByMs(byName).map((g) => ({ name: g.name, count: per(g.count), ms: per(g.ms) })),
  composites: sortByMs(composites).map((g) => ({ name: g.name, count: per(g.count), ms: per(g.ms) })),
  shapes: sortByMs(byShape).map((g) => ({ name: g.name, shapes: g.shapes!, count: per(g.count), ms: per(g.ms) })),
};

if (a.json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const f = (x: number, d = 2) => x.toFixed(d);
  const out: string[] = [];
  out.push(`${modelFile} ${variant} (${kind}) M=${M} B=${B} K=${K} on ${backend.name} (${backend.threads} thread(s))`);
  out.push(
    `wall: median ${f(wallMed, 1)} ms/step (min ${f(result.min_ms, 1)}) over ${wall.length} steps; profiled step ${f(result.profiled_ms, 1)} ms`,
  );
  out.push(
    `per step: ${f(result.kernel_calls_per_step, 0)} kernel calls, ${f(result.kernel_ms_per_step, 1)} ms in kernels, ` +
      `${f(result.mib_allocated_per_step, 1)} MiB allocated by kernels, peak ${f(peakBytes / 2 ** 20, 1)} MiB`,
  );
  const ph = result.phases;
  out.push(
    `phases: forward without tape ${ph.forward_no_tape.calls} calls ${f(ph.forward_no_tape.ms, 1)} ms; ` +
      `step minus optimizer ${f(ph.taped_forward_and_backward.calls, 0)} calls ${f(ph.taped_forward_and_backward.ms, 1)} ms; ` +
      `optimizer ${f(ph.optimizer.calls, 0)} calls ${f(ph.optimizer.ms, 1)} ms`,
  );
  out.push('');
  out.push(`${'kernel'.padEnd(28)} ${'calls'.padStart(7)} ${'ms'.padStart(9)} ${'%'.padStart(6)}`);
  for (const g of result.kernels.slice(0, Number(a.top))) {
    out.push(`${g.name.padEnd(28)} ${f(g.count, 0).padStart(7)} ${f(g.ms).padStart(9)} ${f((100 * g.ms) / result.kernel_ms_per_step, 1).padStart(6)}`);
  }
  if (result.kernels.length > Number(a.top)) {
    const rest = result.kernels.slice(Number(a.top));
    out.push(`${`(${rest.length} more)`.padEnd(28)} ${f(rest.reduce((s, g) => s + g.count, 0), 0).padStart(7)} ${f(rest.reduce((s, g) => s + g.ms, 0)).padStart(9)}`);
  }
  if (result.composites.length) {
    out.push('');
    out.push('composite ops (time includes the kernels above):');
    for (const g of result.composites) out.push(`  ${g.name.padEnd(26)} ${f(g.count, 0).padStart(7)} ${f(g.ms).padStart(9)}`);
  }
  const nShapes = Number(a.shapes);
  if (nShapes > 0) {
    out.push('');
    out.push('costliest (kernel, shapes):');
    for (const g of result.shapes.slice(0, nShapes)) out.push(`  ${f(g.ms).padStart(8)} ms ${f(g.count, 0).padStart(4)}x  ${g.name} ${g.shapes}`);
  }
  if (a.dim !== undefined) {
    const dim = Number(a.dim);
    const hit = result.shapes.filter((g) => (g.shapes.match(/\d+/g) ?? []).map(Number).includes(dim));
    out.push('');
    out.push(`kernels touching an axis of size ${dim}: ${hit.length} groups, ${f(hit.reduce((s, g) => s + g.count, 0), 0)} calls, ${f(hit.reduce((s, g) => s + g.ms, 0))} ms`);
    for (const g of hit) out.push(`  ${f(g.ms).padStart(8)} ms ${f(g.count, 0).padStart(4)}x  ${g.name} ${g.shapes}`);
  }
  if (a.sequence) {
    out.push('');
    out.push('one step, in order:');
    out.push(...sequence.map((l) => `  ${l}`));
  }
  process.stdout.write(out.join('\n') + '\n');
}
trainer.dispose();
