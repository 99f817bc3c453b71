/**
 * Cached keys of a shared memory for the truncated address proposal (issue #26). With
 * `address = topk(k, tail)`, a memory input without a batch plate (one memory for every example)
 * and the guide's address logits of the form `keys(mem) @ query(x)` (./address_split.ts), a
 * training step need not compute `keys(mem)` over every entry: the trainer keeps the entries' keys
 * from earlier weights (`memoryKeys`, refreshed every N steps), the top-k is taken from the query
 * against those, and the current keys are computed for the K + T entries the proposal reads only
 * (`cachedAddress`, read by the `truncated` handler). With `probe: P` the top is searched in P
 * buckets of the cached keys only (`bucketKeys`). Why the bound stays a bound with a stale cache
 * or an approximate top: ./truncated.ts `proposalFromTop`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AddressSplit } from './address_split.ts';
import { evaluate, type Binding, type EvalContext } from './evaluate.ts';
import { gatherRows } from './gather.ts';
import type { CachedAddress } from './handlers.ts';
import { alignTo, reshape, type Value } from './plates.ts';
import { offTape } from './truncated.ts';

/** Steps between refreshes of the cached keys (`topk(..., refresh: N)` or `new Trainer(ir, seed, { keyRefresh })` override it). */
export { KEY_REFRESH_STEPS } from '../ir/types.ts';

/** A shared memory's keys kept between steps, with the address split they belong to. */
export interface AddressCache {
  split: AddressSplit;
  /** `[M, H]`: the memory's keys from earlier weights; no gradient. */
  keys: tf.Tensor;
  /** The same keys grouped into buckets (`topk(..., probe: P)`): the top is searched in P buckets only. */
  buckets?: KeyBuckets;
}

/**
 * A shared memory's cached keys grouped into C ~ sqrt(M) buckets of s entries (an inverted-file
 * index, as in Jegou et al. 2011's IVF, built from the cached keys at each refresh): the top
 * entries of a query are searched among the `probe` buckets whose mean key scores highest,
 * instead of over all M keys, so a step reads P x s keys instead of M. The buckets are one pass
 * of k-means (C seeds spread over the memory, each key to its nearest seed) laid out in that
 * order and cut into equal runs of s, so every bucket but the last is full and every entry is in
 * exactly one. Which entries make the top is all the buckets decide: the proposal is still over
 * all M entries, its density computed from the current guide (./truncated.ts
 * `proposalFromTop`), so a top that misses the best entries gives a looser bound, never an
 * invalid one.
 */
export interface KeyBuckets {
  /** `[C, H]`: each bucket's mean key. */
  means: tf.Tensor;
  /** `[C * s]` int32: the entry at each position of the bucketed order; -1 pads the last bucket. */
  entries: tf.Tensor;
  /** `[C * s, H]`: the cached keys in that order (zeros where padded). */
  keys: tf.Tensor;
  /** Entries per bucket, s. */
  size: number;
  /** Buckets, C. */
  count: number;
  /** Buckets searched per query, P. */
  probe: number;
}

/**
 * Buckets of `keys` `[M, H]` for a search of `probe` buckets, or undefined where they would not
 * pay or could not guarantee `k` real candidates (a small memory: then the exact scan). Reads
 * the nearest-seed assignment on the host (a sort). Its tensors are the caller's to dispose.
 */
export function bucketKeys(keys: tf.Tensor, probe: number, k: number): KeyBuckets | undefined {
  const [m, h] = keys.shape as [number, number];
  const count = Math.ceil(Math.sqrt(m));
  const size = Math.ceil(m / count);
  // Every probe but one reaches a full bucket: at least (probe - 1) s real candidates.
  if (probe >= count || (probe - 1) * size < k) return undefined;
  const assign = tf.tidy(() => {
    const seeds = tf.gather(keys, tf.tensor1d(Array.from({ length: count }, (_, i) => Math.floor((i * m) / count)), 'int32'));
    // Nearest seed in L2: argmax_c (k . c - |c|^2 / 2).
    return tf.argMax(tf.sub(tf.matMul(keys, seeds, false, true), tf.mul(0.5, tf.sum(tf.square(seeds), 1))), 1);
  });
  const near = assign.dataSync();
  assign.dispose();
  // A counting sort by seed: the entries of one seed are contiguous, in entry order.
  const start = new Int32Array(count + 1);
  for (let i = 0; i < m; i++) start[near[i]! + 1]!++;
  for (let c = 0; c < count; c++) start[c + 1]! += start[c]!;
  const order = new Int32Array(count * size).fill(-1);
  for (let i = 0; i < m; i++) order[start[near[i]!]!++] = i;
  const entries = tf.tensor1d(order, 'int32');
  const [ordered, means] = tf.tidy(() => {
    const real = tf.cast(tf.greaterEqual(entries, 0), 'float32');
    const o = tf.mul(tf.gather(keys, tf.maximum(entries, tf.scalar(0, 'int32'))), tf.expandDims(real, 1));
    const counts = tf.sum(tf.reshape(real, [count, size]), 1, true);
    return [o, tf.div(tf.sum(tf.reshape(o, [count, size, h]), 1), counts)];
  });
  return { means: means!, entries, keys: ordered!, size, count, probe };
}

/** The `k` entries `[B, k]` (int32) of highest score among the probed buckets' keys, off the tape. */
export function bucketTop(b: KeyBuckets, q: tf.Tensor, k: number): tf.Tensor {
  const [batch, h] = q.shape as [number, number];
  const n = b.probe * b.size;
  const probed = tf.reshape(tf.topk(tf.matMul(q, b.means, false, true), b.probe, false).indices, [batch * b.probe]); // [B P]
  // Whole buckets at once (a bucket is a contiguous run of s keys): B P row copies, not B P s.
  const cand = tf.reshape(tf.gather(tf.reshape(b.keys, [b.count, b.size * h]), probed), [batch, n, h]);
  const ids = tf.reshape(tf.gather(tf.reshape(b.entries, [b.count, b.size]), probed), [batch, n]);
  const dots = tf.reshape(tf.matMul(cand, tf.expandDims(q, 2)), [batch, n]);
  const scores = tf.where(tf.greaterEqual(ids, tf.scalar(0, 'int32')), dots, tf.fill([batch, n], -Infinity));
  const j = tf.topk(scores, k, true).indices; // [B, k]
  const rowBase = tf.mul(tf.range(0, batch, 1, 'int32'), tf.scalar(n, 'int32'));
  return tf.reshape(tf.gather(tf.reshape(ids, [batch * n]), tf.reshape(tf.add(j, tf.expandDims(rowBase, 1)), [batch * k])), [batch, k]);
}

/**
 * Whether the cached path applies: a split without learned rows (the address indexes the memory's
 * entries themselves) and a memory input shared by the batch. Otherwise the full table is bound.
 */
export function cacheApplies(split: AddressSplit, inputs: ReadonlyMap<string, Value>): boolean {
  const m = inputs.get(split.memory);
  return split.learned === 0 && split.offset === 0 && m !== undefined && m.plates.length === 0;
}

/** `[n, ...event]` rows of `memory` `[M, ...event]` at int32 `idx` `[n]`. */
function rowsOf(memory: tf.Tensor, idx: tf.Tensor): tf.Tensor {
  const [m, ...event] = memory.shape;
  const flat = event.reduce((a, b) => a * b, 1);
  return reshape(gatherRows(reshape(memory, [m!, flat]), idx), [idx.shape[0]!, ...event]);
}

/** The keys `[n, H]` of memory rows `[n, ...event]` with the current weights (differentiable in them). */
function keysOf(split: AddressSplit, rows: tf.Tensor, env: ReadonlyMap<string, Binding>, applyNet: EvalContext['applyNet']): tf.Tensor {
  const scope = new Map(env);
  scope.set(split.memory, { t: rows, plates: [] });
  // A cache of its own: the trace's would hold `h(mem)` of the whole memory under the same key.
  const v = evaluate(split.keys, { env: scope, applyNet, cache: new Map(), letKeys: new Map() });
  return alignTo(v, [], 2);
}

/**
 * Every entry's keys `[M, H]` with the current weights, in chunks of `chunk` entries, without a
 * gradient. Call inside tf.tidy. Chunks bound the hidden layers' memory at 10^6 entries; they are
 * large because each chunk's products run at a fraction of the speed of one large product (at
 * 10^5 entries of 784 values: 2.4 s in chunks of 8192, 0.4 s in one, on 2 cores).
 */
export function memoryKeys(split: AddressSplit, inputs: ReadonlyMap<string, Value>, applyNet: EvalContext['applyNet'], chunk = 65536): tf.Tensor {
  const mem = inputs.get(split.memory)!.t;
  const m = mem.shape[0]!;
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < m; s += chunk) {
    const n = Math.min(chunk, m - s);
    parts.push(tf.tidy(() => offTape(keysOf(split, tf.slice(mem, [s, ...mem.shape.slice(1).map(() => 0)], [n, ...mem.shape.slice(1)]), inputs, applyNet))));
  }
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
}

/**
 * The handler's view of the address with cached keys: the query `[B, H]` from the guide's scope,
 * scores against the cached keys (off the tape), and the current logits of chosen entries.
 */
export function cachedAddress(cache: AddressCache, env: ReadonlyMap<string, Binding>, gctx: EvalContext, batch: number): CachedAddress {
  const { split } = cache;
  const q = alignTo(evaluate(split.query, gctx), ['batch'], 1, { batch }); // [B, H]
  const memory = env.get(split.memory)!;
  if (!('t' in memory)) throw new Error(`cachedAddress: memory '${split.memory}' has no tensor`);
  const size = cache.keys.shape[0]!;
  return {
    site: split.address,
    size,
    top: (k) => {
      const q0 = offTape(q);
      if (cache.buckets && k < size) return bucketTop(cache.buckets, q0, k);
      return tf.topk(tf.matMul(q0, cache.keys, false, true), Math.min(k, size), true).indices; // [B, M] scores, then the top
    },
    logitsAt: (idx) => {
      const [b, n] = idx.shape as [number, number];
      const keys = reshape(keysOf(split, rowsOf(memory.t, reshape(idx, [b * n])), env, gctx.applyNet), [b, n, split.dim]);
      return tf.sum(tf.mul(keys, tf.expandDims(q, 1)), 2); // [B, n]
    },
  };
}
