/**
 * Enumeration estimator: with the address enumerated and no z, the bound is exactly log p(x) and
 * the surrogate's gradients are exact (model: ∇ log p(x); address guide: post - q).
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { EnumerateEstimator } from '../../src/estimators/enumerate.ts';
import { describeBackends, toArray } from './backends.ts';

const ELL = [
  [-6.0, -8.0, -4.5, -7.0, -5.0],
  [-1.0, -1.5, -9.0, -0.2, -3.0],
]; // [B = 2][E = 5]: log p(x_b | a = i)
const THETA = [
  [0.5, -0.3, 1.0, -1.2, 0.0],
  [0.0, 2.0, 0.0, -1.0, 0.4],
]; // guide logits q(a | x_b)
const E = 5;
const B = 2;

const lse = (xs: number[]): number => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
};

/** logJoint [E, 1, B] = log p(a) + log p(x | a), from ell [B, E]. */
function logJointOf(ell: tf.Tensor): tf.Tensor {
  return tf.reshape(tf.transpose(tf.sub(ell, Math.log(E))), [E, 1, B]);
}
function logQOf(theta: tf.Tensor): tf.Tensor {
  return tf.transpose(tf.logSoftmax(theta)); // [E, B]
}

describeBackends('enumerate', () => {
  it('bound equals the exact log p(x) when z is absent, and does not depend on q(a|x)', () => {
    const est = new EnumerateEstimator(1);
    const r = est.estimate({ kind: 'enumerated', logJoint: logJointOf(tf.tensor2d(ELL)), logQAddress: logQOf(tf.tensor2d(THETA)) }, est.initState());
    const bound = toArray(r.bound);
    ELL.forEach((row, b) => expect(bound[b]).toBeCloseTo(lse(row) - Math.log(E), 5));
    const r2 = est.estimate({ kind: 'enumerated', logJoint: logJointOf(tf.tensor2d(ELL)), logQAddress: logQOf(tf.zeros([B, E])) }, r.state);
    expect(toArray(r2.bound)).toEqual(bound);
    expect(r2.state.steps).toBe(2);
  });

  it('gradients are exact: ∇ℓ log p(x) for the model, post - q for the address guide', () => {
    const est = new EnumerateEstimator(1);
    const [gEll, gTheta] = tf.grads((ell: tf.Tensor, theta: tf.Tensor) =>
      est.estimate({ kind: 'enumerated', logJoint: logJointOf(ell), logQAddress: logQOf(theta) }, est.initState()).surrogate,
    )([tf.tensor2d(ELL), tf.tensor2d(THETA)]);
    // Exact: d/dℓ mean_b log p(x_b) = post / B, via tf.grad of the closed form.
    const exactEll = tf.grad((ell: tf.Tensor) => tf.mean(tf.logSumExp(tf.sub(ell, Math.log(E)), 1)))(tf.tensor2d(ELL));
    const ge = toArray(gEll!);
    toArray(exactEll).forEach((v, i) => expect(ge[i]).toBeCloseTo(v, 5));
    // Guide: d/dθ mean_b sum_i post_i log softmax(θ)_i = (post - softmax(θ)) / B.
    const gt = toArray(gTheta!);
    ELL.forEach((row, b) => {
      const Z = lse(row);
      const zq = lse(THETA[b]!);
      row.forEach((e, i) => {
        const want = (Math.exp(e - Z) - Math.exp(THETA[b]![i]! - zq)) / B;
        expect(gt[b * E + i]).toBeCloseTo(want, 5);
      });
    });
  });

  it('with z samples: bound = logsumexp over (a, k) - log K', () => {
    const K = 3;
    const vals = Array.from({ length: E * K * B }, (_, i) => Math.sin(i * 1.7) * 3 - 4);
    const est = new EnumerateEstimator(K);
    const r = est.estimate({ kind: 'enumerated', logJoint: tf.tensor3d(vals, [E, K, B]), logQAddress: logQOf(tf.tensor2d(THETA)) }, est.initState());
    const bound = toArray(r.bound);
    for (let b = 0; b < B; b++) {
      const col: number[] = [];
      for (let i = 0; i < E; i++) for (let k = 0; k < K; k++) col.push(vals[(i * K + k) * B + b]!);
      expect(bound[b]).toBeCloseTo(lse(col) - Math.log(K), 5);
    }
  });

  it('validates shapes and K', () => {
    const est = new EnumerateEstimator(2);
    const st = est.initState();
    expect(() => est.estimate({ kind: 'enumerated', logJoint: tf.zeros([E, 1, B]), logQAddress: tf.zeros([E, B]) }, st)).toThrow(/enumerate: .*K = 2/);
    expect(() => est.estimate({ kind: 'enumerated', logJoint: tf.zeros([E, 2, B]), logQAddress: tf.zeros([E + 1, B]) }, st)).toThrow(/logQAddress must be \[E, B\]/);
    expect(() => est.estimate({ kind: 'sampled', logWeights: tf.zeros([2, B]) }, st)).toThrow(/enumerate: expects enumerated terms/);
  });
});
