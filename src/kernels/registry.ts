/**
 * vmm's own tfjs kernels, and the one switch that turns them all off: the generic path.
 *
 * vmm adds kernels to tfjs and replaces some of a backend's, each written for (and tested on) the
 * wasm and cpu backends:
 * - the dense layer `VmmDense` / `VmmDenseRelu`, wasm and cpu (nets.ts), whose gradient sums the
 *   bias gradient as an average pool on wasm;
 * - the one-pass Adam update `VmmAdamAll`: wasm with the OpenBLAS module (runtime/blas.ts), cpu
 *   as a JavaScript loop (runtime/adam.ts);
 * - cpu's `UnsortedSegmentSum` (a gather's gradient) as one pass (segment_sum.ts);
 * - wasm's `BatchMatMul`, `_FusedMatMul`, `Conv2D`, `Conv2DBackpropInput`, `Conv2DBackpropFilter`
 *   and `Sum` through OpenBLAS (runtime/blas.ts), or else wasm's `BatchMatMul` with the
 *   transposition fix (runtime/backend.ts).
 * None of them exists for native TensorFlow (`tfjs-node`, `tfjs-node-gpu`, the backend a GPU user
 * runs): there vmm runs tfjs's own ops, the generic path: `tf.fused.matMul` for a dense layer
 * (unfused matMul, add, relu while a gradient is recorded), Adam as 13 tfjs ops per variable,
 * tfjs's gradients of conv2d and of the bias add. `VMM_KERNELS=generic` in the environment, or
 * `selectBackend({ kernels: 'generic' })`, makes cpu and wasm take that path too, so that the code a
 * GPU user runs is the code the tests run (test/runtime/generic_path.test.ts).
 *
 * Every kernel vmm registers goes through `installKernel`, which refuses in the generic mode and
 * remembers what it replaced; switching to the generic mode restores the backends' own kernels.
 * What stays backend-dependent on the generic path is what depends only on which kernels a backend
 * has (gather.ts: `GatherNd`, `UnsortedSegmentSum`; nets.ts: `Conv2DBackpropFilter`). The cpu
 * backend has all three, as native TensorFlow does, so on cpu every branch is native TensorFlow's;
 * wasm lacks the last two and keeps its `ScatterNd` and `customGrad` fallbacks.
 *
 * A module of the lowering rather than of the runtime because nets.ts, below the runtime in the
 * layers (.dependency-cruiser.cjs), registers kernels too; runtime/backend.ts sets the mode.
 */
import * as tf from '@tensorflow/tfjs-core';

export const KERNEL_MODES = ['vmm', 'generic'] as const;
/** `vmm`: vmm's own kernels where they exist (the default); `generic`: tfjs's ops only. */
export type KernelMode = (typeof KERNEL_MODES)[number];
/** The environment variable that sets the initial mode. */
export const KERNELS_ENV = 'VMM_KERNELS';

/** The backends vmm's own kernels are written for. */
type OwnKernelBackend = 'wasm' | 'cpu';

interface Installed {
  kernelName: string;
  backendName: string;
  /** What the installer calls this group of kernels ('dense', 'adam', 'blas-products', ...). */
  tag: string;
  /** The backend's own kernel it replaced, restored by the generic mode. */
  replaced: tf.KernelConfig | undefined;
}

const installed: Installed[] = [];
/** The initial mode: the environment's (a value other than `generic` counts as `vmm` here). */
let mode: KernelMode = process.env[KERNELS_ENV] === 'generic' ? 'generic' : 'vmm';

/**
 * The mode `VMM_KERNELS` asks for (unset or empty: `vmm`); throws for another value, naming the
 * accepted ones. `selectBackend` calls it, so a misspelt value stops a run instead of being ignored.
 */
export function kernelModeFromEnv(): KernelMode {
  const value = process.env[KERNELS_ENV];
  if (value === undefined || value === '') return 'vmm';
  return parseKernelMode(value, KERNELS_ENV);
}

/** `value` as a kernel mode; an error naming `what` (an option or variable) otherwise. */
export function parseKernelMode(value: string, what: string): KernelMode {
  if ((KERNEL_MODES as readonly string[]).includes(value)) return value as KernelMode;
  throw new Error(`${what}=${value}: expected one of ${KERNEL_MODES.join(', ')}`);
}

export function kernelMode(): KernelMode {
  return mode;
}

/**
 * Sets the mode. Turning to `generic` unregisters every kernel vmm installed and restores the ones
 * they replaced; turning back to `vmm` installs nothing by itself (each owner installs its kernels
 * on its next use, the wasm patches when `selectBackend` selects wasm).
 */
export function setKernelMode(m: KernelMode): void {
  if (m === 'generic') {
    for (let i = installed.length - 1; i >= 0; i--) {
      const k = installed[i]!;
      tf.unregisterKernel(k.kernelName, k.backendName);
      if (k.replaced) tf.registerKernel(k.replaced);
    }
    installed.length = 0;
  }
  mode = m;
}

/**
 * The active backend when vmm's own kernels and backend-specific routes apply to it (wasm or cpu,
 * in the `vmm` mode); undefined on the generic path (native TensorFlow, or the `generic` mode).
 */
export function ownKernelBackend(): OwnKernelBackend | undefined {
  if (mode === 'generic') return undefined;
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu' ? b : undefined;
}

/**
 * Registers one of vmm's kernels (replacing the backend's kernel of that name, if any), or does
 * nothing and returns false in the generic mode. `tag` names the group it belongs to.
 */
export function installKernel(config: tf.KernelConfig, tag: string): boolean {
  if (mode === 'generic') return false;
  const { kernelName, backendName } = config;
  const replaced = tf.getKernel(kernelName, backendName);
  const ours = installed.findIndex((k) => k.kernelName === kernelName && k.backendName === backendName);
  if (replaced) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel(config);
  // Replacing one of our own (the transposition fix, then OpenBLAS) keeps the backend's original.
  if (ours >= 0) installed[ours] = { ...installed[ours]!, tag };
  else installed.push({ kernelName, backendName, tag, replaced });
  return true;
}

/**
 * Replaces a backend's own kernel with a corrected one, in every mode. Not one of vmm's kernels:
 * a fix for a limit the backend ignores (webgpu's AddN past its storage-buffer limit,
 * src/runtime/webgpu.ts), which the generic path needs as much as the default one, since a GPU
 * user runs it. Idempotent per kernel and backend.
 */
export function fixBackendKernel(config: tf.KernelConfig): void {
  const key = `${config.kernelName}/${config.backendName}`;
  if (fixed.has(key)) return;
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
  fixed.add(key);
}
const fixed = new Set<string>();

/** The group of wasm's products run by the OpenBLAS module (runtime/blas.ts). */
export const BLAS_PRODUCTS = 'blas-products';

/**
 * Whether a batch of thin products (matrix-vector, vector-matrix, outer: one of a product's three
 * sizes 1) runs faster as one BatchMatMul than as a broadcast multiply (and a sum): on every backend
 * but wasm without the OpenBLAS products, whose BatchMatMul is a scalar loop. The address logits of
 * a memory per episode, [32, 128, 256] . [32, 256] (bench/profile.ts, M = 128; ms a call): wasm
 * with OpenBLAS 0.3-0.4 as a product against 1.7 as multiply and sum (the outer product of its
 * gradient 0.25 against 0.45); cpu 4.5 against 155 (tfjs-cpu's broadcast multiply is a scalar loop
 * with index arithmetic per element); wasm alone 3.6 against 2.2 (the outer product 13.5 against 0.7).
 */
export function thinProductsAsMatMul(): boolean {
  return tf.getBackend() !== 'wasm' || kernelsInstalled(BLAS_PRODUCTS, 'wasm');
}

/** Whether a kernel of group `tag` is installed (for `backendName`, when given). */
export function kernelsInstalled(tag: string, backendName?: string): boolean {
  return installed.some((k) => k.tag === tag && (backendName === undefined || k.backendName === backendName));
}

/** The kernels vmm has installed, in order: `[kernel name, backend, tag]`. */
export function installedKernels(): [string, string, string][] {
  return installed.map((k) => [k.kernelName, k.backendName, k.tag]);
}
