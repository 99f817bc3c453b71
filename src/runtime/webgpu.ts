/**
 * The WebGPU backend in Node: TensorFlow.js's own `@tensorflow/tfjs-backend-webgpu` on Dawn's
 * Node binding, the npm package `webgpu` (an optional dependency: `dawn.node` ships prebuilt in
 * the package for linux-x64/arm64, macOS and Windows, nothing is downloaded at install). Dawn
 * drives any GPU with a Vulkan, Metal or D3D12 driver, and Mesa's software Vulkan GPU (lavapipe),
 * which is how CI runs this path on a CPU.
 *
 * Order matters: tfjs-backend-webgpu registers its backend at import time only if
 * `navigator.gpu` exists (`isWebGPUSupported`), so the `webgpu` package's `create()` result is
 * installed as `navigator.gpu` (with its `GPU*` classes as globals, which the backend's code names,
 * e.g. `GPUBufferUsage`) before the backend module is imported.
 *
 * Reads: tfjs-webgpu's synchronous read (`dataSync`) draws through an `OffscreenCanvas`, which
 * exists only in browsers; in Node every read from this backend must be asynchronous
 * (`src/kernels/readback.ts` says which backends read synchronously).
 */
import { existsSync, readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { fixBackendKernel } from '../kernels/registry.ts';

/** What the adapter says of itself, as the backend line shows it. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (lavapipe, SwiftShader, WARP): no speed to gain, used only when forced. */
  software: boolean;
}

export interface WebGpuProbe {
  ok: boolean;
  /** Why not, when !ok (one short clause). */
  why: string;
  adapter?: AdapterInfo;
}

let probe: Promise<WebGpuProbe> | undefined;

/**
 * Whether the automatic choice should look for a WebGPU adapter at all: on Linux only where a GPU
 * device node exists (an NVIDIA driver's /dev/nvidia0, or a DRM render node), since the only
 * adapter a machine without one has is a software one, which the automatic choice never takes, and
 * starting Dawn there prints its warnings on every command; elsewhere (Metal, D3D12) always.
 * `VMM_WEBGPU=0` turns the automatic look off; `--backend webgpu` always looks.
 */
export function gpuLikely(): boolean {
  if (process.env['VMM_WEBGPU'] === '0') return false;
  if (process.platform !== 'linux') return true;
  if (existsSync('/dev/nvidia0')) return true;
  try {
    return readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

/**
 * Loads Dawn, finds an adapter and registers tfjs's webgpu backend (once per process). Does not
 * make it the active backend.
 */
export function loadWebGpu(): Promise<WebGpuProbe> {
  probe ??= load();
  return probe;
}

async function load(): Promise<WebGpuProbe> {
  let dawn: { create: (flags: string[]) => GpuLike; globals: Record<string, unknown> };
  try {
    // A variable specifier: the optional package's types are not needed to build vmm.
    const spec: string = 'webgpu';
    dawn = (await import(spec)) as typeof dawn;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return { ok: false, why: 'the optional package `webgpu` (Dawn) is not installed' };
    return { ok: false, why: `the package \`webgpu\` failed to load (${firstLine(e)})` };
  }
  let gpu: GpuLike;
  let adapter: AdapterLike | null;
  try {
    gpu = dawn.create([]);
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { ok: false, why: `Dawn could not start (${firstLine(e)})` };
  }
  if (!adapter) return { ok: false, why: 'no WebGPU adapter (no Vulkan/Metal/D3D12 driver found; on Debian `mesa-vulkan-drivers` >= 25 gives a software one)' };
  const info = describeAdapter(adapter);
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (nav && typeof nav === 'object') {
    try {
      Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    } catch {
      return { ok: false, why: 'navigator.gpu could not be set in this Node' };
    }
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    return { ok: false, why: `@tensorflow/tfjs-backend-webgpu failed to load (${firstLine(e)})` };
  }
  if (!tf.findBackendFactory('webgpu')) return { ok: false, why: 'tfjs-backend-webgpu did not register (navigator.gpu not seen)' };
  fixAddN();
  // Dawn warns on stderr about limits it lowers; vmm's backend line says what runs.
  return { ok: true, why: '', adapter: info };
}

/**
 * tfjs-webgpu's AddN binds one storage buffer per input, and fails to build its pipeline past the
 * device's `maxStorageBuffersPerShaderStage` (8 by WebGPU's default limits, lavapipe's too) less
 * one for the output: a gradient-norm clip over more than 7 variables (optimizer.ts) or any
 * addN of 8 tensors produced nothing but validation errors. Its Concat already splits its inputs;
 * AddN is made to do the same: sums of at most that many, then a sum of the sums.
 */
function fixAddN(): void {
  const orig = tf.getKernel('AddN', 'webgpu');
  if (!orig) return;
  type Info = { dataId: object };
  type Backend = { device: { limits: { maxStorageBuffersPerShaderStage: number } }; disposeData(id: object): void };
  const run = orig.kernelFunc as unknown as (a: { inputs: Info[]; backend: Backend; attrs: object }) => Info;
  const kernelFunc = ((args: { inputs: Info[]; backend: Backend; attrs: object }) => {
    const max = Math.max(2, args.backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    const sum = (xs: Info[]): Info => {
      if (xs.length <= max) return run({ ...args, inputs: xs });
      const parts: Info[] = [];
      for (let i = 0; i < xs.length; i += max) parts.push(sum(xs.slice(i, i + max)));
      const out = sum(parts);
      for (const p of parts) args.backend.disposeData(p.dataId);
      return out;
    };
    return sum(Array.from(args.inputs));
  }) as unknown as tf.KernelFunc;
  fixBackendKernel({ ...orig, kernelFunc });
}

/** The adapter's info, and whether it is a software implementation. */
function describeAdapter(adapter: AdapterLike): AdapterInfo {
  const i = adapter.info ?? {};
  const vendor = String(i.vendor ?? '');
  const architecture = String(i.architecture ?? '');
  const device = String(i.device ?? '');
  const description = String(i.description ?? '');
  const software =
    i.isFallbackAdapter === true ||
    adapter.isFallbackAdapter === true ||
    architecture === 'software' ||
    /llvmpipe|lavapipe|swiftshader|microsoft basic render/i.test(`${device} ${description}`);
  return { vendor, architecture, device, description, software };
}

/**
 * "llvmpipe, software" or "NVIDIA H100 80GB HBM3, Vulkan": the adapter's own name (its
 * description's first clause) and the native API Dawn uses on this platform.
 */
export function adapterLabel(a: AdapterInfo): string {
  const name = (a.description.split(':')[0] || a.device || a.vendor || 'unknown adapter').trim();
  const api = process.platform === 'darwin' ? 'Metal' : process.platform === 'win32' ? 'D3D12' : 'Vulkan';
  return `${name}, ${a.software ? 'software' : api}`;
}

interface GpuLike {
  requestAdapter(opts?: { powerPreference?: string; forceFallbackAdapter?: boolean }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: { vendor?: unknown; architecture?: unknown; device?: unknown; description?: unknown; isFallbackAdapter?: unknown };
  isFallbackAdapter?: unknown;
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.slice(0, 300);
}
