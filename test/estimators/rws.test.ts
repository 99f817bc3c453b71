/**
 * Reweighted wake-sleep (src/estimators/rws.ts) on the enumerable toy (./toy.ts):
 * - the guide (theta) gradient is the wake-q gradient E[sum_k ŵ_k ∇ log q(a_k)]: the mean of many
 *   draws matches its exact value (all M^K tuples enumerated) within standard errors, and as K
 *   grows it approaches the exact posterior's gradient ∇ E_p(a|x)[log q(a)] = p(a|x) - q(a);
 * - the model (ell) gradient is that of the K-sample bound: it matches the exact gradient of J_K.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';
import { RwsEstimator } from '../../src/estimators/rws.ts';
import { describeBackends } from './backends.ts';
import { allTuples, columnStats, exactGradient, makeDraws, type Toy } from './toy.ts';

const TOY: Toy = { theta: [0.5, -0.3, 1.0, -1.2], ell: [-6.0, -8.0, -4.5, -7.0] };
const M = TOY.theta.length;
const N = 20000;

function softmax(v: number[]): number[] {
  const mx = Math.max(...v);
  const e = v.map((x) => Math.exp(x - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Exact E over a_1..a_K ~ q of sum_k ŵ_k ∇θ log q(a_k), with ∇θ log q(a) = onehot(a) - q. */
function exactWakeQ(toy: Toy, k: number): number[] {
  const q = softmax(toy.theta);
  const lw = toy.ell.map((e, a) => e - Math.log(M) - Math.log(q[a]!));
  const out = new Array<number>(M).fill(0);
  for (const t of allTuples(M, k)) {
    const pt = t.reduce((p, a) => p * q[a]!, 1);
    const w = softmax(t.map((a) => lw[a]!));
    t.forEach((a, i) => {
      for (let j = 0; j < M; j++) out[j]! += pt * w[i]! * ((j === a ? 1 : 0) - q[j]!);
    });
  }
  return out;
}

/** ∇θ E_p(a|x)[log q(a)] = p(a|x) - q(a): the direction the wake-q update estimates. */
function posteriorGradient(toy: Toy): number[] {
  const post = softmax(toy.ell);
  const q = softmax(toy.theta);
  return post.map((p, j) => p - q[j]!);
}

function draws(k: number, n: number, seed: number) {
  return tf.tidy(() => {
    const est = new RwsEstimator(k);
    const d = makeDraws(TOY, k, n, new Rng(seed));
    const f = (th: tf.Tensor, el: tf.Tensor) => tf.mul(est.estimate(d.terms(th, el), est.initState()).surrogate, n) as tf.Scalar;
    const [gTheta, gEll] = tf.grads(f)([d.thetaN, d.ellN]);
    return { dTheta: columnStats(gTheta!.dataSync() as Float32Array, n, M), dEll: columnStats(gEll!.dataSync() as Float32Array, n, M) };
  });
}

describeBackends('reweighted wake-sleep', () => {
  it('the guide gradient matches the exact wake-q expectation, and the model gradient the exact bound gradient (K = 3)', () => {
    const k = 3;
    const r = draws(k, N, 99);
    const wake = exactWakeQ(TOY, k);
    const exact = exactGradient(TOY, k);
    for (let j = 0; j < M; j++) {
      expect(Math.abs(r.dTheta.mean[j]! - wake[j]!)).toBeLessThan(4 * r.dTheta.se[j]! + 1e-4);
      expect(Math.abs(r.dEll.mean[j]! - exact.dEll[j]!)).toBeLessThan(4 * r.dEll.se[j]! + 1e-4);
    }
  });

  it('the guide gradient approaches the exact posterior gradient p(a|x) - q(a) as K grows', () => {
    const target = posteriorGradient(TOY);
    const norm = Math.sqrt(target.reduce((a, x) => a + x * x, 0));
    const err = (k: number) => {
      const g = exactWakeQ(TOY, k);
      return Math.sqrt(g.reduce((a, x, j) => a + (x - target[j]!) ** 2, 0)) / norm;
    };
    // Exact (enumerated) bias at K = 1, 2, 4, 6: shrinking, already < 35% of the norm at K = 6.
    const errs = [1, 2, 4, 6].map(err);
    for (let i = 1; i < errs.length; i++) expect(errs[i]!).toBeLessThan(errs[i - 1]!);
    expect(errs[0]!).toBeGreaterThan(0.9); // K = 1: ŵ = 1, the expectation of a score is zero
    // With many samples the estimator itself lands on the posterior gradient.
    const r = draws(256, 400, 7);
    for (let j = 0; j < M; j++) expect(Math.abs(r.dTheta.mean[j]! - target[j]!)).toBeLessThan(4 * r.dTheta.se[j]! + 0.03 * norm);
  });
});
