/**
 * vmm's cpu `UnsortedSegmentSum` (src/kernels/segment_sum.ts) against tfjs's own cpu kernel, which
 * the generic mode restores: the same values for float32 and int32 rows of any width, ids repeated,
 * missing and out of range; a 2-D array of ids (which tfjs's own fails to broadcast: against values
 * by hand); and a gather's gradient through it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useFastSegmentSum } from '../../src/kernels/segment_sum.ts';
import { installedKernels, kernelMode, setKernelMode } from '../../src/kernels/registry.ts';
import { Rng } from '../../src/random/rng.ts';

const initialMode = kernelMode();

/** tfjs's own kernel's result (generic mode) and vmm's (vmm mode) for the same inputs. */
function both(f: () => tf.Tensor): [number[], number[], number[]] {
  setKernelMode('generic');
  const own = f();
  setKernelMode('vmm');
  useFastSegmentSum();
  expect(installedKernels()).toContainEqual(['UnsortedSegmentSum', 'cpu', 'segment-sum']);
  const ours = f();
  const out: [number[], number[], number[]] = [Array.from(own.dataSync()), Array.from(ours.dataSync()), ours.shape];
  tf.dispose([own, ours]);
  return out;
}

describe('cpu UnsortedSegmentSum in one pass', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  afterAll(() => setKernelMode(initialMode));

  it('equals tfjs-cpu for float32 and int32, any width, ids repeated, missing and out of range', () => {
    const rng = new Rng(3);
    for (const [rows, rest, segments] of [[1, [1], 1], [7, [3], 5], [40, [2, 3], 9], [200, [16], 64]] as const) {
      const width = (rest as readonly number[]).reduce((a, b) => a * b, 1);
      // Ids from -2 to segments + 1: negatives and ids past the end add nothing.
      const ids = Array.from({ length: rows }, () => Math.floor(rng.next() * (segments + 4)) - 2);
      for (const dtype of ['float32', 'int32'] as const) {
        const values = Array.from({ length: rows * width }, () => (dtype === 'int32' ? Math.floor(rng.next() * 20) - 10 : rng.next() - 0.5));
        const [own, ours, shape] = both(() => tf.unsortedSegmentSum(tf.tensor(values, [rows, ...rest], dtype), tf.tensor1d(ids, 'int32'), segments));
        expect(shape).toEqual([segments, ...rest]);
        for (let i = 0; i < own.length; i++) expect(ours[i]!).toBeCloseTo(own[i]!, 5);
      }
    }
  });

  it('takes a 2-D array of ids, and gives tf.gather its gradient', () => {
    const x = tf.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]);
    const ids = tf.tensor2d([[0, 2, 2], [1, 3, 0]], [2, 3], 'int32');
    setKernelMode('vmm');
    useFastSegmentSum();
    const sums = tf.unsortedSegmentSum(x, ids as unknown as tf.Tensor1D, 3); // rows [1,2] [3,4] [5,6] [7,8] [9,10] [11,12] into 0 2 2 1 (3: none) 0
    expect(sums.shape).toEqual([3, 2]);
    expect(Array.from(sums.dataSync())).toEqual([12, 14, 7, 8, 8, 10]);
    const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const idx = tf.tensor1d([2, 0, 2, 2], 'int32');
    const [gOwn, gOurs] = both(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]))))(table));
    expect(gOurs).toEqual(gOwn);
    expect(gOurs).toEqual([3, 4, 0, 0, 13, 16]);
    tf.dispose([x, ids, sums, table, idx]);
  });
});
