/**
 * Log-densities as one kernel each (forward and gradient), computed on the host memory of the cpu
 * and wasm backends: the Bernoulli log-likelihood of the decoder's logits `[K, B, 784]` was 4
 * kernels forward (multiply, softplus, subtract, sum) and about 8 backward, each a pass over the
 * whole tensor (bench/results/kernels.md). Other backends (tfjs-node) keep the tensor ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { installKernel, kernelMode } from '../kernels/registry.ts';

const LOGPROB = 'VmmBernoulliLogProb';
const FUSED_LOGPROB = 'fused-bernoulli';
const LOGPROB_GRAD = 'VmmBernoulliLogProbGrad';
const HOST_BACKENDS = new Set(['cpu', 'wasm']);

type Info = { dataId: object; shape: number[]; dtype: tf.DataType };
interface HostBackend {
  // wasm
  typedArrayFromHeap?(t: Info): Float32Array;
  makeOutput?(shape: number[], dtype: tf.DataType): Info;
  // cpu
  data?: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values: Float32Array): Info;
}

/** The float32 values of an input where the backend keeps them (no copy). */
function read(backend: HostBackend, t: Info): Float32Array {
  if (backend.typedArrayFromHeap) return backend.typedArrayFromHeap(t);
  return backend.data!.get(t.dataId).values;
}

/** An output of `shape` holding `values` (wasm copies them into its heap). */
function write(backend: HostBackend, shape: number[], values: Float32Array): Info {
  if (backend.makeOutput && backend.typedArrayFromHeap) {
    const out = backend.makeOutput(shape, 'float32');
    backend.typedArrayFromHeap(out).set(values);
    return out;
  }
  return backend.makeTensorInfo!(shape, 'float32', values);
}

/**
 * The two loops in native code (the OpenBLAS module's, src/runtime/blas.ts hands them over when it
 * loads on wasm): arguments are views of the wasm heap, `out` written in place.
 */
export interface BernoulliNative {
  bernoulli_logprob(l: Float32Array, x: Float32Array, out: Float32Array): void;
  bernoulli_logprob_grad(dy: Float32Array, l: Float32Array, x: Float32Array, out: Float32Array): void;
}
let native: BernoulliNative | undefined;

/** Runs the wasm kernels through `impl` (undefined: back to the JavaScript loops). */
export function useNativeBernoulli(impl: BernoulliNative | undefined): void {
  native = impl;
}

/** softplus(l) = log(1 + e^l), without overflow. */
const softplus = (l: number): number => Math.max(l, 0) + Math.log1p(Math.exp(-Math.abs(l)));

let gradRegistered = false;

function available(): boolean {
  const backend = tf.getBackend();
  if (!HOST_BACKENDS.has(backend) || kernelMode() === 'generic') return false;
  if (tf.getKernel(LOGPROB, backend)) return true;
  // out[r] = sum_d x l - softplus(l) over the last axis (x repeats over l's leading axes).
  const forward = ({ inputs, backend: b }: { inputs: { l: Info; x: Info }; backend: HostBackend }): Info => {
    const { l, x } = inputs;
    if (native && b.makeOutput && b.typedArrayFromHeap) {
      const out = b.makeOutput(l.shape.slice(0, -1), 'float32');
      native.bernoulli_logprob(read(b, l), read(b, x), b.typedArrayFromHeap(out)); // views after the allocation
      return out;
    }
    const d = l.shape[l.shape.length - 1]!;
    const lv = read(b, l);
    const xv = read(b, x);
    const rows = lv.length / d;
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const base = r * d;
      for (let j = 0; j < d; j++) {
        const li = lv[base + j]!;
        s += xv[(base + j) % xv.length]! * li - softplus(li);
      }
      out[r] = s;
    }
    return write(b, l.shape.slice(0, -1), out);
  };
  // dl = dy[r] (x - sigmoid(l)).
  const gradient = ({ inputs, backend: b }: { inputs: { dy: Info; l: Info; x: Info }; backend: HostBackend }): Info => {
    const { dy, l, x } = inputs;
    if (native && b.makeOutput && b.typedArrayFromHeap) {
      const out = b.makeOutput(l.shape, 'float32');
      native.bernoulli_logprob_grad(read(b, dy), read(b, l), read(b, x), b.typedArrayFromHeap(out));
      return out;
    }
    const d = l.shape[l.shape.length - 1]!;
    const lv = read(b, l);
    const xv = read(b, x);
    const dyv = read(b, dy);
    const out = new Float32Array(lv.length);
    for (let i = 0; i < lv.length; i++) out[i] = dyv[Math.floor(i / d)]! * (xv[i % xv.length]! - 1 / (1 + Math.exp(-lv[i]!)));
    return write(b, l.shape, out);
  };
  // Through the one registry of vmm's kernels: on the generic path it refuses, and the caller
  // falls back to tfjs ops.
  if (!installKernel({ kernelName: LOGPROB, backendName: backend, kernelFunc: forward as unknown as tf.KernelFunc }, FUSED_LOGPROB)) return false;
  installKernel({ kernelName: LOGPROB_GRAD, backendName: backend, kernelFunc: gradient as unknown as tf.KernelFunc }, FUSED_LOGPROB);
  if (!gradRegistered) {
    tf.registerGradient({
      kernelName: LOGPROB,
      inputsToSave: ['l', 'x'],
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [l, x] = saved as [tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        return {
          l: () => tf.engine().runKernel(LOGPROB_GRAD, { dy: g, l, x }, {}) as tf.Tensor,
          // d/dx (x l - softplus(l)) = l, summed over the axes x was repeated along (rarely asked for: x is data or a draw).
          x: () => tf.tidy(() => tf.reshape(tf.sum(tf.reshape(tf.mul(tf.expandDims(g, -1), l), [-1, x.size]), 0), x.shape)),
        };
      },
    });
    gradRegistered = true;
  }
  return true;
}

/**
 * `sum_d x_d l_d - softplus(l_d)` over the last axis of `l [..., D]` as one kernel (and one for its
 * gradient), or undefined where that does not apply (another backend, or an `x` that is not `l`'s
 * shape or a trailing part of it, i.e. not repeated over l's leading axes): the caller then uses
 * tensor ops.
 */
export function bernoulliLogProbFused(l: tf.Tensor, x: tf.Tensor): tf.Tensor | undefined {
  if (l.dtype !== 'float32' || x.dtype !== 'float32' || l.rank < 1 || l.size === 0) return undefined;
  // x's shape without leading 1s must be a suffix of l's (x repeats over l's leading axes).
  let i = 0;
  while (i < x.rank - 1 && x.shape[i] === 1) i++;
  const tail = x.shape.slice(i);
  if (x.rank > l.rank || !tail.every((n, j) => n === l.shape[l.rank - tail.length + j])) return undefined;
  if (!available()) return undefined;
  return tf.engine().runKernel(LOGPROB, { l, x }, {}) as tf.Tensor;
}

/*
 * The Normal log-density `sum_d -((x - μ)/σ)^2 / 2 - log σ - log(2π)/2` over the last axis, for
 * x, μ and σ of one shape (p(z | m_a).logProb(z) in the VMA models: 8 kernels forward and about
 * 13 backward before), and its gradient by one kernel per input asked for (tfjs runs each input's
 * gradient function in a scope of its own, so one kernel with three outputs would see two of them
 * freed, or leak the unused ones):
 *   d/dx = -z/σ dy,  d/dμ = z/σ dy,  d/dσ = (z^2 - 1)/σ dy,  z = (x - μ)/σ.
 * JavaScript loops on the host memory of cpu and wasm: the tensors are small ([K, B, Z]), the
 * cost was the dispatch of 21 kernels, not arithmetic.
 */
const NORMAL = 'VmmNormalLogProb';
const NORMAL_GRAD = 'VmmNormalLogProbGrad';
const FUSED_NORMAL = 'fused-normal';
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
let normalGradRegistered = false;

function normalAvailable(): boolean {
  const backend = tf.getBackend();
  if (!HOST_BACKENDS.has(backend) || kernelMode() === 'generic') return false;
  if (tf.getKernel(NORMAL, backend)) return true;
  const forward = ({ inputs, backend: b }: { inputs: { x: Info; loc: Info; scale: Info }; backend: HostBackend }): Info => {
    const d = inputs.x.shape[inputs.x.shape.length - 1]!;
    const [x, mu, s] = [read(b, inputs.x), read(b, inputs.loc), read(b, inputs.scale)];
    const rows = x.length / d;
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let j = r * d; j < (r + 1) * d; j++) {
        const z = (x[j]! - mu[j]!) / s[j]!;
        acc += -0.5 * z * z - Math.log(s[j]!) - HALF_LOG_2PI;
      }
      out[r] = acc;
    }
    return write(b, inputs.x.shape.slice(0, -1), out);
  };
  const gradient = ({ inputs, backend: b, attrs }: { inputs: { dy: Info; x: Info; loc: Info; scale: Info }; backend: HostBackend; attrs: { wrt: 'x' | 'loc' | 'scale' } }): Info => {
    const shape = inputs.x.shape;
    const d = shape[shape.length - 1]!;
    const [dy, x, mu, s] = [read(b, inputs.dy), read(b, inputs.x), read(b, inputs.loc), read(b, inputs.scale)];
    const out = new Float32Array(x.length);
    const wrt = attrs.wrt;
    for (let r = 0, j = 0; r < dy.length; r++) {
      const g = dy[r]!;
      for (let e = j + d; j < e; j++) {
        const z = (x[j]! - mu[j]!) / s[j]!;
        out[j] = (wrt === 'scale' ? (z * z - 1) / s[j]! : wrt === 'loc' ? z / s[j]! : -z / s[j]!) * g;
      }
    }
    return write(b, shape, out);
  };
  if (!installKernel({ kernelName: NORMAL, backendName: backend, kernelFunc: forward as unknown as tf.KernelFunc }, FUSED_NORMAL)) return false;
  installKernel({ kernelName: NORMAL_GRAD, backendName: backend, kernelFunc: gradient as unknown as tf.KernelFunc }, FUSED_NORMAL);
  if (!normalGradRegistered) {
    tf.registerGradient({
      kernelName: NORMAL,
      inputsToSave: ['x', 'loc', 'scale'],
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [x, loc, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const grad = (wrt: 'x' | 'loc' | 'scale') => () => tf.engine().runKernel(NORMAL_GRAD, { dy: dy as tf.Tensor, x, loc, scale }, { wrt }) as tf.Tensor;
        return { x: grad('x'), loc: grad('loc'), scale: grad('scale') };
      },
    });
    normalGradRegistered = true;
  }
  return true;
}

/**
 * The Normal log-density of `x` under `loc`, `scale` summed over the last axis as one kernel (and
 * one for its gradient), or undefined where that does not apply (another backend, the generic path,
 * parameters broadcast against the values): the caller then uses tensor ops.
 */
export function normalLogProbFused(x: tf.Tensor, loc: tf.Tensor, scale: tf.Tensor): tf.Tensor | undefined {
  const same = (t: tf.Tensor) => t.dtype === 'float32' && t.rank === x.rank && t.shape.every((n, i) => n === x.shape[i]);
  if (x.dtype !== 'float32' || x.rank < 1 || x.size === 0 || !same(loc) || !same(scale)) return undefined;
  if (!normalAvailable()) return undefined;
  return tf.engine().runKernel(NORMAL, { x, loc, scale }, {}) as tf.Tensor;
}
