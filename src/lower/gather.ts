/**
 * `gatherRows`: rows of a table picked by integer indices, with a gradient w.r.t. the table on
 * every backend.
 *
 * tfjs's own gradient of `gather` scatters with the `UnsortedSegmentSum` kernel, which the wasm
 * backend does not have (`tf.grad` through `tf.gather` fails there with "Kernel
 * 'UnsortedSegmentSum' not registered for backend 'wasm'"). So the gather runs under
 * `tf.customGrad`, and the backward pass scatter-adds the output gradient into a zero table with
 * the first of these the active backend has: `UnsortedSegmentSum` (cpu, tensorflow), `ScatterNd`
 * (wasm; it sums duplicate indices), or a one-hot matMul (any backend; O(rows * table rows) memory).
 */
import * as tf from '@tensorflow/tfjs-core';

export type ScatterStrategy = 'auto' | 'segment' | 'scatter' | 'onehot';

export interface GatherOptions {
  /** How the backward pass scatters (tests pin one; default `auto`, see the module comment). */
  backward?: ScatterStrategy;
}

/**
 * Batched row gather.
 * - `table [M, D]`, `indices [...lead]` -> `[...lead, D]`: `out[..., :] = table[idx[...], :]`.
 * - `table [B, M, D]`, `indices [...lead, B]` -> `[...lead, B, D]`:
 *   `out[..., b, :] = table[b, idx[..., b], :]` (each batch entry reads its own table).
 * `indices` must be int32 and in range (not checked: that would need a device sync).
 */
export function gatherRows(table: tf.Tensor, indices: tf.Tensor, opts: GatherOptions = {}): tf.Tensor {
  if (indices.dtype !== 'int32') throw new Error(`gatherRows: indices must be int32, got ${indices.dtype}`);
  if (table.rank !== 2 && table.rank !== 3) throw new Error(`gatherRows: table must be [M, D] or [B, M, D], got [${table.shape}]`);
  if (table.dtype !== 'float32') throw new Error(`gatherRows: table must be float32, got ${table.dtype}`);
  const strategy = opts.backward ?? 'auto';
  return tf.tidy(() => {
    let flatIdx: tf.Tensor1D;
    let rows: number;
    const d = table.shape[table.rank - 1]!;
    if (table.rank === 2) {
      rows = table.shape[0]!;
      flatIdx = tf.reshape(indices, [-1]) as tf.Tensor1D;
    } else {
      const [b, m] = table.shape as [number, number, number];
      if (indices.rank < 1 || indices.shape[indices.rank - 1] !== b) {
        throw new Error(`gatherRows: a per-batch table [${table.shape}] needs indices [..., ${b}], got [${indices.shape}]`);
      }
      rows = b * m;
      const offsets = tf.mul(tf.range(0, b, 1, 'int32'), tf.scalar(m, 'int32'));
      flatIdx = tf.reshape(tf.add(indices, offsets), [-1]) as tf.Tensor1D;
    }
    const flatTable = tf.reshape(table, [rows, d]) as tf.Tensor2D;
    // The indices reach the backward pass through `save` (the engine keeps saved tensors alive
    // until then); a closure would see them disposed by this tidy.
    const gather = tf.customGrad(((t: tf.Tensor2D, save: tf.GradSaveFunc) => {
      save([flatIdx]);
      return {
        value: tf.gather(t, flatIdx),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => scatterAddRows(dy as tf.Tensor2D, saved[0] as tf.Tensor1D, rows, strategy),
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    const out = gather(flatTable);
    return tf.reshape(out, [...indices.shape, d]);
  });
}

/** `out[idx[i], :] += updates[i, :]` into a zero `[rows, D]` table. */
export function scatterAddRows(updates: tf.Tensor2D, idx: tf.Tensor1D, rows: number, strategy: ScatterStrategy = 'auto'): tf.Tensor2D {
  const d = updates.shape[1];
  const has = (k: string) => tf.getKernel(k, tf.getBackend()) !== undefined;
  const s = strategy === 'auto' ? (has('UnsortedSegmentSum') ? 'segment' : has('ScatterNd') ? 'scatter' : 'onehot') : strategy;
  switch (s) {
    case 'segment':
      return tf.unsortedSegmentSum(updates, idx, rows);
    case 'scatter':
      return tf.scatterND(tf.reshape(idx, [-1, 1]), updates, [rows, d]);
    case 'onehot':
      return tf.tidy(() => tf.matMul(tf.oneHot(idx, rows), updates, true, false));
  }
}
