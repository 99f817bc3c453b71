import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { describeBackends, values } from './backends.ts';

/** Identity whose gradient passes dy on unchanged (the same tensor object), recording the live bytes then. */
function probe(seen: number[]): (x: tf.Tensor) => tf.Tensor {
  return tf.customGrad(((x: tf.Tensor) => ({
    value: tf.clone(x),
    gradFunc: (dy: tf.Tensor) => {
      seen.push(tf.memory().numBytes);
      return dy;
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;
}

describeBackends('backward pass with eager release (src/runtime/backprop.ts)', () => {
  it('frees the gradients and saved tensors of the nodes it is done with: live bytes stay flat along a long chain', () => {
    const n = 1000;
    const depth = 60;
    const x = tf.variable(tf.randomUniform([n], -1, 1, 'float32', 3));
    const seen: number[] = [];
    const before = tf.memory().numBytes;
    const { value, grads } = tf.variableGrads(() => {
      let t: tf.Tensor = probe(seen)(x);
      for (let i = 0; i < depth; i++) t = tf.sin(t);
      return tf.sum(t) as tf.Scalar;
    }, [x]);
    // Reached last (the first op of the chain): without the release, the 60 saved inputs of sin
    // and the 60 gradients would all be alive here, > 120 * 4 kB.
    expect(seen.length).toBe(1);
    expect(seen[0]! - before).toBeLessThan(20 * n * 4);
    // The gradient itself: d/dx sin^60(x) = prod_i cos(sin^i(x)).
    const xv = values(x);
    const want = xv.map((v) => {
      let g = 1;
      let t = v;
      for (let i = 0; i < depth; i++) {
        g *= Math.cos(t);
        t = Math.sin(t);
      }
      return g;
    });
    const got = values(grads[x.name]!);
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 4)); // float32 over 60 factors
    tf.dispose([value, ...Object.values(grads), x]);
  });

  it('leaves a caller dy alone, keeps a gradient passed on unchanged, and still computes second derivatives', () => {
    const x = tf.tensor1d([0.5, -1, 2]);
    const dy = tf.tensor1d([1, 2, 3]);
    const seen: number[] = [];
    const g = tf.grad((t: tf.Tensor) => tf.mul(probe(seen)(tf.square(t)), 3))(x, dy);
    expect(dy.isDisposed).toBe(false);
    expect(values(g)).toEqual([1 * 6 * 0.5, 2 * 6 * -1, 3 * 6 * 2]);
    // d2/dx2 of x^3 = 6x (the inner backward replays the tape: nothing may be freed there).
    const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.grad((u: tf.Tensor) => tf.pow(u, 3))(t)))(x);
    values(g2).forEach((v, i) => expect(v).toBeCloseTo(6 * [0.5, -1, 2][i]!, 4));
    tf.dispose([x, dy, g, g2]);
  });

  it('does not grow the tensor count across steps', () => {
    const w = tf.variable(tf.randomNormal([8, 4], 0, 1, 'float32', 1));
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.relu(tf.matMul(tf.ones([5, 8]), w))) as tf.Scalar, [w]);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
  });
});
