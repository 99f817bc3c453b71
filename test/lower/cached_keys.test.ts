/**
 * Cached keys for the truncated address proposal with a shared memory (issue #26,
 * src/lower/cached_keys.ts): the guide's `h(mem) @ h(x)` is not computed over every entry; the top
 * entries come from keys cached from earlier weights and the current logits are computed for the
 * K + T entries the proposal reads only.
 * (1) With a fresh cache the step is the uncached step: the same draws (the same rng), the same
 *     bound per example and the same gradient, and the trainer uses the cache.
 * (2) With a stale cache (keys negated: the top is the guide's least probable entries) the bound is
 *     still below the exact log p(x) by enumeration (M = 5): the expectation over every tail sample
 *     S and every K-tuple of addresses computed exactly, and the estimator's mean within Monte Carlo
 *     error of that expectation (so the density the estimator uses is the one the draws follow);
 *     VIMCO's mean gradient is the exact gradient of that objective within 4 standard errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import type { IrProgram } from '../../src/ir/types.ts';
import { CompiledModel, type InputBatch } from '../../src/lower/compile.ts';
import { runTrace, toSampleBatch } from '../../src/lower/trace.ts';
import { enumerate } from '../../src/lower/handlers.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { Rng } from '../../src/random/rng.ts';
import { proposalFromScores, proposalLogProb } from '../../src/lower/truncated.ts';
import { splitAddressLogits, type AddressSplit } from '../../src/lower/address_split.ts';
import { KEY_REFRESH_STEPS, bucketKeys, bucketTop, memoryKeys, type AddressCache } from '../../src/lower/cached_keys.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { gradsOf, irOf, withEstimator, worstDeviation, TINY_VMA } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const D = 4;
const ir0 = irOf(TINY_VMA);

function withAddress(ir: IrProgram, k: number, tail: number): IrProgram {
  return { ...ir, train: { ...ir.train, address: { kind: 'topk', k, tail } } };
}

function splitOf(ir: IrProgram): AddressSplit {
  const s = splitAddressLogits(ir);
  if (typeof s === 'string') throw new Error(s);
  return s;
}

/** A batch of `copies` of `xs` (each example D pixels) against one shared memory of `m` entries. */
function sharedBatch(xs: number[][], mem: number[][], copies = 1): InputBatch {
  const b = xs.length * copies;
  const x = new Float32Array(b * D);
  for (let c = 0; c < copies; c++) xs.forEach((row, i) => x.set(row, (c * xs.length + i) * D));
  return {
    inputs: [
      { name: 'x', data: x, shape: [b, D], plates: ['batch'] },
      { name: 'mem', data: Float32Array.from(mem.flat()), shape: [mem.length, D], plates: [] },
    ],
  };
}

function randomRows(n: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Array.from(rng.uniforms(D), (u) => (u < 0.4 ? 1 : 0)));
}

describe('cached keys, fresh: the same step as the uncached path', () => {
  for (const [kind, args] of [
    ['vimco', {}],
    ['reinforce', { baseline: 'none' }],
  ] as const) {
    it(`${kind}: the same bound per example and the same gradient (M = 12, top 3, tail 4)`, async () => {
      const ir = withAddress(withEstimator(ir0, kind, 3, args), 3, 4);
      const model = new CompiledModel(ir, 5);
      const batch = sharedBatch(randomRows(4, 1), randomRows(12, 2));
      const split = splitOf(ir);
      const keys = tf.tidy(() => memoryKeys(split, model.inputs(batch), model.applyNet));
      const run = async (cache?: AddressCache) => {
        const est = makeEstimator(ir.train.estimator);
        let bound: Float32Array | undefined;
        let values: Int32Array | undefined;
        let tableBound = true;
        const grads = await gradsOf(model, () => {
          const r = estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(7), ...(cache ? { addressCache: cache } : {}) });
          bound = r.bound.dataSync() as Float32Array;
          const a = r.trace.values.get('a')!;
          values = 't' in a ? (a.t.dataSync() as Int32Array) : undefined;
          tableBound = r.trace.guideDists.has('a');
          return r.surrogate;
        });
        return { bound: bound!, values: values!, grads, tableBound };
      };
      const plain = await run();
      const cached = await run({ split, keys });
      // The cached step never bound the guide's table h(mem) @ h(x); the plain one did.
      expect([plain.tableBound, cached.tableBound]).toEqual([true, false]);
      expect(Array.from(cached.values)).toEqual(Array.from(plain.values));
      for (let i = 0; i < plain.bound.length; i++) expect(cached.bound[i]!).toBeCloseTo(plain.bound[i]!, 4);
      for (const [name, g] of plain.grads) {
        const c = cached.grads.get(name)!;
        for (let i = 0; i < g.length; i++) expect(Math.abs(c[i]! - g[i]!), `${name}[${i}]`).toBeLessThan(1e-4 * (1 + Math.abs(g[i]!)));
      }
      keys.dispose();
      model.dispose();
    });
  }

  it('the trainer takes the cached path for a shared memory (its first step is the uncached step), not for a per-example one', async () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', 3), 3, 4);
    const batch = sharedBatch(randomRows(4, 1), randomRows(12, 2));
    const a = new Trainer(ir, 3, { keyRefresh: 2 });
    const ma = a.step(batch);
    expect(a.keysComputedAt()).toBe(0);
    // The uncached step by hand: the same weights, the trainer's rng stream.
    const b = new Trainer(ir, 3);
    const n0 = tf.memory().numTensors;
    const plain = tf.tidy(() => {
      const est = makeEstimator(ir.train.estimator);
      const r = estimateObjective({ ir, inputs: b.model.inputs(batch), applyNet: b.model.applyNet, estimator: est, state: est.initState(), rng: new Rng(3 ^ 0x5bd1e995) });
      return tf.mean(r.bound).dataSync()[0]!;
    });
    expect(ma.bound).toBeCloseTo(plain, 4);
    expect(tf.memory().numTensors).toBe(n0);
    // Steps go on (refreshing every 2 steps) without leaking tensors.
    a.step(batch);
    const n1 = tf.memory().numTensors;
    expect(a.keysComputedAt()).toBe(0);
    for (let i = 0; i < 3; i++) expect(Number.isFinite(a.step(batch).bound)).toBe(true);
    expect(a.keysComputedAt()).toBe(4); // refreshed at steps 2 and 4
    expect(tf.memory().numTensors).toBe(n1);
    // A per-example memory ([B, M, D]) takes the full table.
    const perExample: InputBatch = {
      inputs: [batch.inputs[0]!, { name: 'mem', data: new Float32Array(4 * 12 * D).fill(1), shape: [4, 12, D], plates: ['batch'] }],
    };
    const c = new Trainer(ir, 3);
    c.step(perExample);
    expect(c.keysComputedAt()).toBeUndefined();
    c.dispose();
    a.dispose();
    b.dispose();
  });

  it("the file's `topk(..., refresh: N)` sets the interval (default KEY_REFRESH_STEPS); the library's keyRefresh overrides it", () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', 3), 3, 4);
    const batch = sharedBatch(randomRows(4, 1), randomRows(12, 2));
    expect(new Trainer(ir, 3).keyRefresh).toBe(KEY_REFRESH_STEPS);
    const every3 = { ...ir, train: { ...ir.train, address: { ...ir.train.address!, refresh: 3 } } };
    const t = new Trainer(every3, 3);
    expect(t.keyRefresh).toBe(3);
    const seen: (number | undefined)[] = [];
    for (let i = 0; i < 7; i++) {
      t.step(batch);
      seen.push(t.keysComputedAt());
    }
    expect(seen).toEqual([0, 0, 0, 3, 3, 3, 6]);
    const overridden = new Trainer(every3, 3, { keyRefresh: 5 });
    expect(overridden.keyRefresh).toBe(5);
    overridden.dispose();
    t.dispose();
  });
});

describe('key buckets (probe: P)', () => {
  it('every entry is in exactly one bucket, padding only at the end, means of the members; the top is the best of the probed buckets', () => {
    const rng = new Rng(4);
    const M = 47;
    const H = 3;
    const keys = tf.tensor2d(Array.from(rng.uniforms(M * H), (u) => u * 2 - 1), [M, H]);
    expect(bucketKeys(keys, 7, 4)).toBeUndefined(); // 7 buckets: probing all is the exact scan
    expect(bucketKeys(keys, 1, 4)).toBeUndefined(); // one probe cannot promise 4 real candidates
    const b = bucketKeys(keys, 3, 4)!;
    expect([b.count, b.size]).toEqual([7, 7]);
    const order = Array.from(b.entries.dataSync());
    expect(order.slice(0, M).sort((x, y) => x - y)).toEqual(Array.from({ length: M }, (_, i) => i));
    expect(order.slice(M)).toEqual([-1, -1]);
    const k = keys.arraySync();
    const means = b.means.arraySync() as number[][];
    for (let c = 0; c < b.count; c++) {
      const members = order.slice(c * b.size, (c + 1) * b.size).filter((e) => e >= 0);
      for (let j = 0; j < H; j++) expect(means[c]![j]!).toBeCloseTo(members.reduce((s, e) => s + k[e]![j]!, 0) / members.length, 5);
    }
    const q = tf.tensor2d([[0.3, -0.8, 0.5], [-1, 0.2, 0.1]]);
    const top = bucketTop(b, q, 4).arraySync() as number[][];
    const qs = q.arraySync();
    for (let r = 0; r < 2; r++) {
      const dot = (e: number) => k[e]!.reduce((s, v, j) => s + v * qs[r]![j]!, 0);
      const bucketScore = means.map((mu) => mu.reduce((s, v, j) => s + v * qs[r]![j]!, 0));
      const probed = bucketScore.map((v, c) => [v, c] as const).sort((x, y) => y[0] - x[0]).slice(0, 3).map(([, c]) => c);
      const cands = probed.flatMap((c) => order.slice(c * b.size, (c + 1) * b.size)).filter((e) => e >= 0);
      expect(top[r]).toEqual(cands.sort((x, y) => dot(y) - dot(x)).slice(0, 4));
    }
    tf.dispose([keys, q, b.means, b.entries, b.keys]);
  });
});

describe('cached keys, stale: still a lower bound (M = 5, top 2, tail 2, enumerated)', () => {
  const M = 5;
  const TOP = 2;
  const TAIL = 2;
  const K = 3;
  const xs = [[1, 0, 1, 1]];
  const mem = [
    [1, 0, 1, 1],
    [0, 1, 0, 0],
    [1, 1, 1, 0],
    [0, 0, 1, 1],
    [1, 0, 0, 0],
  ];

  /** log p(x, a = i) and log q(a = i | x) up to a constant (the logits), `[M]`, differentiable. */
  function enumerated(model: CompiledModel, ir: IrProgram): { lp: tf.Tensor1D; lq: tf.Tensor1D } {
    const trace = runTrace(ir, model.inputs(sharedBatch(xs, mem)), model.applyNet, { k: 1, rng: new Rng(0), handlers: [enumerate()] });
    return { lp: tf.reshape(toSampleBatch(trace.logP, 1, 1, M), [M]) as tf.Tensor1D, lq: tf.reshape(trace.logQEnum!.t, [M]) as tf.Tensor1D };
  }

  function exactIwBound(lp: tf.Tensor1D, lr: tf.Tensor1D, k: number): tf.Scalar {
    const n = M ** k;
    const idx = new Int32Array(n * k);
    for (let t = 0; t < n; t++) for (let j = 0, r = t; j < k; j++, r = Math.floor(r / M)) idx[t * k + j] = r % M;
    const tuples = tf.tensor2d(idx, [n, k], 'int32');
    const L = tf.sub(tf.logSumExp(tf.gather(tf.sub(lp, lr), tuples), 1), Math.log(k));
    return tf.sum(tf.mul(tf.exp(tf.sum(tf.gather(lr, tuples), 1)), L)) as tf.Scalar;
  }

  /** The objective with the top chosen from `scores` [1, M]: the mean over every tail sample S of the exact K-sample bound. */
  function exactStale(model: CompiledModel, ir: IrProgram, scores: tf.Tensor, k: number): tf.Scalar {
    const { lp, lq } = enumerated(model, ir);
    const at = (idx: tf.Tensor) => tf.reshape(tf.gather(lq, tf.reshape(idx, [-1])), idx.shape);
    const all = tf.tensor2d(Array.from({ length: M }, (_, i) => i), [M, 1], 'int32');
    const terms: tf.Scalar[] = [];
    for (let s = 0; s < M ** TAIL; s++) {
      const sample = Array.from({ length: TAIL }, (_, j) => Math.floor(s / M ** j) % M);
      const p = proposalFromScores(scores, at, TOP, TAIL, new Rng(0), tf.tensor2d(sample, [1, TAIL], 'int32'));
      terms.push(exactIwBound(lp, tf.reshape(proposalLogProb(p, all), [M]) as tf.Tensor1D, k));
    }
    return tf.div(tf.addN(terms), terms.length) as tf.Scalar;
  }

  function staleCache(model: CompiledModel, ir: IrProgram): { cache: AddressCache; scores: tf.Tensor } {
    const split = splitOf(ir);
    const batch = sharedBatch(xs, mem);
    // Keys negated: the cached scores rank the entries the opposite way to the current guide.
    const keys = tf.tidy(() => tf.neg(memoryKeys(split, model.inputs(batch), model.applyNet)));
    const scores = tf.tidy(() => tf.matMul(model.applyNet('h', tf.tensor2d(xs)), keys, false, true));
    return { cache: { split, keys }, scores };
  }

  /** The estimator's bound through `cache`, averaged over 20,000 copies of the example, with its standard error. */
  async function meanBound(model: CompiledModel, ir: IrProgram, cache: AddressCache, seed: number): Promise<{ mean: number; se: number }> {
    const est = makeEstimator(ir.train.estimator);
    const n = 20000;
    const bounds = tf.tidy(
      () => estimateObjective({ ir, inputs: model.inputs(sharedBatch(xs, mem, n)), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(seed), addressCache: cache }).bound,
    );
    const b = Array.from(await bounds.data());
    bounds.dispose();
    const mean = b.reduce((x, y) => x + y, 0) / n;
    return { mean, se: Math.sqrt(b.reduce((x, y) => x + (y - mean) ** 2, 0) / (n - 1) / n) };
  }

  it('the bound is below the exact log p(x), and the estimator averages to the exact stale objective', async () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', K), TOP, TAIL);
    const model = new CompiledModel(ir, 5);
    const { cache, scores } = staleCache(model, ir);
    const exact = tf.tidy(() => {
      const { lp, lq } = enumerated(model, ir);
      const top = tf.topk(tf.reshape(lq, [1, M]), 1).indices.dataSync()[0]!;
      const stTop = tf.topk(scores, TOP).indices.dataSync();
      expect(Array.from(stTop)).not.toContain(top); // the stale top misses the guide's best entry
      return tf.stack([tf.logSumExp(lp), exactStale(model, ir, scores, K)]);
    });
    const [logPx, staleBound] = Array.from(await exact.data());
    expect(staleBound!).toBeLessThanOrEqual(logPx! + 1e-5);
    const { mean, se } = await meanBound(model, ir, cache, 7);
    expect(mean).toBeLessThanOrEqual(logPx! + 3 * se);
    expect(Math.abs(mean - staleBound!)).toBeLessThan(4 * se);
    tf.dispose([cache.keys, scores, exact]);
    model.dispose();
  });

  it('bucketed keys (probe: 2 of 3 buckets): the bound is below the exact log p(x), the estimator averages to the exact objective of the bucket top', async () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', K), TOP, TAIL);
    const model = new CompiledModel(ir, 5);
    const split = splitOf(ir);
    const keys = tf.tidy(() => memoryKeys(split, model.inputs(sharedBatch(xs, mem)), model.applyNet));
    const buckets = bucketKeys(keys, 2, TOP)!;
    expect(buckets).toBeDefined();
    expect([buckets.count, buckets.size]).toEqual([3, 2]);
    const cache: AddressCache = { split, keys, buckets };
    // The bucket top as scores that rank exactly those entries first: the objective the estimator must average to.
    const top = tf.tidy(() => bucketTop(buckets, model.applyNet('h', tf.tensor2d(xs)), TOP));
    const topIds = Array.from(top.dataSync());
    expect(new Set(topIds).size).toBe(TOP);
    const scores = tf.tensor2d([Array.from({ length: M }, (_, i) => (topIds.includes(i) ? 1 : 0))]);
    const exact = tf.tidy(() => tf.stack([tf.logSumExp(enumerated(model, ir).lp), exactStale(model, ir, scores, K)]));
    const [logPx, bucketBound] = Array.from(await exact.data());
    expect(bucketBound!).toBeLessThanOrEqual(logPx! + 1e-5);
    const { mean, se } = await meanBound(model, ir, cache, 11);
    expect(Math.abs(mean - bucketBound!)).toBeLessThan(4 * se);
    tf.dispose([keys, buckets.means, buckets.entries, buckets.keys, top, scores, exact]);
    model.dispose();
  });

  it("VIMCO's mean gradient is the exact gradient of the stale objective within 4 standard errors", async () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', K), TOP, TAIL);
    const model = new CompiledModel(ir, 5);
    const { cache, scores } = staleCache(model, ir);
    const exact = await gradsOf(model, () => exactStale(model, ir, scores, K));
    const est = makeEstimator(ir.train.estimator);
    const rng = new Rng(99);
    const groups = 30;
    const batch = sharedBatch(xs, mem, 300);
    const draws: Map<string, Float32Array>[] = [];
    for (let g = 0; g < groups; g++) {
      draws.push(await gradsOf(model, () => estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state: est.initState(), rng, addressCache: cache }).surrogate));
    }
    expect(worstDeviation(exact, draws)).toBeLessThan(4);
    tf.dispose([cache.keys, scores]);
    model.dispose();
  });
});
