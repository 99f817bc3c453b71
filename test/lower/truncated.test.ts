/**
 * The truncated address proposal in training (`address = topk(k, tail)`, src/lower/truncated.ts and
 * the `truncated` handler) against exact enumeration on a memory small enough to enumerate
 * (M = 5 entries, the 2 most probable ones on top, a tail sample of 2):
 * (a) the K-sample bound it gives is below the exact log p(x), as an expectation computed exactly and
 *     as the mean of the estimator's bounds within Monte Carlo error;
 * (b) the estimators' (VIMCO, REINFORCE, RLOO) mean gradient equals the exact gradient of their own
 *     objective, E_S E_{a_1..a_K ~ r_S}[log (1/K) sum_k p(x, a_k) / r_S(a_k)] with every tail sample
 *     S and every K-tuple of addresses enumerated (K = 1 for RLOO, which follows the ELBO), within
 *     4 standard errors;
 * (c) with the top covering the whole memory the proposal is q(a | x) itself, and the estimator's
 *     mean gradient equals the full-memory objective's exact gradient.
 * Also: draws follow the proposal's density, the tail draw never lands in the top, and settings that
 * draw no address (enumerate) are refused.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import type { IrProgram } from '../../src/ir/types.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { runTrace, toSampleBatch } from '../../src/lower/trace.ts';
import { enumerate } from '../../src/lower/handlers.ts';
import { estimateObjective, importanceBound } from '../../src/lower/objective.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { Rng } from '../../src/random/rng.ts';
import { drawFromProposal, proposalFromTable, proposalLogProb } from '../../src/lower/truncated.ts';
import { applySettings, SettingsError } from '../../src/check/settings.ts';
import { fakeBatch, gradsOf, irOf, repeatExample, withEstimator, worstDeviation, TINY_VMA } from './helpers.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const M = 5;
const TOP = 2;
const TAIL = 2;
const ir0 = irOf(TINY_VMA);
const one = fakeBatch(ir0, 1, { M }, 11);

const copies = (n: number) => repeatExample(one, n);

function withAddress(ir: IrProgram, k: number, tail: number): IrProgram {
  return { ...ir, train: { ...ir.train, address: { kind: 'topk', k, tail } } };
}

/** log p(x, a = i) and log q(a = i | x) for every entry, `[M]` each, differentiable. */
function enumerated(model: CompiledModel, ir: IrProgram): { lp: tf.Tensor1D; lq: tf.Tensor1D } {
  const trace = runTrace(ir, model.inputs(one), model.applyNet, { k: 1, rng: new Rng(0), handlers: [enumerate()] });
  const lp = tf.reshape(toSampleBatch(trace.logP, 1, 1, M), [M]) as tf.Tensor1D;
  const lq = tf.reshape(trace.logQEnum!.t, [M]) as tf.Tensor1D;
  return { lp, lq };
}

/** E_{a_1..a_K ~ r}[log (1/K) sum_k exp(lp[a_k] - lr[a_k])] by summing over all M^K tuples (`lr`: log r over the entries). */
function exactIwBound(lp: tf.Tensor1D, lr: tf.Tensor1D, k: number): tf.Scalar {
  const n = M ** k;
  const idx = new Int32Array(n * k);
  for (let t = 0; t < n; t++) {
    let r = t;
    for (let j = 0; j < k; j++) {
      idx[t * k + j] = r % M;
      r = Math.floor(r / M);
    }
  }
  const tuples = tf.tensor2d(idx, [n, k], 'int32');
  const lw = tf.gather(tf.sub(lp, lr), tuples); // [n, K]
  const L = tf.sub(tf.logSumExp(lw, 1), Math.log(k));
  const prob = tf.exp(tf.sum(tf.gather(lr, tuples), 1));
  return tf.sum(tf.mul(prob, L)) as tf.Scalar;
}

/** The truncated objective: the mean over every tail sample S (M^TAIL of them, equally likely) of the exact bound under r_S. */
function exactTruncated(model: CompiledModel, ir: IrProgram, k: number): tf.Scalar {
  const { lp, lq } = enumerated(model, ir);
  const table = tf.reshape(lq, [1, M]);
  const all = tf.tensor2d(Array.from({ length: M }, (_, i) => i), [M, 1], 'int32');
  const terms: tf.Scalar[] = [];
  for (let s = 0; s < M ** TAIL; s++) {
    const sample = Array.from({ length: TAIL }, (_, j) => Math.floor(s / M ** j) % M);
    const p = proposalFromTable(table, TOP, TAIL, new Rng(0), tf.tensor2d(sample, [1, TAIL], 'int32'));
    const lr = tf.reshape(proposalLogProb(p, all), [M]) as tf.Tensor1D;
    terms.push(exactIwBound(lp, lr, k));
  }
  return tf.div(tf.addN(terms), terms.length) as tf.Scalar;
}

/** The worst |mean - exact| / SE over every coordinate of every gradient, from `groups` draws of `perGroup` examples each. */
async function worstZ(model: CompiledModel, ir: IrProgram, exact: Map<string, Float32Array>, seed: number): Promise<number> {
  const est = makeEstimator(ir.train.estimator);
  let state = est.initState();
  const rng = new Rng(seed);
  const groups = 30;
  const batch = copies(300);
  const draws: Map<string, Float32Array>[] = [];
  for (let g = 0; g < groups; g++) {
    draws.push(
      await gradsOf(model, () => {
        const r = estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state, rng });
        state = r.state;
        return r.surrogate;
      }),
    );
  }
  return worstDeviation(exact, draws);
}

describe('truncated address proposal: draws', () => {
  it('follow the proposal density; tail draws avoid the top entries and cover the rest uniformly', async () => {
    const m = 40;
    const rng = new Rng(3);
    const table = tf.logSoftmax(tf.tensor2d(Array.from({ length: 2 * m }, () => 3 * rng.normal()), [2, m]));
    const p = proposalFromTable(table, 6, 4, rng);
    const n = 20000;
    const d = drawFromProposal(p, n, rng);
    const a = (await d.value.data()) as Int32Array;
    const lr = await proposalLogProb(p, d.value).data();
    const drawn = await d.logProb.data();
    for (let i = 0; i < lr.length; i++) expect(drawn[i]!).toBeCloseTo(lr[i]!, 4);
    const all = tf.tile(tf.reshape(tf.range(0, m, 1, 'int32'), [m, 1]), [1, 2]);
    const probs = await tf.exp(proposalLogProb(p, all)).data(); // [m, 2]
    for (let r = 0; r < 2; r++) {
      let total = 0;
      for (let i = 0; i < m; i++) total += probs[i * 2 + r]!;
      expect(total).toBeCloseTo(1, 4);
      for (let i = 0; i < m; i++) {
        const pi = probs[i * 2 + r]!;
        expect(pi).toBeGreaterThan(0);
        let c = 0;
        for (let j = 0; j < n; j++) if (a[j * 2 + r] === i) c++;
        expect(Math.abs(c / n - pi), `row ${r} entry ${i}`).toBeLessThan(4.5 * Math.sqrt((pi * (1 - pi)) / n) + 1e-4);
      }
    }
  });

  it('with the top covering the memory, r is q itself', async () => {
    const table = tf.logSoftmax(tf.tensor2d([[0.3, -1, 2, 0.1]]));
    const p = proposalFromTable(table, 4, 3, new Rng(1));
    const lr = await proposalLogProb(p, tf.tensor2d([[0], [1], [2], [3]], [4, 1], 'int32')).data();
    const lq = await table.data();
    for (let i = 0; i < 4; i++) expect(lr[i]!).toBeCloseTo(lq[i]!, 5);
  });
});

describe('truncated address proposal vs enumeration (M = 5, top 2, tail 2)', () => {
  const K = 3;

  it('(a) the bound is below the exact log p(x): exactly, and as the mean of the estimator within Monte Carlo error', async () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', K), TOP, TAIL);
    const model = new CompiledModel(ir, 5);
    const exact = tf.tidy(() => {
      const { lp } = enumerated(model, ir);
      return tf.stack([tf.logSumExp(lp), exactTruncated(model, ir, K)]);
    });
    const [logPx, truncatedBound] = Array.from(await exact.data());
    expect(truncatedBound!).toBeLessThanOrEqual(logPx! + 1e-5);
    const est = makeEstimator(ir.train.estimator);
    const bounds = tf.tidy(() => estimateObjective({ ir, inputs: model.inputs(copies(20000)), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(7) }).bound);
    const b = Array.from(await bounds.data());
    const mean = b.reduce((x, y) => x + y, 0) / b.length;
    const se = Math.sqrt(b.reduce((x, y) => x + (y - mean) ** 2, 0) / (b.length - 1) / b.length);
    expect(mean).toBeLessThanOrEqual(logPx! + 3 * se);
    expect(Math.abs(mean - truncatedBound!)).toBeLessThan(4 * se);
    // Evaluation with the run's proposal gives the same bound.
    const ev = importanceBound(ir, model.inputs(copies(4000)), model.applyNet, { k: K, chunk: K, rng: new Rng(8), reads: 'sample' });
    const evMean = ev.reduce((x, y) => x + y, 0) / ev.length;
    expect(Math.abs(evMean - truncatedBound!)).toBeLessThan(4 * se * Math.sqrt(20000 / 4000));
    model.dispose();
  });

  for (const [kind, args] of [
    ['vimco', {}],
    ['reinforce', { baseline: 'none' }],
    ['rloo', {}],
  ] as const) {
    it(`(b) ${kind}: mean gradient within 4 standard errors of its own objective's exact gradient`, async () => {
      const ir = withAddress(withEstimator(ir0, kind, K, args), TOP, TAIL);
      const model = new CompiledModel(ir, 5);
      // RLOO follows the ELBO averaged over its K samples (Kool et al. 2019): the 1-sample bound.
      const exact = await gradsOf(model, () => exactTruncated(model, ir, kind === 'rloo' ? 1 : K));
      expect(await worstZ(model, ir, exact, 99)).toBeLessThan(4);
      model.dispose();
    });
  }

  it('(c) with the top covering the memory it is the full-memory estimator: the full objective gradient within 4 SE', async () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', K), M, TAIL);
    const model = new CompiledModel(ir, 5);
    const exact = await gradsOf(model, () => {
      const { lp, lq } = enumerated(model, ir);
      return exactIwBound(lp, lq, K);
    });
    expect(await worstZ(model, ir, exact, 98)).toBeLessThan(4);
    model.dispose();
  });
});

describe('truncated address proposal: settings', () => {
  it('is refused with an estimator that draws no address, and kept by one that does', () => {
    const ir = withAddress(withEstimator(ir0, 'vimco', 3), 2, 1);
    expect(() => applySettings(ir, { estimator: 'enumerate' })).toThrow(SettingsError);
    expect(() => applySettings(ir, { estimator: 'relaxed' })).toThrow(/draws|samples addresses/);
    expect(applySettings(ir, { estimator: 'rloo' }).train.address).toEqual({ kind: 'topk', k: 2, tail: 1 });
    expect(applySettings(ir, { address: 'full' }).train.address).toBeUndefined();
    expect(applySettings(ir, { addressing: 'soft' }).train.address).toBeUndefined();
  });
});
