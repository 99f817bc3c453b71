import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { bernoulliLogProbFused } from '../../src/families/fused.ts';
import { Bernoulli } from '../../src/families/distributions.ts';
import { describeBackends } from '../estimators/backends.ts';

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const close = (a: number[], b: number[], tol: number) => {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i]!), `at ${i}: ${v} vs ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]!))));
};

describeBackends('the fused Bernoulli log-density (families/fused.ts)', (backend) => {
  it('equals sum(x l - softplus(l)) and its gradients in l and x, for x of l\'s shape and repeated over leading axes', () => {
    for (const [ls, xs] of [
      [[4, 3, 7], [4, 3, 7]],
      [[4, 3, 7], [1, 3, 7]],
      [[4, 3, 7], [3, 7]],
      [[5, 9], [9]],
    ] as [number[], number[]][]) {
      tf.tidy(() => {
        const l = tf.mul(tf.randomNormal(ls, 0, 1, 'float32', 1), 8); // logits up to ~+-30: the softplus tails
        const x = tf.cast(tf.greater(tf.randomUniform(xs, 0, 1, 'float32', 2), 0.5), 'float32');
        const byOps = (li: tf.Tensor, xi: tf.Tensor) => tf.sum(tf.sub(tf.mul(xi, li), tf.softplus(li)), -1);
        const fused = bernoulliLogProbFused(l, x);
        expect(fused, `[${ls}] with [${xs}] on ${backend}`).toBeDefined();
        close(values(fused!), values(byOps(l, x)), 1e-5);
        const w = tf.randomNormal(ls.slice(0, -1), 0, 1, 'float32', 3);
        const [gl, gx] = tf.grads((li: tf.Tensor, xi: tf.Tensor) => tf.sum(tf.mul(bernoulliLogProbFused(li, xi)!, w)))([l, x]);
        const [wl, wx] = tf.grads((li: tf.Tensor, xi: tf.Tensor) => tf.sum(tf.mul(byOps(li, xi), w)))([l, x]);
        close(values(gl!), values(wl!), 1e-5);
        close(values(gx!), values(wx!), 1e-5);
        // Bernoulli.logProb takes it.
        close(values(new Bernoulli(l).logProb(x)), values(byOps(l, x)), 1e-5);
      });
    }
  });

  it('declines what it does not cover: logits repeated over the values\' axes', () => {
    tf.tidy(() => {
      expect(bernoulliLogProbFused(tf.zeros([1, 3, 7]), tf.zeros([4, 3, 7]))).toBeUndefined();
      expect(bernoulliLogProbFused(tf.zeros([4, 3, 7]), tf.zeros([4, 1, 7]))).toBeUndefined();
    });
  });
});
