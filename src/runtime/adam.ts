/**
 * The one-pass Adam update (Kingma & Ba 2014, arXiv:1412.6980, Algorithm 1, in the form of
 * `SlotOptimizer.apply`): one kernel call for every variable of a step, instead of 13 tfjs ops
 * per variable.
 *
 * - wasm, where the OpenBLAS module is built: a native pass (blas.ts, `VmmAdamAll`).
 * - cpu: the same pass as a JavaScript loop over the backend's Float32Arrays, registered here
 *   under the same kernel name. On tfjs's cpu backend each of the 13 ops is a broadcasting loop
 *   with a modulo per element and a fresh array: on the benchmark model (1.1M parameters, batch 2)
 *   the update was 500 of a 720 ms step (node --cpu-prof, 2026-12-07).
 *
 * Neither exists on the generic path (kernels/registry.ts): there the optimizer runs the 13 ops, as
 * on native TensorFlow and WebGPU.
 */
import * as tf from '@tensorflow/tfjs-core';
import { installKernel, ownKernelBackend } from '../kernels/registry.ts';
import { ADAM_ALL_KERNEL, nativeAdamAvailable, type AdamStep } from './blas.ts';

/** The part of tfjs's cpu backend the kernel uses (`MathBackendCPU`). */
interface CpuBackendLike {
  data: { get(dataId: tf.DataId): { values?: unknown } };
  refCount(dataId: tf.DataId): number;
  incRef(dataId: tf.DataId): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
}

/**
 * Writes one Adam step of `w, g, m, v` into `w1, m1, v1` (which may be `w, m, v` themselves: each
 * element is read before it is written). The arithmetic of vmm_blas.c's `ADAM_ELEMENT`, in float64
 * rounded to float32 where it is stored.
 */
export function adamPass(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, w1: Float32Array, m1: Float32Array, v1: Float32Array, k: AdamStep): void {
  const { beta1: b1, beta2: b2, stepSize, sqrtBc2, eps } = k;
  const ob1 = 1 - b1;
  const ob2 = 1 - b2;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!;
    const mi = Math.fround(b1 * m[i]! + ob1 * gi);
    const vi = Math.fround(b2 * v[i]! + ob2 * gi * gi);
    const wi = w[i]!;
    m1[i] = mi;
    v1[i] = vi;
    w1[i] = wi - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
  }
}

function cpuAdamOne(backend: CpuBackendLike, w: tf.TensorInfo, g: tf.TensorInfo, m: tf.TensorInfo, v: tf.TensorInfo, k: AdamStep): tf.TensorInfo[] {
  const own = [w, m, v];
  const arrays = [w, g, m, v].map((t) => backend.data.get(t.dataId).values);
  if (!arrays.every((a) => a instanceof Float32Array)) throw new Error('VmmAdamAll (cpu): w, g, m, v must be float32');
  const [wv, gv, mv, vv] = arrays as [Float32Array, Float32Array, Float32Array, Float32Array];
  // In place where nothing else holds the variable's or the moments' buffers (as on wasm,
  // blas.ts): the outputs are those buffers again and the caller's `assign` keeps them.
  const ids = new Set([w, g, m, v].map((t) => t.dataId));
  if (ids.size === 4 && own.every((t) => backend.refCount(t.dataId) === 1)) {
    adamPass(wv, gv, mv, vv, wv, mv, vv, k);
    for (const t of own) backend.incRef(t.dataId);
    return own.map((t) => ({ dataId: t.dataId, shape: [...t.shape], dtype: 'float32' as const }));
  }
  const [w1, m1, v1] = own.map(() => new Float32Array(wv.length)) as [Float32Array, Float32Array, Float32Array];
  adamPass(wv, gv, mv, vv, w1, m1, v1, k);
  return [w1, m1, v1].map((values, i) => backend.makeTensorInfo([...own[i]!.shape], 'float32', values));
}

function cpuAdamAvailable(): boolean {
  if (ownKernelBackend() !== 'cpu') return false;
  if (tf.getKernel(ADAM_ALL_KERNEL, 'cpu')) return true;
  const kernelFunc = (({ inputs, backend, attrs }: { inputs: Record<string, tf.TensorInfo>; backend: CpuBackendLike; attrs: AdamStep & { n: number } }) => {
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < attrs.n; i++) outs.push(...cpuAdamOne(backend, inputs[`w${i}`]!, inputs[`g${i}`]!, inputs[`m${i}`]!, inputs[`v${i}`]!, attrs));
    return outs;
  }) as unknown as tf.KernelFunc;
  return installKernel({ kernelName: ADAM_ALL_KERNEL, backendName: 'cpu', kernelFunc }, 'adam');
}

/**
 * Whether the one-pass update runs on the active backend (registering its kernel on first use):
 * wasm with the native module, or cpu; never on the generic path.
 */
export function fusedAdamAvailable(): boolean {
  return nativeAdamAvailable() || cpuAdamAvailable();
}

/**
 * One Adam step of every variable in one kernel call: `[w', m', v']` per entry of `ws`
 * (with the gradient and moments at the same index); needs `fusedAdamAvailable()`.
 */
export function fusedAdamAll(ws: tf.Tensor[], gs: tf.Tensor[], ms: tf.Tensor[], vs: tf.Tensor[], step: AdamStep): [tf.Tensor, tf.Tensor, tf.Tensor][] {
  const n = ws.length;
  if (gs.length !== n || ms.length !== n || vs.length !== n) throw new Error('fusedAdamAll: one gradient and two moments per variable');
  const inputs: Record<string, tf.Tensor> = {};
  for (let i = 0; i < n; i++) {
    const w = ws[i]!;
    for (const t of [w, gs[i]!, ms[i]!, vs[i]!]) {
      if (t.dtype !== 'float32' || t.size !== w.size) throw new Error(`fusedAdamAll: w, g, m, v must be float32 of shape [${w.shape}]`);
    }
    Object.assign(inputs, { [`w${i}`]: w, [`g${i}`]: gs[i]!, [`m${i}`]: ms[i]!, [`v${i}`]: vs[i]! });
  }
  const out = tf.engine().runKernel(ADAM_ALL_KERNEL, inputs as unknown as tf.NamedTensorMap, { ...step, n } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  return Array.from({ length: n }, (_, i) => [out[3 * i]!, out[3 * i + 1]!, out[3 * i + 2]!]);
}
