import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gatherRows, type ScatterStrategy } from '../../src/lower/gather.ts';
import { BACKENDS, describeBackends, maxRelDiff, use, values } from '../runtime/backends.ts';

/** Reference for a shared table [M, D]: one-hot(idx) @ table. */
function oneHotShared(table: tf.Tensor2D, idx: tf.Tensor): tf.Tensor {
  const [m, d] = table.shape;
  const oh = tf.oneHot(tf.reshape(idx, [-1]) as tf.Tensor1D, m);
  return tf.reshape(tf.matMul(oh, table), [...idx.shape, d]);
}

/** Reference for per-batch tables [B, M, D] and idx [...lead, B]: per b, one-hot(idx[..., b]) @ table[b]. */
function oneHotBatched(table: tf.Tensor3D, idx: tf.Tensor): tf.Tensor {
  const [b, m, d] = table.shape;
  const lead = idx.shape.slice(0, -1);
  const l = lead.reduce((x, y) => x * y, 1);
  const perB = tf.transpose(tf.reshape(idx, [l, b])) as tf.Tensor2D; // [B, L]
  const oh = tf.oneHot(perB, m); // [B, L, M]
  const out = tf.matMul(oh, table); // [B, L, D]
  return tf.reshape(tf.transpose(out, [1, 0, 2]), [...lead, b, d]);
}

const IDX_SHARED = [
  [3, 0, 3, 5],
  [1, 1, 1, 0],
  [5, 4, 2, 3],
]; // [3, 4], M = 6, duplicates included
const IDX_BATCHED = [
  [0, 2, 2],
  [0, 0, 1],
  [3, 2, 0],
  [3, 3, 3],
]; // [K = 4, B = 3], M = 4

function strategies(): ScatterStrategy[] {
  const s: ScatterStrategy[] = ['auto', 'onehot'];
  if (tf.getKernel('ScatterNd', tf.getBackend())) s.push('scatter');
  if (tf.getKernel('UnsortedSegmentSum', tf.getBackend())) s.push('segment');
  return s;
}

describeBackends('gatherRows', (backend) => {
  it('shared table [M, D] with indices [...lead]: values and gradient match one-hot matmul', () => {
    for (const strategy of strategies()) {
      tf.tidy(() => {
        const table = tf.randomNormal([6, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
        const idx = tf.tensor2d(IDX_SHARED, [3, 4], 'int32');
        const w = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 2);
        const out = gatherRows(table, idx, { backward: strategy });
        expect(out.shape).toEqual([3, 4, 5]);
        expect(maxRelDiff(values(out), values(oneHotShared(table, idx)))).toBeLessThan(1e-6);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, idx, { backward: strategy }), w)))(table);
        const ref = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(oneHotShared(t as tf.Tensor2D, idx), w)))(table);
        expect(maxRelDiff(values(g), values(ref)), `${backend} ${strategy}`).toBeLessThan(1e-5);
      });
    }
  });

  it('per-batch tables [B, M, D] with indices [K, B]: values and gradient match one-hot matmul', () => {
    for (const strategy of strategies()) {
      tf.tidy(() => {
        const table = tf.randomNormal([3, 4, 2], 0, 1, 'float32', 3) as tf.Tensor3D;
        const idx = tf.tensor2d(IDX_BATCHED, [4, 3], 'int32');
        const w = tf.randomNormal([4, 3, 2], 0, 1, 'float32', 4);
        const out = gatherRows(table, idx, { backward: strategy });
        expect(out.shape).toEqual([4, 3, 2]);
        const tv = values(table);
        // Direct check of the definition out[k, b, :] = table[b, idx[k, b], :].
        const ov = values(out);
        for (let k = 0; k < 4; k++)
          for (let b = 0; b < 3; b++)
            for (let d = 0; d < 2; d++) expect(ov[(k * 3 + b) * 2 + d]).toBe(tv[(b * 4 + IDX_BATCHED[k]![b]!) * 2 + d]);
        expect(maxRelDiff(ov, values(oneHotBatched(table, idx)))).toBeLessThan(1e-6);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, idx, { backward: strategy }), w)))(table);
        const ref = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(oneHotBatched(t as tf.Tensor3D, idx), w)))(table);
        expect(maxRelDiff(values(g), values(ref)), `${backend} ${strategy}`).toBeLessThan(1e-5);
      });
    }
  });

  it('indices with one axis [B] (one read per episode) and more leading axes', () => {
    tf.tidy(() => {
      const table = tf.randomNormal([3, 4, 2], 0, 1, 'float32', 5) as tf.Tensor3D;
      expect(gatherRows(table, tf.tensor1d([1, 3, 0], 'int32')).shape).toEqual([3, 2]);
      expect(gatherRows(table, tf.zeros([2, 5, 3], 'int32')).shape).toEqual([2, 5, 3, 2]);
    });
  });

  it('validates its arguments', () => {
    tf.tidy(() => {
      const table = tf.zeros([3, 4, 2]);
      expect(() => gatherRows(table, tf.zeros([5, 2], 'int32'))).toThrow(/needs indices \[\.\.\., 3\]/);
      expect(() => gatherRows(table, tf.zeros([5, 3]))).toThrow(/int32/);
      expect(() => gatherRows(tf.zeros([2]), tf.zeros([5], 'int32'))).toThrow(/\[M, D\] or \[B, M, D\]/);
    });
  });

  it('keeps the tensor count flat across gather + grad iterations', () => {
    const table = tf.variable(tf.randomNormal([3, 4, 2], 0, 1, 'float32', 6));
    const idx = tf.tensor2d(IDX_BATCHED, [4, 3], 'int32');
    const iter = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(gatherRows(table, idx))) as tf.Scalar, [table]);
        return tf.add(value, tf.sum(grads[table.name]!));
      });
    iter().dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) iter().dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([table, idx]);
  });
});

describe('the reason gatherRows exists', () => {
  it('tf.gather has no gradient on wasm (UnsortedSegmentSum is missing there)', async () => {
    if (!BACKENDS.includes('wasm')) return;
    await use('wasm');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    expect(() =>
      tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([0, 1], 'int32'))))(tf.ones([2, 2]))),
    ).toThrow(/UnsortedSegmentSum/);
  });
});
