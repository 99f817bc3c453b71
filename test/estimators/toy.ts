/**
 * A model small enough to enumerate, for exact checks of the estimators.
 *
 *   a ~ p(a) = uniform over M addresses            (model)
 *   x | a: log p(x | a) = ell[a]                    (a table of log-likelihoods, a trainable model param)
 *   q(a | x) = softmax(theta)                       (guide, theta trainable)
 *
 * Log-weight of a sample: l(a) = -log M + ell[a] - log q(a). The K-sample objective is
 *   J_K(theta, ell) = E_{a_1..a_K ~ q} [ log (1/K) sum_k exp(l(a_k)) ],
 * computed exactly by enumerating all M^K tuples; log p(x) = logsumexp_a(ell[a]) - log M.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Categorical } from '../../src/families/distributions.ts';
import type { Rng } from '../../src/random/rng.ts';
import type { SampledTerms } from '../../src/estimators/types.ts';

export interface Toy {
  theta: number[];
  ell: number[];
}

export const M_OF = (t: Toy): number => t.theta.length;

/** All M^K tuples as rows of indices. */
export function allTuples(m: number, k: number): number[][] {
  let out: number[][] = [[]];
  for (let i = 0; i < k; i++) out = out.flatMap((t) => Array.from({ length: m }, (_, a) => [...t, a]));
  return out;
}

/** `sum over rows of onehot(idx) * v` along the last axis, built without gather (gather's gradient needs UnsortedSegmentSum, absent from the wasm backend). */
function pick(v: tf.Tensor, oneHotIdx: tf.Tensor): tf.Tensor {
  return tf.sum(tf.mul(oneHotIdx, v), -1);
}

/** Exact J_K as a differentiable function of (theta [M], ell [M]). */
export function exactObjective(k: number, theta: tf.Tensor, ell: tf.Tensor): tf.Scalar {
  const m = theta.shape[0]!;
  const tuples = allTuples(m, k);
  const oh = tf.cast(tf.oneHot(tf.tensor2d(tuples, [tuples.length, k], 'int32'), m), 'float32'); // [T, K, M]
  const logq = tf.logSoftmax(theta);
  const lw = tf.sub(tf.sub(ell, Math.log(m)), logq); // [M]
  const l = pick(lw, oh); // [T, K]
  const logProbTuple = tf.sum(pick(logq, oh), 1); // [T]
  const L = tf.sub(tf.logSumExp(l, 1), Math.log(k));
  return tf.sum(tf.mul(tf.exp(logProbTuple), L)) as tf.Scalar;
}

/** Exact gradient of J_K w.r.t. theta and ell, as plain arrays. */
export function exactGradient(toy: Toy, k: number): { value: number; dTheta: number[]; dEll: number[] } {
  return tf.tidy(() => {
    const th = tf.tensor1d(toy.theta);
    const el = tf.tensor1d(toy.ell);
    const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => exactObjective(k, a, b))([th, el]);
    return { value: value.dataSync()[0]!, dTheta: Array.from(grads[0]!.dataSync()), dEll: Array.from(grads[1]!.dataSync()) };
  });
}

/** Exact J_K in float64 plain JS (for K up to ~8 with M = 4). */
export function exactObjectiveJs(toy: Toy, k: number): number {
  const m = M_OF(toy);
  const zq = Math.log(toy.theta.reduce((a, x) => a + Math.exp(x), 0));
  const logq = toy.theta.map((x) => x - zq);
  const lw = toy.ell.map((e, a) => e - Math.log(m) - logq[a]!);
  let total = 0;
  const idx = new Array<number>(k).fill(0);
  for (;;) {
    let lp = 0;
    let mx = -Infinity;
    for (const a of idx) {
      lp += logq[a]!;
      mx = Math.max(mx, lw[a]!);
    }
    let s = 0;
    for (const a of idx) s += Math.exp(lw[a]! - mx);
    total += Math.exp(lp) * (mx + Math.log(s / k));
    let i = 0;
    while (i < k && ++idx[i]! === m) idx[i++] = 0;
    if (i === k) break;
  }
  return total;
}

export function logEvidence(toy: Toy): number {
  const mx = Math.max(...toy.ell);
  return mx + Math.log(toy.ell.reduce((a, e) => a + Math.exp(e - mx), 0) / toy.ell.length);
}

/**
 * N independent estimator draws at once: the batch axis holds N copies of the toy, each with its
 * own copy of the parameters (`thetaN`, `ellN` [N, M]), so that the gradient of `N * surrogate`
 * w.r.t. the copies gives the N per-draw gradients.
 */
export interface Draws {
  thetaN: tf.Tensor;
  ellN: tf.Tensor;
  /** Sampled addresses [K, N] (int32). */
  a: tf.Tensor;
  /** Terms for the estimator, as a function of the parameter copies. */
  terms(thetaN: tf.Tensor, ellN: tf.Tensor): SampledTerms;
}

export function makeDraws(toy: Toy, k: number, n: number, rng: Rng): Draws {
  const m = M_OF(toy);
  const thetaN = tf.tile(tf.tensor2d([toy.theta]), [n, 1]);
  const ellN = tf.tile(tf.tensor2d([toy.ell]), [n, 1]);
  const a = new Categorical(thetaN).sample(rng, [k]); // [K, N]
  const oh = tf.cast(tf.oneHot(a, m), 'float32'); // [K, N, M]
  return {
    thetaN,
    ellN,
    a,
    terms(th: tf.Tensor, el: tf.Tensor): SampledTerms {
      const logQ = new Categorical(th).logProb(a); // [K, N]
      const logLik = pick(el, oh); // [K, N]
      return { kind: 'sampled', logWeights: tf.sub(tf.sub(logLik, Math.log(m)), logQ), logQDiscrete: logQ };
    },
  };
}

/** Per-coordinate mean, variance and standard error of the rows of a row-major [N, D] array. */
export function columnStats(a: Float32Array | number[], n: number, d: number): { mean: number[]; variance: number[]; se: number[] } {
  const mean = new Array<number>(d).fill(0);
  const variance = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += a[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) variance[j]! += (a[i * d + j]! - mean[j]!) ** 2 / (n - 1);
  return { mean, variance, se: variance.map((v) => Math.sqrt(v / n)) };
}
