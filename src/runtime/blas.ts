/**
 * Matrix products of the wasm backend through OpenBLAS, when the optional native module
 * (src/runtime/blas/vmm_blas.c) is present: shipped prebuilt in the package for linux-x64 (OpenBLAS
 * linked in statically), else built against the system's OpenBLAS by `npm run build:blas` (which
 * `npm install` runs); the load order is in `nativeCandidates`.
 *
 * Why: on the benchmark model most of a training step is matrix products, and the wasm ones are
 * slow in two ways that no rearrangement of tfjs ops removes (measured on 2 vCPUs, tfjs 4.22,
 * bench/README): XNNPACK's 128-bit SIMD GEMM reaches ~18 GFLOP/s on one thread (~40 on two)
 * where OpenBLAS reaches ~105-120 on two; and tfjs-wasm repacks the right-hand operand of every
 * product whose operand is a new tensor (every weight after an update, every gradient), single-
 * threaded at ~10-18 ns per float, which for the 128-row products of the model costs more than
 * the product itself. CBLAS `sgemm` reads both operands where they lie in the wasm heap (its own
 * packing is fast and threaded), transposes for free, and writes the result in place: no copies
 * between JS, wasm and native memory. Thin products (one of the three sizes 1: a batch of
 * matrix-vector or outer products, what a memory per episode makes of address logits and soft
 * reads) go to sgemv or a loop instead, which skip sgemm's set-up (vmm_blas.c, thin_products).
 *
 * `BatchMatMul` and `_FusedMatMul` (bias and relu applied in the same pass) are replaced, and the
 * convolutions `Conv2D`, `Conv2DBackpropInput` (also what `conv2dTranspose` runs) and
 * `Conv2DBackpropFilter` (which tfjs-wasm does not have) by im2col/col2im + sgemm; every other
 * kernel stays wasm. Cases the native product does not cover (non-float32, batch
 * broadcasting other than 1-against-n, prelu and other activations, a bias not of the output's
 * last size) go to the kernel that was registered before. `VMM_BLAS=0` turns it off, and so does
 * the generic path (`VMM_KERNELS=generic`, src/kernels/registry.ts, through which every kernel here
 * is registered); `VMM_BLAS=source` skips the prebuilt module.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BLAS_PRODUCTS, installKernel, kernelMode, kernelsInstalled, ownKernelBackend } from '../kernels/registry.ts';
import { type BernoulliNative, useNativeBernoulli } from '../families/fused.ts';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BlasModule {
  gemm(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    bias: Float32Array | null,
    relu: boolean,
  ): void;
  /** One Adam update in one pass: writes w1, m1, v1 (see vmm_blas.c). */
  adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    w1: Float32Array,
    m1: Float32Array,
    v1: Float32Array,
    beta1: number,
    beta2: number,
    stepSize: number,
    sqrtBc2: number,
    eps: number,
  ): void;
  /**
   * Convolutions, NHWC, dilation 1, by im2col/col2im + sgemm (see vmm_blas.c). mode 0: out = y =
   * conv2d(a = x, b = filter); 1: out = dx from (a = dy, b = filter); 2: out = dfilter from
   * (a = x, b = dy). dims: [N, H, W, Cin, Ho, Wo, Cout, kh, kw, strideH, strideW, padTop, padLeft].
   */
  conv2d(mode: 0 | 1 | 2, a: Float32Array, b: Float32Array, out: Float32Array, dims: Int32Array): void;
  /** out[c] = sum_r x[r, c] over a row-major [rows, cols] array (double accumulators). */
  colsum(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /**
   * The backward pass of a dense layer `y = act(x w + b)` in one call: dw = x^T g, db = sum_rows g,
   * dx = g w^T (skipped when dx is null), g = dy * (y > 0) when y (the relu's output) is given,
   * else dy. x [n, k], w [k, m], dy and y [n, m] (see vmm_blas.c).
   */
  dense_grad(
    dy: Float32Array,
    y: Float32Array | null,
    x: Float32Array,
    w: Float32Array,
    dx: Float32Array | null,
    dw: Float32Array,
    db: Float32Array,
    n: number,
    k: number,
    m: number,
  ): void;
  /** The fused Bernoulli log-density's loops (src/families/fused.ts); absent from older builds. */
  bernoulli_logprob?: BernoulliNative['bernoulli_logprob'];
  bernoulli_logprob_grad?: BernoulliNative['bernoulli_logprob_grad'];
  /**
   * Products under `n` multiply-adds run on one thread from now on (n < 0: unchanged); returns the
   * threshold before (vmm_blas.c says why there is one). Absent from older builds.
   */
  serial_below?(n: number): number;
  /**
   * Whether two products (and other halves of equal work) may run at once on two threads from now
   * on: a dense layer's dw and dx, a product's two halves of rows, an Adam update's two halves
   * (vmm_blas.c, the pair helper). 0 off; 1 products under the serial threshold, OpenBLAS's
   * threads above it (VMM_BLAS_PAIR=1); 2 the same even where OpenBLAS has one thread (tests); 3
   * the pool: every product in two halves, OpenBLAS's threads never woken (the default where
   * OpenBLAS has exactly two threads: docs/benchmarks.md, "vmm's own two threads"); -1 unchanged.
   * Returns the mode before. Absent from older builds.
   */
  pair?(mode: number): number;
  /** OpenBLAS's thread count (OPENBLAS_NUM_THREADS, else the number of cores). */
  threads(): number;
  /**
   * The kernels OpenBLAS chose for this CPU ("Haswell", "Cooperlake", ...; OPENBLAS_CORETYPE
   * overrides its choice), for the backend line; absent from modules built before it.
   */
  corename?(): string;
  /** Whether every entry is finite (one vectorized pass; vmm_blas.c); absent from modules built before it. */
  finite?(a: Float32Array): boolean;
  /**
   * How long (microseconds) the pair helper spins for its next task before it sleeps, from now on
   * (< 0: unchanged; VMM_BLAS_SPIN_US sets it at start, default 2,000); returns the setting before.
   */
  spin?(us: number): number;
  /** How many tasks the pair helper has run since the module loaded (tests: that a mode pairs). */
  paired?(): number;
}

/** Which native module runs: the one shipped prebuilt in the package, or one built on this machine. */
export type NativeKind = 'prebuilt' | 'source';
export interface NativeCandidate {
  kind: NativeKind;
  path: string;
}

/**
 * Where the native module may be, in load order: the prebuilt module for this platform (made by
 * `npm pack`, scripts/build_blas.mjs --prebuild, in prebuildify's layout
 * `prebuilds/<platform>-<arch>/node.napi[.<libc>].node`; N-API, so one per platform and C library,
 * whatever the Node version), then the source build (`npm run build:blas`, also run by
 * `npm install`, in src/runtime/blas/build/Release). The prebuilt one comes first: it is the
 * build that was tested when the package was made, and linked statically. `here` is this
 * module's folder, `src/runtime` in a checkout or `dist/src/runtime` in the package. (A loader of
 * our own rather than node-gyp-build, which tries build/Release before prebuilds/ and cannot say
 * why it found nothing.)
 */
export function nativeCandidates(here: string, platform: string, arch: string, libc?: string): NativeCandidate[] {
  const root = /[\\/]dist[\\/]src[\\/]runtime[\\/]?$/.test(here) ? join(here, '..', '..', '..') : join(here, '..', '..');
  return [
    { kind: 'prebuilt', path: join(root, 'prebuilds', `${platform}-${arch}`, `node.napi${libc ? `.${libc}` : ''}.node`) },
    { kind: 'source', path: join(root, 'src', 'runtime', 'blas', 'build', 'Release', 'vmm_blas.node') },
  ];
}

/** "linux-x64", "linux-x64 (musl)", "darwin-arm64": the platform as the backend line names it. */
export function platformTag(platform: string, arch: string, libc?: string): string {
  return `${platform}-${arch}${libc && libc !== 'glibc' ? ` (${libc})` : ''}`;
}

/** The C library on Linux ("glibc" or "musl", from Node's diagnostic report); undefined elsewhere. */
function detectLibc(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return header?.glibcVersionRuntime ? 'glibc' : 'musl';
  } catch {
    return 'glibc';
  }
}

/** What `resolveNative` may touch: injected by tests, so the order is testable without binaries. */
export interface NativeIo {
  exists(path: string): boolean;
  load(path: string): BlasModule;
  /** The line scripts/build_blas.mjs left when it did not build from source, if any. */
  sourceStatus(): string | undefined;
}

export type NativeResult =
  | {
      module: BlasModule;
      kind: NativeKind;
      path: string;
      /** For the backend line: "OpenBLAS module prebuilt for linux-x64", "OpenBLAS module built from source: no prebuilt for darwin-arm64". */
      note: string;
    }
  | { module?: undefined; why: string };

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);

/**
 * The native module by the load order of `nativeCandidates` (prebuilt, then source build), or why
 * there is none, in words for the backend line. `mode` is VMM_BLAS: '0' turns the module off,
 * 'source' skips the prebuilt one.
 */
export function resolveNative(candidates: NativeCandidate[], tag: string, io: NativeIo, mode?: string): NativeResult {
  if (mode === '0') return { why: 'OpenBLAS module turned off by VMM_BLAS=0' };
  let prebuiltNote = `no prebuilt for ${tag}`;
  let sourceNote = 'not built from source';
  for (const c of candidates) {
    if (c.kind === 'prebuilt' && mode === 'source') {
      prebuiltNote = 'prebuilt skipped by VMM_BLAS=source';
      continue;
    }
    if (!io.exists(c.path)) {
      if (c.kind === 'source') {
        const status = io.sourceStatus();
        sourceNote = `not built from source: ${status ?? 'run npm run build:blas (needs libopenblas-dev)'}`;
      }
      continue;
    }
    try {
      const module = io.load(c.path);
      const note = c.kind === 'prebuilt' ? `OpenBLAS module prebuilt for ${tag}` : `OpenBLAS module built from source: ${prebuiltNote}`;
      return { module, kind: c.kind, path: c.path, note };
    } catch (e) {
      const note = `${c.kind === 'prebuilt' ? `prebuilt for ${tag}` : 'source build'} failed to load: ${firstLine(e)}`;
      if (c.kind === 'prebuilt') prebuiltNote = note;
      else sourceNote = note;
    }
  }
  return { why: `no OpenBLAS module: ${prebuiltNote}, and ${sourceNote}` };
}

let native: NativeResult | undefined;

/** The native module, or undefined with `blasUnavailableReason()` saying why. */
export function loadBlas(): BlasModule | undefined {
  if (!native) {
    const here = dirname(fileURLToPath(import.meta.url));
    const libc = detectLibc();
    const candidates = nativeCandidates(here, process.platform, process.arch, libc);
    // The line build_blas.mjs leaves when it skips or fails the source build: why there is none.
    const statusFile = join(candidates[1]!.path, '..', '..', 'vmm_blas.status');
    const require = createRequire(import.meta.url);
    native = resolveNative(
      candidates,
      platformTag(process.platform, process.arch, libc),
      {
        exists: existsSync,
        load: (p) => require(p) as BlasModule,
        sourceStatus: () => (existsSync(statusFile) ? readFileSync(statusFile, 'utf8').trim().split('\n')[0] : undefined),
      },
      process.env['VMM_BLAS'],
    );
  }
  return native.module;
}

/** Which native module is loaded (after `loadBlas`): prebuilt or built from source (and why not prebuilt). */
export function blasModuleKind(): { kind: NativeKind; note: string } | undefined {
  return native?.module ? { kind: native.kind, note: native.note } : undefined;
}

export function blasUnavailableReason(): string | undefined {
  return native && !native.module ? native.why : undefined;
}

type Info = { dataId: object; shape: number[]; dtype: tf.DataType };
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): Float32Array;
  refCount(dataId: object): number;
  incRef(dataId: object): void;
}
interface MatMulArgs {
  inputs: { a: Info; b: Info; bias?: Info; preluActivationWeights?: Info };
  backend: WasmBackendLike;
  attrs: { transposeA?: boolean; transposeB?: boolean; activation?: string };
}

/**
 * `a @ b` (+ bias, relu) by the native gemm, or undefined when this case is not covered.
 * Shapes follow tfjs's BatchMatMul: leading axes are batch axes, broadcast only as 1 against n.
 */
function blasMatMul(blas: BlasModule, { inputs, backend, attrs }: MatMulArgs): Info | undefined {
  const { a, b, bias, preluActivationWeights } = inputs;
  const activation = attrs.activation ?? 'linear';
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || preluActivationWeights) return undefined;
  if (activation !== 'linear' && activation !== 'relu') return undefined;
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ta = Boolean(attrs.transposeA);
  const tb = Boolean(attrs.transposeB);
  const ar = a.shape.length;
  const br = b.shape.length;
  const m = ta ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const k = ta ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const kb = tb ? b.shape[br - 1]! : b.shape[br - 2]!;
  const n = tb ? b.shape[br - 2]! : b.shape[br - 1]!;
  if (k !== kb) return undefined; // let the original kernel report the mismatch
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = tf.util.sizeFromShape(outerA);
  const batchB = tf.util.sizeFromShape(outerB);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined; // the original kernel reports it
  }
  const batch = tf.util.sizeFromShape(outer);
  if ((batchA !== 1 && batchA !== batch) || (batchB !== 1 && batchB !== batch)) return undefined;
  if (bias && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== n || (bias.shape.length > 0 && bias.shape[bias.shape.length - 1] !== n))) return undefined;
  const out = backend.makeOutput([...outer, m, n], 'float32');
  // Views only after the allocation: growing the heap detaches earlier views.
  const view = (t: Info) => backend.typedArrayFromHeap(t);
  blas.gemm(view(a), view(b), view(out), batch, m, n, k, ta, tb, bias ? view(bias) : null, activation === 'relu');
  return out;
}

const CONVOLUTIONS = 'blas-convolutions';

/**
 * Replaces the wasm `BatchMatMul` and `_FusedMatMul` kernels by native products (once, after
 * the wasm backend initialized; not in the generic mode, kernels/registry.ts). Returns whether they
 * are in place.
 */
export function patchWasmMatMulWithBlas(): boolean {
  if (kernelsInstalled(BLAS_PRODUCTS)) return true;
  if (kernelMode() === 'generic') return false;
  const blas = loadBlas();
  if (!blas) return false;
  const prevs = ['BatchMatMul', '_FusedMatMul'].map((kernelName) => tf.getKernel(kernelName, 'wasm'));
  if (prevs.some((p) => !p)) return false;
  for (const prev of prevs as tf.KernelConfig[]) {
    const kernelFunc = ((args: MatMulArgs) => blasMatMul(blas, args) ?? (prev.kernelFunc as (x: unknown) => Info)(args)) as unknown as tf.KernelFunc;
    installKernel({ ...prev, kernelFunc }, BLAS_PRODUCTS);
  }
  // The fused Bernoulli log-density's loops, natively (it runs only on wasm with the module here,
  // and only where the JavaScript loops would: not on the generic path).
  const { bernoulli_logprob, bernoulli_logprob_grad } = blas;
  if (bernoulli_logprob && bernoulli_logprob_grad) useNativeBernoulli({ bernoulli_logprob, bernoulli_logprob_grad });
  // A module built before dense_grad existed (run `npm run build:blas`) has no fused backward.
  // VMM_BLAS_DENSE_GRAD=0 leaves dense layers' backward passes to tfjs ops (for before/after counts).
  if (typeof blas.dense_grad === 'function' && process.env['VMM_BLAS_DENSE_GRAD'] !== '0' && !tf.getKernel(DENSE_GRAD_KERNEL, 'wasm')) {
    installKernel({ kernelName: DENSE_GRAD_KERNEL, backendName: 'wasm', kernelFunc: ((args: DenseGradArgs) => blasDenseGrad(blas, args)) as unknown as tf.KernelFunc }, BLAS_PRODUCTS);
  }
  return true;
}

/**
 * `VmmDenseGrad`: the backward pass of the dense kernels of src/lower/nets.ts (`VmmDense`,
 * `VmmDenseRelu`) as one native call, registered for wasm where the module has `dense_grad`
 * (nets.ts uses it when the kernel exists, and tfjs ops otherwise). Inputs `dy [..., m]`,
 * `x [..., k]`, `w [k, m]` and, after a relu, `y [..., m]`; outputs `[dw, db]`, then `dx` (x's shape)
 * when `attrs.wantDx`.
 */
export const DENSE_GRAD_KERNEL = 'VmmDenseGrad';
interface DenseGradArgs {
  inputs: { dy: Info; x: Info; w: Info; y?: Info };
  backend: WasmBackendLike;
  attrs: { wantDx: boolean };
}

function blasDenseGrad(blas: BlasModule, { inputs, backend, attrs }: DenseGradArgs): Info[] {
  const { dy, x, w, y } = inputs;
  for (const t of [dy, x, w, ...(y ? [y] : [])]) {
    if (t.dtype !== 'float32') throw new Error(`${DENSE_GRAD_KERNEL}: inputs must be float32, got ${t.dtype}`);
  }
  const [k, m] = w.shape as [number, number];
  const n = tf.util.sizeFromShape(x.shape) / k;
  if (w.shape.length !== 2 || x.shape[x.shape.length - 1] !== k || tf.util.sizeFromShape(dy.shape) !== n * m || (y && tf.util.sizeFromShape(y.shape) !== n * m)) {
    throw new Error(`${DENSE_GRAD_KERNEL}: shapes x [${x.shape}], w [${w.shape}], dy [${dy.shape}] do not agree`);
  }
  const outs = [backend.makeOutput([k, m], 'float32'), backend.makeOutput([m], 'float32'), ...(attrs.wantDx ? [backend.makeOutput([...x.shape], 'float32')] : [])];
  const view = (t: Info) => backend.typedArrayFromHeap(t); // after every allocation
  blas.dense_grad(view(dy), y ? view(y) : null, view(x), view(w), attrs.wantDx ? view(outs[2]!) : null, view(outs[0]!), view(outs[1]!), n, k, m);
  return outs;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape?: number[];
  filterShape?: number[];
}
interface ConvArgs {
  inputs: { x?: Info; filter?: Info; dy?: Info };
  backend: WasmBackendLike;
  attrs: ConvAttrs;
}

/**
 * The native convolution's sizes for input shape `xShape` and filter shape `fShape` (tfjs's
 * `computeConv2DInfo`, so padding and output sizes are exactly tfjs's), or undefined for what it
 * does not cover (NCHW, dilations other than 1).
 */
function convDims(xShape: number[], fShape: number[], attrs: ConvAttrs): { dims: Int32Array; outShape: number[] } | undefined {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || xShape.length !== 4 || fShape.length !== 4) return undefined;
  const dil = attrs.dilations ?? 1;
  if (!(dil === 1 || (Array.isArray(dil) && dil[0] === 1 && dil[1] === 1))) return undefined;
  let c: tf.backend_util.Conv2DInfo;
  try {
    c = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], fShape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  } catch {
    return undefined; // the original kernel reports it
  }
  const dims = Int32Array.from([c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels, c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.padInfo.top, c.padInfo.left]);
  return { dims, outShape: [c.batchSize, c.outHeight, c.outWidth, c.outChannels] };
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** The three convolution kernels by the native module, or undefined when a case is not covered. */
function blasConv(blas: BlasModule, kernel: 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter', { inputs, backend, attrs }: ConvArgs): Info | undefined {
  const view = (t: Info) => backend.typedArrayFromHeap(t);
  if (kernel === 'Conv2D') {
    const { x, filter } = inputs;
    if (!x || !filter || x.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
    const d = convDims(x.shape, filter.shape, attrs);
    if (!d) return undefined;
    const out = backend.makeOutput(d.outShape, 'float32');
    blas.conv2d(0, view(x), view(filter), view(out), d.dims);
    return out;
  }
  if (kernel === 'Conv2DBackpropInput') {
    const { dy, filter } = inputs;
    const xShape = attrs.inputShape;
    if (!dy || !filter || !xShape || dy.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
    const d = convDims(xShape, filter.shape, attrs);
    if (!d || !sameShape(d.outShape, dy.shape)) return undefined;
    const out = backend.makeOutput(xShape, 'float32');
    blas.conv2d(1, view(dy), view(filter), view(out), d.dims);
    return out;
  }
  const { x, dy } = inputs;
  const fShape = attrs.filterShape;
  if (!x || !dy || !fShape || x.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
  const d = convDims(x.shape, fShape, attrs);
  if (!d || !sameShape(d.outShape, dy.shape)) return undefined;
  const out = backend.makeOutput(fShape, 'float32');
  blas.conv2d(2, view(x), view(dy), view(out), d.dims);
  return out;
}

/**
 * `Sum` over leading axes (`[0, .., j-1]` of a rank > j array) by one native pass: the gradient
 * of the bias added after every convolution, `[N, H, W, C] -> [C]`. wasm's own Sum transposes
 * the reduced axes innermost first; on the conv model's [1088, 14, 14, 32] that pair cost more
 * than the convolution (bench/profile.ts). Other reductions go to wasm's kernel.
 */
function blasLeadingSum(blas: BlasModule, { inputs, backend, attrs }: { inputs: { x: Info }; backend: WasmBackendLike; attrs: { axis: number | number[]; keepDims?: boolean } }): Info | undefined {
  const { x } = inputs;
  if (x.dtype !== 'float32' || x.shape.length < 2) return undefined;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((p, q) => p - q);
  if (axes.length === 0 || axes.length >= x.shape.length || axes.some((v, i) => v !== i)) return undefined;
  const rows = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
  const rest = x.shape.slice(axes.length);
  if (rows === 0 || tf.util.sizeFromShape(rest) === 0) return undefined; // empty: wasm's kernel
  const out = backend.makeOutput(attrs.keepDims ? [...axes.map(() => 1), ...rest] : rest, 'float32');
  blas.colsum(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), rows, tf.util.sizeFromShape(rest));
  return out;
}

/**
 * Registers native `Conv2D`, `Conv2DBackpropInput` and `Conv2DBackpropFilter` kernels for the wasm
 * backend (once, after it initialized; needs the native module). The first two fall back to
 * wasm's own kernel for cases the native one does not cover; wasm has no `Conv2DBackpropFilter`,
 * so there an uncovered case (NCHW) is an error. With `Conv2DBackpropFilter` registered,
 * `src/lower/nets.ts` takes tfjs's own conv gradients instead of its `customGrad` fallback.
 * Also `Sum` over leading axes (the bias gradient). `VMM_BLAS_CONV=0` leaves all four to wasm
 * (for before/after timings; the matrix products stay native).
 */
export function patchWasmConvWithBlas(): boolean {
  if (kernelsInstalled(CONVOLUTIONS)) return true;
  if (kernelMode() === 'generic') return false;
  if (process.env['VMM_BLAS_CONV'] === '0') return false; // A/B switch: wasm convolutions with OpenBLAS products
  const blas = loadBlas();
  // A module built before the convolutions existed (run `npm run build:blas`) has products only.
  if (!blas || typeof blas.conv2d !== 'function' || typeof blas.colsum !== 'function' || !tf.getKernel('Conv2D', 'wasm')) return false;
  for (const kernelName of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'] as const) {
    const prev = tf.getKernel(kernelName, 'wasm');
    const kernelFunc = ((args: ConvArgs) => {
      const out = blasConv(blas, kernelName, args);
      if (out) return out;
      if (prev) return (prev.kernelFunc as (x: unknown) => Info)(args);
      throw new Error(`${kernelName} (wasm, OpenBLAS): only float32 NHWC is supported, got ${args.attrs.dataFormat ?? 'NHWC'}`);
    }) as unknown as tf.KernelFunc;
    installKernel({ ...(prev ?? {}), kernelName, backendName: 'wasm', kernelFunc }, CONVOLUTIONS);
  }
  const sum = tf.getKernel('Sum', 'wasm');
  if (sum) {
    const kernelFunc = ((args: Parameters<typeof blasLeadingSum>[1]) => blasLeadingSum(blas, args) ?? (sum.kernelFunc as (x: unknown) => Info)(args)) as unknown as tf.KernelFunc;
    installKernel({ ...sum, kernelFunc }, CONVOLUTIONS);
  }
  return true;
}

/** Whether the wasm backend's products run through OpenBLAS, on how many threads (and whether vmm's pool splits them), with which kernels. */
export function blasInUse(): { threads: number; core?: string; pool: boolean } | undefined {
  if (!kernelsInstalled(BLAS_PRODUCTS) || !native?.module) return undefined;
  const core = native.module.corename?.();
  // Mode 3: products in halves on vmm's two threads, not OpenBLAS's (vmm_blas.c).
  return { threads: native.module.threads(), ...(core ? { core } : {}), pool: native.module.pair?.(-1) === 3 };
}

/** The constants of one Adam step (see `SlotOptimizer.apply`). */
export interface AdamStep {
  beta1: number;
  beta2: number;
  /** lr / (1 - beta1^t) */
  stepSize: number;
  /** sqrt(1 - beta2^t) */
  sqrtBc2: number;
  eps: number;
}

/** The one-pass Adam update of every variable of a step; the cpu backend's is in adam.ts. */
export const ADAM_ALL_KERNEL = 'VmmAdamAll';

/**
 * Whether the one-pass native Adam update can run on the active backend: wasm with the native
 * products in place (registers the `VmmAdamAll` kernel on first use; never in the generic mode,
 * kernels/registry.ts). On the benchmark model the 13 tfjs ops per variable were ~290 kernel calls
 * and 12-16 ms of a 65 ms step.
 */
export function nativeAdamAvailable(): boolean {
  const blas = native?.module;
  if (ownKernelBackend() !== 'wasm' || !kernelsInstalled(BLAS_PRODUCTS) || !blas) return false;
  if (!tf.getKernel(ADAM_ALL_KERNEL, 'wasm')) {
    // In place where the variable and moment buffers are held by nothing else (reference count
    // 1): the outputs are those buffers again (the caller's `assign` then keeps them). Variables
    // then stay where they were allocated, instead of moving to fresh buffers each step and
    // splitting the heap's free space (bench/memory.ts: at M = 2048 the wasm heap grew ~300 MB
    // past the step's live peak). Where a buffer is shared (a reshape or clone of a variable
    // still held), fresh outputs as before.
    const one = (backend: WasmBackendLike, w: Info, g: Info, m: Info, v: Info, attrs: AdamStep): Info[] => {
      const own = [w, m, v];
      const ids = new Set([...own, g].map((t) => t.dataId));
      if (ids.size === 4 && own.every((t) => backend.refCount(t.dataId) === 1)) {
        const [wv, gv, mv, vv] = [w, g, m, v].map((t) => backend.typedArrayFromHeap(t)) as [Float32Array, Float32Array, Float32Array, Float32Array];
        blas.adam(wv, gv, mv, vv, wv, mv, vv, attrs.beta1, attrs.beta2, attrs.stepSize, attrs.sqrtBc2, attrs.eps);
        for (const t of own) backend.incRef(t.dataId);
        return own.map((t) => ({ dataId: t.dataId, shape: [...t.shape], dtype: 'float32' }));
      }
      const outs = own.map((t) => backend.makeOutput(t.shape, 'float32'));
      const view = (t: Info) => backend.typedArrayFromHeap(t); // after every allocation
      const [w1, m1, v1] = outs.map(view) as [Float32Array, Float32Array, Float32Array];
      blas.adam(view(w), view(g), view(m), view(v), w1, m1, v1, attrs.beta1, attrs.beta2, attrs.stepSize, attrs.sqrtBc2, attrs.eps);
      return outs;
    };
    // Every variable of a step in one dispatch: inputs w0, g0, m0, v0, w1, ...; outputs
    // w0', m0', v0', w1', ... (the same pass per variable; one kernel call instead of one each).
    const allFunc = (({ inputs, backend, attrs }: { inputs: Record<string, Info>; backend: WasmBackendLike; attrs: AdamStep & { n: number } }) => {
      const outs: Info[] = [];
      for (let i = 0; i < attrs.n; i++) outs.push(...one(backend, inputs[`w${i}`]!, inputs[`g${i}`]!, inputs[`m${i}`]!, inputs[`v${i}`]!, attrs));
      return outs;
    }) as unknown as tf.KernelFunc;
    installKernel({ kernelName: ADAM_ALL_KERNEL, backendName: 'wasm', kernelFunc: allFunc }, 'adam');
  }
  return true;
}

/**
 * Whether the native module can test the wasm backend's tensors for finiteness where they lie (on
 * the wasm heap, no copy): where the native Adam runs, and the module has `finite`.
 */
export function nativeFiniteAvailable(): boolean {
  return ownKernelBackend() === 'wasm' && kernelsInstalled(BLAS_PRODUCTS) && typeof native?.module?.finite === 'function';
}

/** Whether every entry of every float32 tensor of `ts` is finite; needs `nativeFiniteAvailable()`. */
export function nativeAllFinite(ts: readonly tf.Tensor[]): boolean {
  const blas = native!.module!;
  const backend = tf.backend() as unknown as WasmBackendLike;
  for (const t of ts) {
    if (t.dtype !== 'float32') throw new Error(`nativeAllFinite: ${t.dtype} tensor`);
    if (!blas.finite!(backend.typedArrayFromHeap({ dataId: t.dataId, shape: [...t.shape], dtype: 'float32' }))) return false;
  }
  return true;
}
