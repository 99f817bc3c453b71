/**
 * The one place that selects the tfjs backend.
 *
 * Preference order: native TensorFlow (`@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`;
 * optional dependencies, usually absent because their install downloads libtensorflow), then
 * WebGPU when Dawn finds a hardware adapter (src/runtime/webgpu.ts; a software adapter such as
 * lavapipe only when forced), then WebAssembly (XNNPACK, SIMD), then the plain-JS cpu backend. `--backend NAME` forces one; forcing
 * a backend that cannot start is an error that says why.
 *
 * One tfjs engine. tfjs-node ships its own `@tensorflow/tfjs` (and through it a `tfjs-core`). When
 * the versions agree npm dedupes them into one package; when they do not, there are two copies of
 * the tfjs-core code but still one engine: tfjs-core keeps the engine (`_tfengine`), the kernel
 * registry and the gradient registry on the global namespace, so every copy dispatches through the
 * same engine and sees the same backends, and tfjs's `Tensor[Symbol.hasInstance]` is structural so
 * tensors cross copies. `selectBackend` checks this after the import: if the `tensorflow` backend
 * factory is not visible from our tfjs-core it reports the mismatch instead of silently training
 * on another backend.
 *
 * vmm's own kernels (src/kernels/registry.ts). On wasm and cpu vmm registers kernels of its own (the
 * dense layer, the Adam update, the wasm products and convolutions); native TensorFlow has none of
 * them and runs tfjs's ops, the generic path. The `kernels` option (default: `VMM_KERNELS`) turns
 * them off on cpu and wasm too, so that path is tested without a GPU; the backend line says so.
 *
 * Threads on wasm (findings; see `installThreadedWasmShim`): tfjs-backend-wasm disables its
 * threaded build under Node (`WASM_HAS_MULTITHREAD_SUPPORT` is false when `IS_NODE`, tfjs#3830).
 * Forcing the flag makes Emscripten start its 8 pthread workers from a `blob:` URL, which Node's
 * `worker_threads.Worker` rejects (ERR_WORKER_PATH), and the backend fails to initialize. With a
 * shim (a global `Worker` that evaluates the worker source with `eval: true` and points the
 * worker's `load` message at the on-disk factory script instead of a Blob) the threaded SIMD
 * build starts and computes correctly. Two more details: XNNPACK uses
 * `min(requested, os.cpus().length / 2, 8)` threads, so on a 2-vCPU machine it stays at one unless
 * `os.cpus` is widened during initialization; and the workers must be unref'ed after
 * initialization or Node never exits. Measured on 2 vCPUs (bench-model nets, forward+backward,
 * 128 rows): 2 threads 39 ms against 61-72 ms for 1 when the machine is otherwise idle, but no
 * gain or a loss (134-147 ms against 109-130 ms) when other processes compete for the cores,
 * since the pool's workers spin. So it is opt-in (`VMM_WASM_THREADS=N`), not the default.
 */
import { tfjsVersionProblem } from './tfjs_version.ts';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import os from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';
import { blasInUse, blasModuleKind, blasUnavailableReason, patchWasmConvWithBlas, patchWasmMatMulWithBlas, type NativeKind } from './blas.ts';
import { ensureGradients } from './gradients.ts';
import { KERNELS_ENV, installKernel, kernelMode, kernelModeFromEnv, kernelsInstalled, parseKernelMode, setKernelMode, type KernelMode } from '../kernels/registry.ts';
import { installEagerRelease, installSharedSaves } from './backprop.ts';
import { adapterLabel, gpuLikely, loadWebGpu, type AdapterInfo } from './webgpu.ts';

export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendInfo {
  name: BackendName;
  /** WebAssembly SIMD in use (wasm), or native vectorized kernels (tensorflow). */
  simd: boolean;
  /** Threads the backend's kernels use. */
  threads: number;
  /** Why this backend: what was tried before it and why that did not work, or "forced". */
  reason: string;
  /**
   * wasm only: matrix products run through the optional OpenBLAS module (blas.ts) on this many
   * threads; undefined when they run in wasm, with `blasWhyNot` saying why.
   */
  blasThreads?: number;
  /** The OpenBLAS kernels in use ("SkylakeX", "Haswell", ...), when the module says. */
  blasCore?: string;
  /** Whether the products run in halves on vmm's own two threads (vmm_blas.c, the pool) rather than OpenBLAS's. */
  blasPool?: boolean;
  blasWhyNot?: string;
  /**
   * `vmm`: vmm's own kernels run where it has them (wasm, cpu); `generic`: tfjs's ops only, the
   * path native TensorFlow always takes (see src/kernels/registry.ts). Always `generic` on tensorflow.
   */
  kernels: KernelMode;
  /** Which native module runs the products: the package's prebuilt one or one built from source. */
  blasModule?: NativeKind;
  /** webgpu only: the adapter that runs the kernels. */
  adapter?: AdapterInfo;
  /** "OpenBLAS module prebuilt for linux-x64", or "OpenBLAS module built from source: no prebuilt for darwin-arm64". */
  blasModuleNote?: string;
}

export interface SelectOptions {
  /** Use exactly this backend (the CLI's `--backend`); an error if it cannot start. */
  force?: BackendName | string;
  /** Receives the one-line "backend: ..." message (once per process and backend). */
  log?: (msg: string) => void;
  /**
   * Experimental: run the threaded SIMD wasm build with this many threads (default: the
   * `VMM_WASM_THREADS` environment variable, else off). See the module comment.
   */
  experimentalWasmThreads?: number;
  /**
   * `generic` runs without any of vmm's own kernels: the code native TensorFlow (a GPU) runs, on
   * cpu or wasm (src/kernels/registry.ts); `vmm` with them. Sets the mode for the process. Default:
   * keep the mode already set, initially the `VMM_KERNELS` environment variable's, else `vmm`.
   */
  kernels?: KernelMode | string;
}

/** A backend that was asked for by name and cannot be used; the message says why and what to do. */
export class BackendError extends Error {
  override name = 'BackendError';
}

const README_GPU = 'see docs/backends.md for GPU';

interface Probe {
  ok: boolean;
  /** Why not, when !ok (one short clause). */
  why: string;
}

let selected: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;
const logged = new Set<string>();
let nativeProbe: Probe | undefined;
let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm') | undefined;
let wasmLoadError: string | undefined;
let wasmThreadsRequested = 0;
let restoreCpus: (() => void) | undefined;
/** Workers of the experimental threaded wasm build (see installThreadedWasmShim). */
const threadWorkers = new Set<NodeWorker>();
let threadWorkersUnref = false;

/** The backend chosen by the last `selectBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return selected;
}

/**
 * Selects (and initializes) the tfjs backend, registers tfjs's gradient functions, and logs the
 * choice once. Idempotent: later calls with no `force`, or forcing the backend already in use,
 * return the same info; forcing another backend switches to it (tests run on several).
 */
export async function selectBackend(opts: SelectOptions = {}): Promise<BackendInfo> {
  // Serialize concurrent calls: backend switching is global engine state.
  const prev = pending ?? Promise.resolve(undefined);
  const run = prev.then(
    () => select(opts),
    () => select(opts),
  );
  pending = run.catch(() => selected as BackendInfo);
  return run;
}

async function select(opts: SelectOptions): Promise<BackendInfo> {
  const force = opts.force === undefined ? undefined : validateName(opts.force);
  const kernels = requestedKernels(opts.kernels);
  if (kernels !== undefined && kernels !== kernelMode()) setKernelMode(kernels);
  if (selected && (force === undefined || force === selected.name) && tf.getBackend() === selected.name && selected.kernels === kernelsOn(selected.name)) {
    return selected;
  }
  const threadsEnv = Number(process.env['VMM_WASM_THREADS'] ?? 0);
  wasmThreadsRequested = Math.max(0, Math.floor(opts.experimentalWasmThreads ?? (Number.isFinite(threadsEnv) ? threadsEnv : 0)));

  let info: BackendInfo;
  if (force) {
    const probe = await tryBackend(force);
    if (!probe.ok) {
      const avail = (await availableBackends()).join(', ') || 'none';
      throw new BackendError(`--backend ${force}: the ${force} backend is not available here: ${probe.why}. Available: ${avail}.`);
    }
    info = await describe(force, 'forced');
  } else {
    const native = await tryBackend('tensorflow');
    // A GPU through WebGPU when a hardware adapter exists; a software one (lavapipe) only when forced.
    const gpu = native.ok || !gpuLikely() ? undefined : await tryBackend('webgpu', { hardwareOnly: true });
    if (native.ok) {
      info = await describe('tensorflow', 'native TensorFlow found');
    } else if (gpu?.ok) {
      info = await describe('webgpu', `${native.why}; a WebGPU adapter found`);
    } else {
      const w = await tryBackend('wasm');
      if (w.ok) {
        info = await describe('wasm', native.why);
      } else {
        const c = await tryBackend('cpu');
        if (!c.ok) throw new BackendError(`no tfjs backend could start: tensorflow: ${native.why}; webgpu: ${gpu?.why}; wasm: ${w.why}; cpu: ${c.why}`);
        info = await describe('cpu', `${native.why}; wasm failed: ${w.why}`);
      }
    }
  }
  await ensureGradients();
  installEagerRelease(); // backprop.ts: free each node's gradients and saved tensors once its gradient ran
  installSharedSaves(); // backprop.ts: saving a tensor for the backward pass dispatches no kernel
  selected = info;
  const line = formatInfo(info);
  if (!logged.has(`${info.name} ${info.kernels}`)) {
    logged.add(`${info.name} ${info.kernels}`);
    opts.log?.(line);
  }
  return info;
}

/**
 * The mode the `kernels` option asks for, or undefined to keep the current one (initially the one
 * `VMM_KERNELS` asks for). Checks the variable too: a misspelt value stops the run.
 */
function requestedKernels(option: string | undefined): KernelMode | undefined {
  try {
    kernelModeFromEnv();
    return option === undefined ? undefined : parseKernelMode(option, 'kernels');
  } catch (e) {
    throw new BackendError((e as Error).message);
  }
}

/** The kernels a backend runs in the current mode: tensorflow and webgpu never have vmm's own. */
function kernelsOn(name: BackendName): KernelMode {
  return name === 'tensorflow' || name === 'webgpu' ? 'generic' : kernelMode();
}

/**
 * "backend: wasm (SIMD, 1 thread); native TensorFlow not installed — see docs/backends.md for GPU", and
 * "backend: cpu (1 thread, generic kernels (VMM_KERNELS=generic)); forced" on the generic path.
 * On wasm a clause says which native module runs the matrix products (prebuilt, or built from
 * source and why not the prebuilt one), or why none does.
 */
export function formatInfo(info: BackendInfo): string {
  if (info.name === 'webgpu') return `backend: webgpu (${info.adapter ? adapterLabel(info.adapter) : 'unknown adapter'}); ${info.reason}`;
  const parts: string[] = [];
  if (info.name === 'wasm') parts.push(info.simd ? 'SIMD' : 'no SIMD');
  parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
  let module: string | undefined;
  if (info.blasThreads !== undefined) {
    parts.push(`matrix products: OpenBLAS${info.blasCore ? ` ${info.blasCore}` : ''}, ${info.blasThreads} thread${info.blasThreads === 1 ? '' : 's'}${info.blasPool ? " (vmm's pool)" : ''}`);
    module = info.blasModuleNote;
  } else if (info.name === 'wasm' && info.blasWhyNot) {
    parts.push('matrix products: wasm');
    module = info.blasWhyNot;
  }
  // Native TensorFlow always runs the generic path; on cpu and wasm it is the switch's doing.
  if (info.kernels === 'generic' && info.name !== 'tensorflow') parts.push(`generic kernels (${KERNELS_ENV}=generic)`);
  return `backend: ${info.name} (${parts.join(', ')}); ${module ? `${module}; ` : ''}${info.reason}`;
}

function validateName(name: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new BackendError(`unknown backend '${name}': expected one of ${BACKEND_NAMES.join(', ')}`);
}

async function describe(name: BackendName, reason: string): Promise<BackendInfo> {
  switch (name) {
    case 'tensorflow':
      return { name, simd: true, threads: os.cpus().length, reason, kernels: kernelsOn(name) };
    case 'webgpu': {
      const adapter = (await loadWebGpu()).adapter;
      return { name, simd: false, threads: 1, reason, kernels: kernelsOn(name), ...(adapter ? { adapter } : {}) };
    }
    case 'wasm': {
      let threads = 1;
      try {
        threads = wasmModule ? wasmModule.getThreadsCount() : 1;
      } catch {
        threads = 1;
      }
      const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
      const blas = blasInUse();
      const why = blasUnavailableReason();
      const kind = blas ? blasModuleKind() : undefined;
      return {
        name,
        simd,
        threads: Math.max(1, threads),
        reason,
        ...(blas ? { blasThreads: blas.threads, ...(blas.core ? { blasCore: blas.core } : {}), ...(blas.pool ? { blasPool: true } : {}) } : {}),
        ...(why ? { blasWhyNot: why } : {}),
        kernels: kernelsOn(name),
        ...(kind ? { blasModule: kind.kind, blasModuleNote: kind.note } : {}),
      };
    }
    case 'cpu':
      return { name, simd: false, threads: 1, reason, kernels: kernelsOn(name) };
  }
}

/**
 * Which backends can start in this process (initializes each one it tries; restores the backend
 * that was active). Order: tensorflow, webgpu (any adapter), wasm, cpu; those in `skip` are not tried.
 */
export async function availableBackends(skip: readonly BackendName[] = []): Promise<BackendName[]> {
  const before = tf.findBackendFactory(tf.getBackend() ?? '') ? tf.getBackend() : undefined;
  const out: BackendName[] = [];
  for (const name of BACKEND_NAMES) {
    if (!skip.includes(name) && (await tryBackend(name)).ok) out.push(name);
  }
  if (before && tf.getBackend() !== before) await tf.setBackend(before);
  return out;
}

let versionWarned = false;

/**
 * Makes `name` the active backend if it can start; says why not otherwise. `hardwareOnly`: a
 * software WebGPU adapter does not count (the automatic choice; forcing takes any adapter).
 */
async function tryBackend(name: BackendName, opts: { hardwareOnly?: boolean } = {}): Promise<Probe> {
  switch (name) {
    case 'webgpu': {
      const p = await loadWebGpu();
      if (!p.ok) return p;
      if (opts.hardwareOnly && p.adapter?.software) return { ok: false, why: `only a software WebGPU adapter (${adapterLabel(p.adapter)}), used with --backend webgpu` };
      return activate('webgpu');
    }
    case 'tensorflow': {
      const p = await loadNative();
      if (!p.ok) return p;
      return activate('tensorflow');
    }
    case 'wasm': {
      await loadWasm();
      if (!wasmModule) return { ok: false, why: `@tensorflow/tfjs-backend-wasm could not be loaded (${wasmLoadError})` };
      try {
        const p = await activate('wasm');
        // Native products where the optional OpenBLAS module is built, else the transposition fix;
        // neither when tfjs is not the pinned version whose kernel internals they rely on, nor on
        // the generic path (src/kernels/registry.ts).
        const versionProblem = p.ok ? tfjsVersionProblem() : undefined;
        if (versionProblem) {
          if (!versionWarned) process.stderr.write(`vmm: ${versionProblem}\n`);
          versionWarned = true;
        } else if (p.ok && kernelMode() === 'vmm') {
          patchWasmIdentity();
          patchWasmTile();
          patchWasmGather();
          patchWasmSlice();
          if (!patchWasmMatMulWithBlas()) patchWasmTransposedMatMul();
          patchWasmConvWithBlas(); // convolutions too (blas.ts); no-op without the module
        }
        return p;
      } finally {
        restoreCpus?.();
        restoreCpus = undefined;
        threadWorkersUnref = true;
        for (const w of threadWorkers) w.unref();
      }
    }
    case 'cpu': {
      const p = await activate('cpu');
      if (p.ok) {
        // The cpu backend prints a banner ("looks like you are running TensorFlow.js in Node.js")
        // on first use; our own log line already says which backend runs.
        (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      }
      return p;
    }
  }
}

async function activate(name: BackendName): Promise<Probe> {
  if (!tf.findBackendFactory(name)) return { ok: false, why: `no ${name} backend is registered` };
  if (tf.getBackend() === name) return { ok: true, why: '' };
  // The Emscripten runtime of the wasm backend installs process-wide 'uncaughtException' and
  // 'unhandledRejection' handlers (which rethrow and dump the module source); remove the ones
  // that appear during initialization so errors keep Node's normal reporting.
  const before = {
    exc: new Set(process.listeners('uncaughtException')),
    rej: new Set(process.listeners('unhandledRejection')),
  };
  let ok = false;
  let err = '';
  const origWarn = console.warn;
  try {
    // tfjs reports a failed backend initialization with console.warn and returns false.
    console.warn = (...a: unknown[]) => {
      err ||= a.map(String).join(' ').split('\n')[0] ?? '';
    };
    ok = await tf.setBackend(name);
  } catch (e) {
    err = (e as Error).message;
  } finally {
    console.warn = origWarn;
    for (const l of process.listeners('uncaughtException')) if (!before.exc.has(l)) process.off('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.rej.has(l)) process.off('unhandledRejection', l);
  }
  if (!ok || tf.getBackend() !== name) return { ok: false, why: `${name} backend failed to initialize${err ? `: ${err}` : ''}` };
  return { ok: true, why: '' };
}

async function loadNative(): Promise<Probe> {
  if (nativeProbe) return nativeProbe;
  const reasons: string[] = [];
  let notInstalled = 0;
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      // A variable specifier keeps TypeScript from requiring the (optional) package's types.
      const spec: string = pkg;
      await import(spec);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
        notInstalled++;
        continue;
      }
      reasons.push(`${pkg} failed to load (${firstLine(e)})`);
      continue;
    }
    if (!tf.findBackendFactory('tensorflow')) {
      reasons.push(`${pkg} loaded but its backend is not registered with this tfjs-core (version mismatch?)`);
      continue;
    }
    nativeProbe = { ok: true, why: '' };
    return nativeProbe;
  }
  const why =
    notInstalled === 2
      ? `native TensorFlow not installed — ${README_GPU}`
      : `native TensorFlow unusable: ${reasons.join('; ')} — ${README_GPU}`;
  nativeProbe = { ok: false, why };
  return nativeProbe;
}

async function loadWasm(): Promise<void> {
  if (wasmModule || wasmLoadError) return;
  try {
    const threads = wasmThreadsRequested;
    const mod = await import('@tensorflow/tfjs-backend-wasm');
    if (threads > 1) {
      installThreadedWasmShim(threads); // after the import: it registers the flag it overrides
      mod.setThreadsCount(threads);
    }
    wasmModule = mod;
  } catch (e) {
    wasmLoadError = firstLine(e);
  }
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.slice(0, 300);
}

/**
 * Experimental: lets the threaded SIMD wasm build start under Node (see the module comment).
 * Must run before the wasm backend initializes.
 */
function installThreadedWasmShim(threads: number): void {
  const require = createRequire(import.meta.url);
  const outDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
  const { wasmWorkerContents } = require(join(outDir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // tfjs escapes newlines the same way before putting the source in a Blob.
  const workerSource = wasmWorkerContents.replace(/\n/g, '\\n');
  const factoryPath = join(outDir, 'tfjs-backend-wasm-threaded-simd.js');
  class BloblessWorker extends NodeWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      if (typeof url === 'string' && url.startsWith('blob:')) super(workerSource, { eval: true });
      else super(url, options);
      threadWorkers.add(this);
    }
    // Once the backend is up, kernels wait for the pool synchronously, so the workers must not
    // keep the process alive when the program is done (else Node never exits). They stay
    // referenced during initialization, which waits for them asynchronously. Emscripten's
    // `worker.on('message')` re-refs a worker, so unref again after each listener it adds later.
    override on(event: string | symbol, listener: (...args: any[]) => void): this {
      super.on(event, listener);
      if (threadWorkersUnref) this.unref();
      return this;
    }
    override postMessage(msg: unknown, transfer?: readonly Transferable[]): void {
      const m = msg as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m && m.cmd === 'load' && typeof m.urlOrBlob !== 'string') msg = { ...m, urlOrBlob: factoryPath };
      super.postMessage(msg, transfer as never);
    }
  }
  // Emscripten assigns `global.Worker = worker_threads.Worker` while it initializes; keep ours.
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => BloblessWorker, set: () => {} });
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  // XNNPACK caps its pool at os.cpus().length / 2; widen it for the duration of initialization.
  const orig = os.cpus;
  const want = threads * 2;
  os.cpus = () => {
    const c = orig();
    const out = [...c];
    while (out.length < want && c.length > 0) out.push(c[0]!);
    return out;
  };
  restoreCpus = () => {
    os.cpus = orig;
  };
}

/**
 * The wasm `Identity` kernel copies its input into a new buffer. The engine runs it for every
 * tensor it saves for the backward pass (`saveTensorsForBackwardMode` clones), so under a gradient
 * tape each op that saves its input held a second copy of it until the backward pass: at M = 2048
 * the memory [32, 2048, 784] fed to `h` and `g` (196 MB), and every hidden layer after it. Tensors
 * are immutable (a variable's `assign` rebinds its buffer, no kernel writes into an input), so the
 * clone can share the buffer and count one more reference to it, as the wasm `Reshape` kernel and
 * the cpu backend's `Identity` already do. Strings keep the original kernel.
 */
const SHARED_IDENTITY = 'wasm-shared-identity';
export function patchWasmIdentity(): void {
  if (kernelsInstalled(SHARED_IDENTITY)) return;
  const orig = tf.getKernel('Identity', 'wasm');
  if (!orig) return;
  type Info = { dataId: object; shape: number[]; dtype: string };
  const kernelFunc = ((args: { inputs: { x: Info }; backend: { incRef(id: object): void } }) => {
    const { x } = args.inputs;
    if (x.dtype === 'string') return (orig.kernelFunc as (a: unknown) => Info)(args);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  }) as unknown as tf.KernelFunc;
  installKernel({ ...orig, kernelFunc }, SHARED_IDENTITY);
}

/**
 * The wasm `Tile` kernel computes every output element's source index separately: 0.9 ms for
 * the [1, 32, 128] -> [4, 32, 128] broadcast of h(x) in the benchmark model's guide (a twentieth
 * of its step at M = 8) and 40 ms for [32, 8, 784] -> [32, 32, 784] (tfjs 4.22, 2 vCPUs). This
 * copies whole runs instead: past the last repeated axis the source is contiguous, so each run is
 * one `TypedArray.set`. Numeric dtypes only; strings keep the original kernel.
 */
const BLOCK_TILE = 'wasm-block-tile';
export function patchWasmTile(): void {
  patchWasmKernel<{ inputs: { x: HeapInfo }; attrs: { reps: number[] } }>('Tile', BLOCK_TILE, ({ inputs: { x }, backend, attrs: { reps } }) => {
    if (x.dtype === 'string' || reps.length !== x.shape.length) return undefined;
    const out = backend.makeOutput(x.shape.map((n, i) => n * reps[i]!), x.dtype);
    tileInto(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out)); // views after the allocation
    return out;
  });
}

/** A tensor of the wasm backend, and the backend as the kernels below use it. */
type HeapInfo = { dataId: object; shape: number[]; dtype: tf.DataType };
type HeapBackend = { makeOutput(shape: number[], dtype: tf.DataType): HeapInfo; typedArrayFromHeap(t: HeapInfo): tf.TypedArray };

/**
 * Replaces wasm's kernel `kernelName` by `run` (once: group `tag`), which returns undefined for a
 * case it leaves to the original kernel.
 */
function patchWasmKernel<A extends object>(kernelName: string, tag: string, run: (args: A & { backend: HeapBackend }) => HeapInfo | undefined): void {
  if (kernelsInstalled(tag)) return;
  const orig = tf.getKernel(kernelName, 'wasm');
  if (!orig) return;
  const kernelFunc = ((args: A & { backend: HeapBackend }) => run(args) ?? (orig.kernelFunc as (a: unknown) => HeapInfo)(args)) as unknown as tf.KernelFunc;
  installKernel({ ...orig, kernelFunc }, tag);
}

/**
 * The wasm `GatherV2` kernel computes every output element's source index separately: 85-97 ms
 * to gather 40,000 rows of 64 floats (or 128 rows of 20,000), the candidate keys a step reads
 * from a large shared memory's buckets (src/lower/cached_keys.ts), against ~1 ms for the copies
 * themselves (tfjs 4.22, 2 vCPUs). This copies whole rows instead: past the gathered axis the
 * source is contiguous, so each gathered index is one `TypedArray.set` per outer index (a loop
 * for rows shorter than 16 values). Indices are checked as the cpu kernel checks them. Numeric
 * dtypes and `batchDims` 0 only; anything else keeps the original kernel.
 */
const BLOCK_GATHER = 'wasm-block-gather';
export function patchWasmGather(): void {
  type Args = { inputs: { x: HeapInfo; indices: HeapInfo }; attrs: { axis: number; batchDims?: number } };
  patchWasmKernel<Args>('GatherV2', BLOCK_GATHER, ({ inputs: { x, indices }, backend, attrs }) => {
    if (x.dtype === 'string' || indices.dtype !== 'int32' || (attrs.batchDims ?? 0) !== 0) return undefined;
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0]!;
    const dim = x.shape[axis]!;
    const outer = x.shape.slice(0, axis).reduce((a, n) => a * n, 1);
    const inner = x.shape.slice(axis + 1).reduce((a, n) => a * n, 1);
    const idx = backend.typedArrayFromHeap(indices) as Int32Array;
    const n = idx.length;
    for (let i = 0; i < n; i++) {
      const v = idx[i]!;
      if (v < 0 || v >= dim) throw new Error(`GatherV2: the gather index ${v} is not in [0, ${dim})`);
    }
    const out = backend.makeOutput([...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)], x.dtype);
    // Views after the allocation: growing the heap detaches earlier views.
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    const ix = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let o = 0; o < outer; o++) {
      const srcBase = o * dim * inner;
      const dstBase = o * n * inner;
      if (inner >= 16) {
        for (let i = 0; i < n; i++) dst.set(src.subarray(srcBase + ix[i]! * inner, srcBase + (ix[i]! + 1) * inner), dstBase + i * inner);
      } else {
        for (let i = 0; i < n; i++) {
          const s = srcBase + ix[i]! * inner;
          const d = dstBase + i * inner;
          for (let j = 0; j < inner; j++) dst[d + j] = src[s + j]!;
        }
      }
    }
    return out;
  });
}

/**
 * The wasm `Slice` kernel, like its `GatherV2`, computes every element's source index: 2.4 s to
 * cut a [100000, 784] memory into 13 chunks of rows (the keys of a large shared memory at each
 * refresh, src/lower/cached_keys.ts) against 0.4 s for the products that follow. Past the last
 * axis that is cut, a slice is contiguous in its source, so this copies whole runs. Numeric
 * dtypes only; strings keep the original kernel.
 */
const BLOCK_SLICE = 'wasm-block-slice';
export function patchWasmSlice(): void {
  type Args = { inputs: { x: HeapInfo }; attrs: { begin: number | number[]; size: number | number[] } };
  patchWasmKernel<Args>('Slice', BLOCK_SLICE, ({ inputs: { x }, backend, attrs }) => {
    if (x.dtype === 'string') return undefined;
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo, attrs.begin, attrs.size);
    tf.slice_util.assertParamsValid(x as unknown as tf.TensorInfo, begin, size);
    const out = backend.makeOutput(size, x.dtype);
    if (size.some((n) => n === 0)) return out;
    sliceInto(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out)); // views after the allocation
    return out;
  });
}

/** `out` = the block of `src` (row-major, `shape`) at `begin` of `size`, by contiguous runs. */
function sliceInto(src: tf.TypedArray, shape: number[], begin: number[], size: number[], out: tf.TypedArray): void {
  const rank = shape.length;
  // Past the last axis that is cut, the source is one contiguous run.
  let last = rank - 1;
  while (last >= 0 && size[last] === shape[last]) last--;
  if (last < 0) {
    out.set(src.subarray(0, out.length));
    return;
  }
  const stride = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) stride[i] = stride[i + 1]! * shape[i + 1]!;
  const run = size[last]! * stride[last]!;
  let o = 0;
  const walk = (axis: number, off: number): void => {
    if (axis === last) {
      const s = off + begin[axis]! * stride[axis]!;
      out.set(src.subarray(s, s + run), o);
      o += run;
      return;
    }
    for (let i = 0; i < size[axis]!; i++) walk(axis + 1, off + (begin[axis]! + i) * stride[axis]!);
  };
  walk(0, 0);
}

/** `out` = `src` (row-major, `shape`) repeated `reps[i]` times along each axis i, by contiguous runs. */
function tileInto(src: tf.TypedArray, shape: number[], reps: number[], out: tf.TypedArray): void {
  const rank = shape.length;
  if (src.length === 0 || out.length === 0) return;
  // Past the last axis with reps > 1 a source row is copied whole; `last` = -1: one copy of all.
  let last = rank - 1;
  while (last >= 0 && reps[last] === 1) last--;
  const block = shape.slice(last + 1).reduce((a, n) => a * n, 1); // floats per run
  const srcStride = new Array<number>(rank).fill(0);
  const outStride = new Array<number>(rank).fill(0);
  for (let i = rank - 1, s = 1, o = 1; i >= 0; i--) {
    srcStride[i] = s;
    outStride[i] = o;
    s *= shape[i]!;
    o *= shape[i]! * reps[i]!;
  }
  const fill = (axis: number, srcOff: number, outOff: number): void => {
    if (axis > last) {
      out.set(src.subarray(srcOff, srcOff + block), outOff);
      return;
    }
    const n = shape[axis]!;
    for (let r = 0; r < reps[axis]!; r++) {
      for (let i = 0; i < n; i++) fill(axis + 1, srcOff + i * srcStride[axis]!, outOff + (r * n + i) * outStride[axis]!);
    }
  };
  fill(0, 0, 0);
}

/**
 * The wasm `BatchMatMul` kernel runs a slow scalar loop when either operand is transposed: on a
 * [128, 784] x [784, 400] product it measured 53 ms with `transposeB` or `transposeA` against 4.8 ms
 * untransposed (2 vCPUs, tfjs 4.22). The gradient of every matMul uses exactly those transposed
 * forms, so backward passes were ~10x slower than forward ones. This wraps the kernel: a transposed
 * operand is first transposed explicitly (wasm's `Transpose` kernel, ~1 ms for that size), then
 * the fast untransposed path runs. Same results; registered once, for the wasm backend only.
 */
const TRANSPOSED_PRODUCTS = 'wasm-transposed-products';
export function patchWasmTransposedMatMul(): void {
  if (kernelsInstalled(TRANSPOSED_PRODUCTS)) return;
  const orig = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!orig || !transpose) return;
  type Info = { dataId: object; shape: number[]; dtype: string };
  type Backend = { disposeData(id: object): void };
  const swapLast = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
  const kernelFunc = ((args: { inputs: { a: Info; b: Info }; backend: Backend; attrs: Record<string, unknown> }) => {
    const { inputs, backend, attrs } = args;
    if (!attrs['transposeA'] && !attrs['transposeB']) return (orig.kernelFunc as (a: unknown) => Info)(args);
    const t = (x: Info) => (transpose.kernelFunc as (a: unknown) => Info)({ inputs: { x }, backend, attrs: { perm: swapLast(x.shape.length) } });
    const a = attrs['transposeA'] ? t(inputs.a) : inputs.a;
    const b = attrs['transposeB'] ? t(inputs.b) : inputs.b;
    try {
      return (orig.kernelFunc as (a: unknown) => Info)({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
    }
  }) as unknown as tf.KernelFunc;
  // The original setupFunc already ran when the backend initialized; keep it for a re-initialization.
  installKernel({ ...orig, kernelFunc }, TRANSPOSED_PRODUCTS);
}
