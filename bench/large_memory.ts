/**
 * Training steps/s against the size M of one memory shared by every example of the batch (issue #26):
 * hard addressing with the truncated proposal (`address = topk(k: 32, tail: 8)`), hard addressing
 * from the full q(a | x) (VIMCO), and soft attention (the soft-attention model, every entry read),
 * against the per-episode baseline (34 entries per example, as in the Omniglot paper setting).
 *
 *   node bin/run-ts.mjs bench/large_memory.ts [--M 1000,10000,100000] [--B 16] [--K 4]
 *       [--steps 3] [--variants topk,exact,soft] [--refresh 100] [--probe P] [--cycle] [--json]
 *
 * The model is test/golden/good/address_topk.vmm (MLP nets, 28x28 binary images, H = 64). Random
 * binary images; one warm-up step, then `steps` timed steps; min and median per step.
 *
 * Variants: `topk` takes the trainer's cached-key path (src/lower/cached_keys.ts: the memory's keys
 * h(m) computed every `--refresh` steps, default 100, the top-k from the query against them, the
 * guide's logits recomputed for the K + T entries read only); `topk-full` the same proposal with
 * the guide's `h(mem) @ h(x)` computed and differentiated over every entry in every step (the
 * path before the cache, and the one a per-example memory takes). The first step of a cached run
 * computes the keys: it is reported ("first ms"), and "amortized" spreads its extra time over
 * `--refresh` steps: 1000 / (median + (first - median) / refresh). `--cycle` measures it instead:
 * the wall time of `--refresh` consecutive steps that include one refresh ("cycle steps/s"), for
 * every variant (the others have nothing to refresh, so theirs is plain throughput).
 *
 * `--probe P`: `topk(..., probe: P)`, the top searched in P of about sqrt(M) buckets of the cached
 * keys (src/lower/cached_keys.ts `bucketKeys`) instead of over every key.
 *
 * Memory: the peak of the process's resident set (RSS, sampled after every step) and of the bytes
 * tfjs holds in tensors, over the variant's steps; the memory itself (M x 784 float32) is in both.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { applySettings } from '../src/check/settings.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import type { IrProgram } from '../src/ir/types.ts';
import type { DeviceInput, InputBatch } from '../src/lower/compile.ts';
import { randomBinary } from './batch.ts';

const { values: a } = parseArgs({
  options: {
    M: { type: 'string', default: '1000,10000,100000' },
    B: { type: 'string', default: '16' },
    K: { type: 'string', default: '4' },
    steps: { type: 'string', default: '3' },
    variants: { type: 'string', default: 'topk,topk-full,exact,soft' },
    refresh: { type: 'string', default: '100' },
    cycle: { type: 'boolean', default: false },
    probe: { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const backend = await selectBackend({ ...(a.backend ? { force: a.backend as 'wasm' | 'cpu' | 'tensorflow' } : {}), log: () => {} });
const fe = frontEnd(readFileSync(join(import.meta.dirname, '..', 'test', 'golden', 'good', 'address_topk.vmm'), 'utf8'));
if (!fe.ir) throw new Error('address_topk.vmm does not compile');
const [B, K, steps] = [Number(a.B), Number(a.K), Number(a.steps)];
const D = 784;

function variant(name: string): IrProgram {
  const base = { ...fe.ir!, train: { ...fe.ir!.train, batch: B } };
  delete base.train.address;
  if (name === 'topk' || name === 'topk-full') return applySettings(base, { estimator: 'vimco', k: K, address: { kind: 'topk', k: 32, tail: 8, ...(a.probe ? { probe: Number(a.probe) } : {}) } });
  if (name === 'soft') return applySettings(base, { estimator: 'soft', k: K });
  return applySettings(base, { estimator: 'vimco', k: K });
}

interface Row {
  variant: string;
  memory: string;
  M: number;
  msMin: number;
  msMedian: number;
  stepsPerS: number;
  msFirst: number;
  amortizedStepsPerS: number;
  /** Steps/s over a whole refresh cycle (`--cycle`). */
  cycleStepsPerS?: number;
  peakRssMB: number;
  peakTensorMB: number;
}
const rows: Row[] = [];

async function time(name: string, M: number, shared: boolean): Promise<void> {
  const ir = variant(name);
  const trainer = new Trainer(ir, 1, { keyRefresh: Number(a.refresh), cachedKeys: name !== 'topk-full' });
  const mem: DeviceInput = shared
    ? { name: 'mem', data: tf.tensor(randomBinary(M * D, 2), [M, D]), shape: [M, D], plates: [] }
    : { name: 'mem', data: tf.tensor(randomBinary(B * M * D, 2), [B, M, D]), shape: [B, M, D], plates: ['batch'] };
  const batch: InputBatch = { inputs: [{ name: 'x', data: tf.tensor(randomBinary(B * D, 1), [B, D]), shape: [B, D], plates: ['batch'] }, mem] };
  let rss = process.memoryUsage().rss;
  let bytes = tf.memory().numBytes;
  const sample = () => {
    rss = Math.max(rss, process.memoryUsage().rss);
    bytes = Math.max(bytes, tf.memory().numBytes);
  };
  const t1 = performance.now();
  await trainer.stepAsync(batch);
  const msFirst = performance.now() - t1;
  sample();
  const ms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await trainer.stepAsync(batch);
    ms.push(performance.now() - t0);
    sample();
  }
  // A whole cycle: steps up to and including the next refresh (the trainer refreshes when `refresh` steps have passed since the last).
  let cycleStepsPerS: number | undefined;
  if (a.cycle) {
    const n = Number(a.refresh);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await trainer.stepAsync(batch);
      sample();
    }
    cycleStepsPerS = (1000 * n) / (performance.now() - t0);
  }
  ms.sort((x, y) => x - y);
  const med = ms[Math.floor(ms.length / 2)]!;
  const cached = trainer.keysComputedAt() !== undefined;
  const amortized = cached ? 1000 / (med + Math.max(0, msFirst - med) / Number(a.refresh)) : 1000 / med;
  const row: Row = {
    variant: name,
    memory: shared ? 'shared' : 'per-episode',
    M,
    msMin: ms[0]!,
    msMedian: med,
    stepsPerS: 1000 / med,
    msFirst,
    amortizedStepsPerS: amortized,
    ...(cycleStepsPerS !== undefined ? { cycleStepsPerS } : {}),
    peakRssMB: rss / 2 ** 20,
    peakTensorMB: bytes / 2 ** 20,
  };
  rows.push(row);
  console.log(a.json ? JSON.stringify(row) : `${row.variant.padEnd(6)} ${row.memory.padEnd(11)} M=${String(M).padStart(7)}  min ${row.msMin.toFixed(0)} ms  median ${row.msMedian.toFixed(0)} ms  ${row.stepsPerS.toFixed(2)} steps/s  first ${row.msFirst.toFixed(0)} ms  amortized ${row.amortizedStepsPerS.toFixed(2)} steps/s${cycleStepsPerS !== undefined ? `  cycle ${cycleStepsPerS.toFixed(2)} steps/s` : ''}  peak RSS ${row.peakRssMB.toFixed(0)} MB  tensors ${row.peakTensorMB.toFixed(0)} MB`);
  tf.dispose(batch.inputs.map((i) => i.data as tf.Tensor));
  trainer.dispose();
}

console.error(`backend ${backend.name}; B = ${B}, K = ${K}, ${steps} timed steps after one warm-up; keys refreshed every ${a.refresh} steps${a.probe ? `; top searched in ${a.probe} buckets` : ''}`);
await time('exact', 34, false);
for (const M of a.M.split(',').map(Number)) for (const v of a.variants.split(',')) await time(v, M, true);
