/**
 * Where the memory of a training step goes: runs the benchmark model (models/bench_vma.vmm, the
 * same data and trainer as bench/vmm_config.ts) and reports, after each step, the process's RSS
 * high-water mark (what `npm run bench` reports as peak memory), the size of the wasm heap (it
 * grows to a step's peak and is never returned), the bytes of live tensors, and the JS
 * ArrayBuffers; then one profiled step (`tf.profile`): the peak of live tensor bytes inside the
 * step and the largest allocations by (kernel, shapes).
 *
 *   node bin/run-ts.mjs bench/memory.ts --variant hard --M 2048 [--steps 3 --top 15 --json]
 *
 * Deterministic in what it counts (bytes, not time), so it can be run on a busy machine.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { deviceBatch } from './batch.ts';

const { values: a } = parseArgs({
  options: {
    variant: { type: 'string', default: 'hard' },
    M: { type: 'string', default: '2048' },
    B: { type: 'string', default: '32' },
    K: { type: 'string', default: '4' },
    steps: { type: 'string', default: '3' },
    top: { type: 'string', default: '15' },
    backend: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const MB = 2 ** 20;
const backend = await selectBackend({ ...(a.backend ? { force: a.backend as 'wasm' | 'cpu' | 'tensorflow' } : {}), log: () => {} });
const fe = frontEnd(readFileSync(join(import.meta.dirname, '..', 'models', 'bench_vma.vmm'), 'utf8'));
if (!fe.ir) throw new Error('models/bench_vma.vmm does not compile');
const [M, B, K] = [Number(a.M), Number(a.B), Number(a.K)];
const D = 784;
const kind = a.variant === 'soft' ? 'soft' : 'vimco';
const ir = { ...fe.ir, train: { ...fe.ir.train, batch: B, estimator: { ...fe.ir.train.estimator, kind, k: K } as typeof fe.ir.train.estimator } };


const wasmHeap = (): number => {
  const w = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm;
  return w ? w.HEAPU8.buffer.byteLength : 0;
};
const snapshot = (label: string) => {
  const mu = process.memoryUsage();
  return {
    label,
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
    rss_mb: mu.rss / MB,
    wasm_heap_mb: wasmHeap() / MB,
    tensor_mb: tf.memory().numBytes / MB,
    num_tensors: tf.memory().numTensors,
    array_buffers_mb: mu.arrayBuffers / MB,
    js_heap_mb: mu.heapUsed / MB,
  };
};

/**
 * Real wasm allocations: every `move` (a malloc) and every `disposeData` that frees, tracked with a
 * label (the phase: forward under the tape, backward, optimizer/other; and the shape), so that the
 * buffers alive at the step's peak can be listed (tf.memory() counts a buffer once per tensor
 * sharing it, so it overstates).
 */
interface Live {
  bytes: number;
  label: string;
  offset: number;
}
const live = new Map<object, Live>();
let liveBytes = 0;
let peakLive = 0;
let atPeak: Live[] = [];
const engineState = (tf.engine() as unknown as { state: { scopeStack: { name: string }[]; activeScope: { name: string } | null } }).state;
const phase = (): string => {
  const names = [...engineState.scopeStack.map((s) => s.name), engineState.activeScope?.name ?? ''];
  return names.includes('backward') ? 'backward' : names.includes('forward') ? 'forward' : 'other';
};
const wasmBackend = tf.backend() as unknown as {
  move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
  disposeData(dataId: object, force?: boolean): boolean;
  dataIdMap: { has(d: object): boolean; get(d: object): { memoryOffset: number } | undefined };
};
/** The highest end address of a live buffer, and the allocation that set it (heap growth). */
let highest = { end: 0, label: "" as string };
const tops: { end: number; label: string; liveMb: number }[] = [];
if (backend.name === 'wasm') {
  const move = wasmBackend.move.bind(wasmBackend);
  wasmBackend.move = (dataId, values, shape, dtype, refCount) => {
    move(dataId, values, shape, dtype, refCount);
    const bytes = shape.reduce((p, d) => p * d, 1) * (dtype === 'float32' || dtype === 'int32' ? 4 : 1);
    const label = `${phase()} ${dtype} [${shape.join(',')}]`;
    const offset = wasmBackend.dataIdMap.get(dataId)?.memoryOffset ?? 0;
    live.set(dataId, { bytes, label, offset });
    const end = offset + bytes;
    if (end > highest.end) {
      highest = { end, label };
      tops.push({ end: end / MB, label, liveMb: (liveBytes + bytes) / MB });
    }
    liveBytes += bytes;
    if (liveBytes > peakLive) {
      peakLive = liveBytes;
      if (bytes > 1 << 20) atPeak = [...live.values()];
    }
  };
  const dispose = wasmBackend.disposeData.bind(wasmBackend);
  wasmBackend.disposeData = (dataId, force) => {
    const freed = dispose(dataId, force);
    const l = live.get(dataId);
    if (freed && l && !wasmBackend.dataIdMap.has(dataId)) {
      liveBytes -= l.bytes;
      live.delete(dataId);
    }
    return freed;
  };
}
const rows = [snapshot('start')];
const trainer = new Trainer(ir, 1);
const batch = await deviceBatch(B, M, D); // on the device, as bench/vmm_config.ts has it (bench/batch.ts)
rows.push(snapshot('model and data'));
for (let i = 0; i < Number(a.steps); i++) {
  trainer.step(batch);
  rows.push(snapshot(`after step ${i + 1}`));
}

const stepPeak = (f: () => void): { peak: number; base: number; groups: { label: string; count: number; mb: number }[] } => {
  const base = liveBytes;
  peakLive = liveBytes;
  atPeak = [...live.values()];
  f();
  const g = new Map<string, { label: string; count: number; mb: number }>();
  for (const l of atPeak) {
    const cur = g.get(l.label) ?? { label: l.label, count: 0, mb: 0 };
    cur.count++;
    cur.mb += l.bytes / MB;
    g.set(l.label, cur);
  }
  return { peak: peakLive / MB, base: base / MB, groups: [...g.values()].sort((x, y) => y.mb - x.mb) };
};
// Where the buffers alive between steps lie (what the next step's large buffers must fit around).
const between = [...live.values()].sort((x, y) => x.offset - y.offset);
const layout = between.length ? `${between.length} buffers, ${(between.reduce((t, l) => t + l.bytes, 0) / MB).toFixed(1)} MB, from ${(between[0]!.offset / MB).toFixed(1)} to ${((between.at(-1)!.offset + between.at(-1)!.bytes) / MB).toFixed(1)} MB` : 'none';
const held = stepPeak(() => trainer.step(batch));
rows.push(snapshot('after tracked step'));

interface Alloc {
  key: string;
  count: number;
  mb: number;
}
const allocs = new Map<string, Alloc>();
const info = await tf.profile(() => {
  trainer.step(batch);
  return [];
});
for (const k of info.kernels) {
  if (k.bytesAdded <= 0) continue;
  const key = `${k.name} ${k.inputShapes.map((s) => (s ? `[${s.join(',')}]` : '-')).join(' ')} -> ${k.outputShapes.map((s) => `[${s.join(',')}]`).join(' ')}`;
  const cur = allocs.get(key) ?? { key, count: 0, mb: 0 };
  cur.count++;
  cur.mb += k.bytesAdded / MB;
  allocs.set(key, cur);
}
rows.push(snapshot('after profiled step'));
const top = [...allocs.values()].sort((x, y) => y.mb - x.mb).slice(0, Number(a.top));
const result = { variant: a.variant, M, B, K, backend: backend.name, blas_threads: backend.blasThreads ?? null, wasm_live_mb_before_step: held.base, wasm_live_peak_mb_in_step: held.peak, held_at_peak: held.groups.slice(0, Number(a.top)), peak_tensor_mb_in_step: info.peakBytes / MB, rows, top_allocations: top };
if (a.json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const f = (x: number) => x.toFixed(1).padStart(8);
  const out = [`${a.variant} M=${M} B=${B} K=${K} on ${backend.name} (OpenBLAS: ${backend.blasThreads ?? 'no'})`, ''];
  out.push(`${'when'.padEnd(20)} ${'maxRSS'.padStart(8)} ${'RSS'.padStart(8)} ${'wasmHeap'.padStart(8)} ${'tensors'.padStart(8)} ${'#'.padStart(6)} ${'ArrayBuf'.padStart(8)} ${'JSheap'.padStart(8)}  (MB)`);
  for (const r of rows) out.push(`${r.label.padEnd(20)} ${f(r.max_rss_mb)} ${f(r.rss_mb)} ${f(r.wasm_heap_mb)} ${f(r.tensor_mb)} ${String(r.num_tensors).padStart(6)} ${f(r.array_buffers_mb)} ${f(r.js_heap_mb)}`);
  out.push('', `tracked step: live wasm buffers ${held.base.toFixed(1)} MB before the step, ${held.peak.toFixed(1)} MB at its peak; held at the peak (phase, dtype, shape):`);
  for (const t of result.held_at_peak) out.push(`  ${f(t.mb)} MB ${String(t.count).padStart(3)}x  ${t.label}`);
  out.push('', `live between steps: ${layout}`);
  out.push('', 'allocations that raised the highest live address above 100 MB (end MB, live MB then, what):');
  for (const t of tops.filter((t) => t.end > 100)) out.push(`  ${f(t.end)} ${f(t.liveMb)}  ${t.label}`);
  out.push('', `profiled step (tf.profile bytes count a shared buffer once per tensor): peak of live tensors ${info.peakBytes / MB | 0} MB; largest allocations by (kernel, shapes):`);
  for (const t of top) out.push(`  ${f(t.mb)} MB ${String(t.count).padStart(3)}x  ${t.key}`);
  process.stdout.write(out.join('\n') + '\n');
}
trainer.dispose();
