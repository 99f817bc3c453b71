import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { bernoulliLogProbFused, normalLogProbFused } from '../../src/families/fused.ts';
import { Bernoulli, Normal } from '../../src/families/distributions.ts';
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

describeBackends('the fused Normal log-density (families/fused.ts)', (backend) => {
  it('equals sum -((x - loc)/scale)^2/2 - log scale - log(2 pi)/2 and its gradients in x, loc and scale', () => {
    for (const shape of [[4, 3, 7], [5], [2, 9]]) {
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 2, 'float32', 1);
        const loc = tf.randomNormal(shape, 0, 1, 'float32', 2);
        const scale = tf.add(tf.exp(tf.randomNormal(shape, 0, 1, 'float32', 3)), 0.05); // 0.05 .. ~20
        const byOps = (xi: tf.Tensor, mi: tf.Tensor, si: tf.Tensor) =>
          tf.sum(tf.sub(tf.mul(tf.square(tf.div(tf.sub(xi, mi), si)), -0.5), tf.add(tf.log(si), 0.5 * Math.log(2 * Math.PI))), -1);
        const fused = normalLogProbFused(x, loc, scale);
        expect(fused, `[${shape}] on ${backend}`).toBeDefined();
        close(values(fused!), values(byOps(x, loc, scale)), 1e-5);
        const w = tf.randomNormal(shape.slice(0, -1), 0, 1, 'float32', 4);
        const got = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(normalLogProbFused(a, b, c)!, w)))([x, loc, scale]);
        const want = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(byOps(a, b, c), w)))([x, loc, scale]);
        got.forEach((g, i) => close(values(g), values(want[i]!), 1e-4));
        // Normal.logProb takes it, and a gradient asked for one input only frees the others.
        close(values(new Normal(loc, scale).logProb(x)), values(byOps(x, loc, scale)), 1e-5);
        const before = tf.memory().numTensors;
        const only = tf.grad((a: tf.Tensor) => tf.sum(normalLogProbFused(a, loc, scale)!))(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        close(values(only), values(tf.grad((a: tf.Tensor) => tf.sum(byOps(a, loc, scale)))(x)), 1e-4);
      });
    }
  });

  it('declines parameters broadcast against the values (the tensor ops handle those)', () => {
    tf.tidy(() => {
      expect(normalLogProbFused(tf.zeros([4, 3]), tf.zeros([3]), tf.ones([4, 3]))).toBeUndefined();
      expect(normalLogProbFused(tf.zeros([4, 3]), tf.zeros([4, 3]), tf.ones([1, 3]))).toBeUndefined();
    });
  });
});
