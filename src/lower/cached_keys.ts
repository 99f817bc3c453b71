/**
 * Cached keys of a shared memory for the truncated address proposal (issue #26). With
 * `address = topk(k, tail)`, a memory input without a batch plate (one memory for every example)
 * and the guide's address logits of the form `keys(mem) @ query(x)` (./address_split.ts), a
 * training step need not compute `keys(mem)` over every entry: the trainer keeps the entries' keys
 * from earlier weights (`memoryKeys`, refreshed every N steps), the top-k is taken from the query
 * against those, and the current keys are computed for the K + T entries the proposal reads only
 * (`cachedAddress`, read by the `truncated` handler). Why the bound stays a bound with a stale
 * cache: ./truncated.ts `proposalFromScores`.
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

/** Every entry's keys `[M, H]` with the current weights, in chunks of `chunk` entries, without a gradient. Call inside tf.tidy. */
export function memoryKeys(split: AddressSplit, inputs: ReadonlyMap<string, Value>, applyNet: EvalContext['applyNet'], chunk = 8192): tf.Tensor {
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
  const scores = tf.matMul(offTape(q), cache.keys, false, true); // [B, M]
  const memory = env.get(split.memory)!;
  if (!('t' in memory)) throw new Error(`cachedAddress: memory '${split.memory}' has no tensor`);
  return {
    site: split.address,
    scores,
    logitsAt: (idx) => {
      const [b, n] = idx.shape as [number, number];
      const keys = reshape(keysOf(split, rowsOf(memory.t, reshape(idx, [b * n])), env, gctx.applyNet), [b, n, split.dim]);
      return tf.sum(tf.mul(keys, tf.expandDims(q, 1)), 2); // [B, n]
    },
  };
}
