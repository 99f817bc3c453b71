/**
 * tfjs's cpu `UnsortedSegmentSum`, replaced by one pass that adds each row of `x` into its
 * segment. tfjs's own builds, for every segment, a mask of the ids, a broadcast product with `x`
 * and a sum: O(segments x rows x width). It is the backward pass of every gather on cpu (tfjs's
 * `gather` gradient, and `scatterAddRows` in src/lower/gather.ts), where the segments are a
 * memory's rows: 12 of the 13 s of a truncated-proposal gradient test's 30 steps with a [1500, D]
 * table (node --cpu-prof, 2026-12-07).
 *
 * Same semantics: `x [...ids.shape, ...rest]`, `segmentIds` int32, output `[numSegments, ...rest]`
 * of x's dtype; ids outside [0, numSegments) add nothing. Installed through the registry (so the
 * generic mode restores tfjs's own, which native TensorFlow's mirrors) on first use.
 */
import * as tf from '@tensorflow/tfjs-core';
import { installKernel, ownKernelBackend } from './registry.ts';

/** The part of tfjs's cpu backend the kernel uses (`MathBackendCPU`). */
interface CpuBackendLike {
  data: { get(dataId: tf.DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array | Int32Array): tf.TensorInfo;
}

function segmentSum({ inputs, backend, attrs }: { inputs: { x: tf.TensorInfo; segmentIds: tf.TensorInfo }; backend: CpuBackendLike; attrs: { numSegments: number } }): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const { numSegments } = attrs;
  const xs = backend.data.get(x.dataId).values as Float32Array | Int32Array;
  const ids = backend.data.get(segmentIds.dataId).values as Int32Array;
  const rows = ids.length;
  const width = rows === 0 ? 0 : xs.length / rows;
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * width) : new Float32Array(numSegments * width);
  for (let r = 0; r < rows; r++) {
    const id = ids[r]!;
    if (id < 0 || id >= numSegments) continue;
    const from = r * width;
    const to = id * width;
    for (let j = 0; j < width; j++) out[to + j] += xs[from + j]!;
  }
  return backend.makeTensorInfo([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype, out);
}

const kernelFunc = segmentSum as unknown as tf.KernelFunc;

/** Installs the kernel when the active backend is cpu in vmm's mode (once); a no-op otherwise. */
export function useFastSegmentSum(): void {
  if (ownKernelBackend() !== 'cpu' || tf.getKernel('UnsortedSegmentSum', 'cpu')?.kernelFunc === kernelFunc) return;
  installKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc }, 'segment-sum');
}
