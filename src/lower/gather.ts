/**
 * `gatherRows`: rows of a table picked by integer indices, with a gradient w.r.t. the table on
 * every backend.
 *
 * tfjs's own gradient of `gather` scatters with the `UnsortedSegmentSum` kernel, which the wasm
 * backend does not have (`tf.grad` through `tf.gather` fails there with "Kernel
 * 'UnsortedSegmentSum' not registered for backend 'wasm'"). So the gather runs under
 * `tf.customGrad`, and the backward pass scatter-adds the output gradient into a zero table with
 * the first of these the active backend has: `UnsortedSegmentSum` (cpu, tensorflow; on cpu vmm's
 * one-pass kernel, src/kernels/segment_sum.ts), `ScatterNd` (wasm; it sums duplicate indices), or a
 * one-hot matMul (any backend; O(rows * table rows) memory).
 * The forward copy uses `GatherNd` where the backend has it (see `takeRows`), and the table is
 * flattened inside the custom op, off the tape, so reading K rows never copies the whole table.
 */
import * as tf from '@tensorflow/tfjs-core';
import { useFastSegmentSum } from '../kernels/segment_sum.ts';
import { reshape } from './plates.ts';

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
  const tableShape = table.shape;
  const d = tableShape[table.rank - 1]!;
  let rows: number;
  if (table.rank === 2) {
    rows = tableShape[0]!;
  } else {
    const [b, m] = tableShape as [number, number, number];
    if (indices.rank < 1 || indices.shape[indices.rank - 1] !== b) {
      throw new Error(`gatherRows: a per-batch table [${tableShape}] needs indices [..., ${b}], got [${indices.shape}]`);
    }
    rows = b * m;
  }
  const outShape = [...indices.shape, d];
  return tf.tidy(() => {
    // The row of every output as a column [N, 1]: the shape GatherNd and ScatterNd take (one
    // reshape here, none in `takeRows` and `scatterAddRows`).
    let flatIdx: tf.Tensor2D;
    if (table.rank === 2) {
      flatIdx = reshape(indices, [-1, 1]) as tf.Tensor2D;
    } else {
      const [b, m] = tableShape as [number, number, number];
      flatIdx = reshape(tf.add(indices, tf.range(0, b * m, m, 'int32')), [-1, 1]) as tf.Tensor2D;
    }
    // The table is flattened to [rows, D] inside the custom op, where no gradient is recorded: a
    // recorded reshape would save the whole table for its backward pass (a copy on wasm before
    // runtime/backend.ts made its Identity share buffers; still one more kernel and tape node).
    // The indices reach the backward pass through `save` (the engine keeps saved tensors alive
    // until then); a closure would see them disposed by this tidy.
    const gather = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
      save([flatIdx]);
      return {
        value: reshape(takeRows(reshape(t, [rows, d]) as tf.Tensor2D, flatIdx), outShape),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          reshape(scatterAddRows(reshape(dy, [-1, d]) as tf.Tensor2D, saved[0]!, rows, strategy), tableShape),
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return gather(table);
  });
}

/**
 * `table[idx]` row by row. `GatherNd` where the backend has it: wasm's `GatherV2` computes the
 * source of every output element separately (an index vector per element; ~20 ms for 128 rows
 * of 784), its `GatherNd` copies each row in one loop.
 */
function takeRows(table: tf.Tensor2D, idx: tf.Tensor): tf.Tensor2D {
  if (tf.getKernel('GatherNd', tf.getBackend())) return tf.gatherND(table, reshape(idx, [-1, 1])) as tf.Tensor2D;
  return tf.gather(table, reshape(idx, [-1]));
}

/** `out[idx[i], :] += updates[i, :]` into a zero `[rows, D]` table; `idx` `[N]` or `[N, 1]`. */
export function scatterAddRows(updates: tf.Tensor2D, idx: tf.Tensor, rows: number, strategy: ScatterStrategy = 'auto'): tf.Tensor2D {
  const d = updates.shape[1];
  const has = (k: string) => tf.getKernel(k, tf.getBackend()) !== undefined;
  useFastSegmentSum();
  const s = strategy === 'auto' ? (has('UnsortedSegmentSum') ? 'segment' : has('ScatterNd') ? 'scatter' : 'onehot') : strategy;
  switch (s) {
    case 'segment':
      return tf.unsortedSegmentSum(updates, reshape(idx, [-1]) as tf.Tensor1D, rows);
    case 'scatter':
      return tf.scatterND(reshape(idx, [-1, 1]), updates, [rows, d]);
    case 'onehot':
      return tf.tidy(() => tf.matMul(tf.oneHot(reshape(idx, [-1]) as tf.Tensor1D, rows), updates, true, false));
  }
}
