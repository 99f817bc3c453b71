/**
 * Nets: parameters and application of an `IrNet` (a chain of layers with concrete sizes).
 *
 * Parameters. Layer `i` of net `h` owns `net/h/i/w` and `net/h/i/b` (the names used in
 * checkpoints). Layouts are tfjs's: linear `w [in, out]` (y = x w + b); conv2d `w [k, k, in, out]`;
 * deconv2d `w [k, k, out, in]` (what `tf.conv2dTranspose` takes). Weights start Glorot-uniform
 * (Glorot & Bengio 2010), or He-uniform (He et al. 2015) when the layer feeds a relu / elu;
 * biases start at zero. A `call` layer owns nothing: it applies the called net with that net's own
 * parameters (looked up by its name), so a net called from several places shares its weights.
 *
 * Image layout. Shapes in the IR are channels-first, `[C, H, W]`, as in PyTorch and in
 * `reshape(C, H, W)`. Inside a net, images are kept channels-last `[N, H, W, C]` because that is
 * what tfjs's convolutions take; the net transposes on the way in (an image input), on `reshape`
 * to an image, and back on `flatten` / an image output. So `flatten` is in channels-first (C, H, W)
 * order, `flatten(reshape(C, H, W)(v)) == v`, and flattened features line up with PyTorch's.
 *
 * Leading axes. `applyNet` maps over any leading axes: `x [...lead, ...inShape]` gives
 * `[...lead, ...outShape]` (the leading axes are flattened into one batch axis for the layers; a
 * net of linear layers and activations on vectors, an MLP, works on `[...lead, in]` directly).
 *
 * Dense layers as one op. `linear` (with the relu that follows it, if any) runs as one kernel,
 * `VmmDense` / `VmmDenseRelu`, registered here for the wasm and cpu backends on top of their
 * `_FusedMatMul` kernel, with its gradient registered beside it (see `dense`). tfjs's own
 * `tf.fused.matMul` falls back to three unfused kernels (matMul, add, relu) whenever a gradient
 * is being recorded, and each saves its inputs for the backward pass (a reference to the same
 * buffer since runtime/backprop.ts; a copy on wasm before); the dense op records one node that saves x, w and (after a relu) y. Where the
 * OpenBLAS module provides the `VmmDenseGrad` kernel (wasm), its whole backward pass (relu mask,
 * dw, db and, when needed, dx) is one native call too (`denseGradNative`). On the generic path
 * (native TensorFlow, or `VMM_KERNELS=generic`: src/kernels/registry.ts) a linear layer is
 * `tf.fused.matMul`.
 *
 * Gradients on every backend. The wasm backend has no `Conv2DBackpropFilter` kernel, so the
 * filter gradient of conv2d and deconv2d would fail there; where that kernel is missing, both layers
 * run under `tf.customGrad` with the filter gradient computed by `conv2dFilterGrad` (a sum of k*k
 * strided-slice matMuls) and the input gradient by the kernels wasm does have
 * (`Conv2DBackpropInput` for conv2d, `Conv2D` for deconv2d).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Activation, IrLayer, IrNet } from '../ir/types.ts';
import type { Rng } from '../random/rng.ts';
import { installKernel, ownKernelBackend } from '../kernels/registry.ts';
import { reshape } from './plates.ts';

/** Parameters by name: a `Map` (CompiledModel.variables) or a plain record. */
export type ParamLookup = ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>;

export interface ApplyOptions {
  /**
   * Fuse linear + bias (+ a following relu) into one `tf.fused.matMul`. Default: on (measured
   * faster on wasm; see bench notes in the report / README).
   */
  fused?: boolean;
  /**
   * Start at this layer: `x` is the output of the layers before it (whose per-example shape is
   * then the `inShape` argument). Lets nets that begin with the same `call` share its result.
   */
  from?: number;
  /** The net's skip inputs by name, each `[...lead, ...shape]` with the leading axes of `x`. */
  skips?: Readonly<Record<string, tf.Tensor>>;
}

/** What `applyNetOutputs` gives: the final output and every tapped one, each `[...lead, ...shape]`. */
export interface NetOutputs {
  out: tf.Tensor;
  taps: Record<string, tf.Tensor>;
}

/** `net/<net>/<layer index>/<w|b>`. */
export function paramName(net: string, layer: number, kind: 'w' | 'b'): string {
  return `net/${net}/${layer}/${kind}`;
}

/** The weight and bias shapes of a layer, or undefined for layers without parameters. */
export function layerParamShapes(layer: IrLayer): { w: number[]; b: number[] } | undefined {
  switch (layer.kind) {
    case 'linear':
      return { w: [layer.in, layer.out], b: [layer.out] };
    case 'conv2d':
      return { w: [layer.kernel, layer.kernel, layer.inChannels, layer.outChannels], b: [layer.outChannels] };
    case 'deconv2d':
      return { w: [layer.kernel, layer.kernel, layer.outChannels, layer.inChannels], b: [layer.outChannels] };
    default:
      return undefined;
  }
}

/** Number of parameters a net owns (excluding the nets it calls): `IrNet.paramCount`. */
export function paramCount(net: IrNet | readonly IrLayer[]): number {
  const layers = Array.isArray(net) ? (net as readonly IrLayer[]) : (net as IrNet).layers;
  let n = 0;
  for (const l of layers) {
    const s = layerParamShapes(l);
    if (s) n += prod(s.w) + prod(s.b);
  }
  return n;
}

/**
 * The channels-first output shape of one layer for a given input shape (what the checker
 * computes; here to validate and to size deconvolutions). Throws on a mismatch.
 */
export function layerOutputShape(layer: IrLayer, inShape: readonly number[], nets?: ReadonlyMap<string, IrNet>): number[] {
  const where = `layer ${layer.kind}`;
  switch (layer.kind) {
    case 'linear':
      if (inShape[inShape.length - 1] !== layer.in) throw new Error(`applyNet: ${where} expects last axis ${layer.in}, got [${inShape}]`);
      return [...inShape.slice(0, -1), layer.out];
    case 'slice':
      if (inShape.length !== 1 || layer.to > inShape[0]!) throw new Error(`applyNet: ${where} [${layer.from}:${layer.to}] of [${inShape}]`);
      return [layer.to - layer.from];
    case 'act':
      return [...inShape];
    case 'reshape':
      if (prod(layer.shape) !== prod(inShape)) throw new Error(`applyNet: reshape to [${layer.shape}] from [${inShape}]: sizes differ`);
      return [...layer.shape];
    case 'flatten':
      return [prod(inShape)];
    case 'conv2d':
    case 'deconv2d': {
      if (inShape.length !== 3 || inShape[0] !== layer.inChannels) {
        throw new Error(`applyNet: ${where} expects an image [${layer.inChannels}, H, W], got [${inShape}]`);
      }
      const [, h, w] = inShape as [number, number, number];
      const k = layer.kernel;
      const s = layer.stride;
      const size = (n: number): number =>
        layer.kind === 'conv2d'
          ? layer.padding === 'same'
            ? Math.ceil(n / s)
            : Math.floor((n - k) / s) + 1
          : layer.padding === 'same'
            ? n * s
            : (n - 1) * s + k;
      const oh = size(h);
      const ow = size(w);
      if (!(oh > 0 && ow > 0)) throw new Error(`applyNet: ${where} with kernel ${k} on [${inShape}] gives an empty image`);
      return [layer.outChannels, oh, ow];
    }
    case 'call': {
      const callee = nets?.get(layer.net);
      if (!callee) throw new Error(`applyNet: call of unknown net '${layer.net}'`);
      if (!sameShape(callee.inShape, inShape)) throw new Error(`applyNet: net '${layer.net}' expects [${callee.inShape}], got [${inShape}]`);
      return [...callee.outShape];
    }
    case 'tap':
      return [...inShape];
    case 'skip':
      if (inShape.length !== 3 && inShape.length !== 1) throw new Error(`applyNet: skip ${layer.name} joins an image or a vector, got [${inShape}]`);
      return [inShape[0]! + layer.channels, ...inShape.slice(1)];
  }
}

/** The shape of skip input `layer` where it joins a value of shape `at`: `[C, H, W]` or `[C]`. */
export function skipInputShape(layer: { channels: number }, at: readonly number[]): number[] {
  return at.length === 3 ? [layer.channels, at[1]!, at[2]!] : [layer.channels];
}

/**
 * Creates the variables net `net` owns, keyed by `paramName`. Seeds come from `rng` in layer order,
 * so the same seed gives the same initial weights on every backend.
 */
export function createNetParams(net: IrNet, rng: Rng): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  net.layers.forEach((layer, i) => {
    const shapes = layerParamShapes(layer);
    if (!shapes) return;
    const { fanIn, fanOut } = fans(layer);
    const next = nextActivation(net.layers, i);
    const limit = next === 'relu' || next === 'elu' ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
    const seed = rng.nextSeed();
    out[paramName(net.name, i, 'w')] = tf.tidy(() => tf.variable(tf.randomUniform(shapes.w, -limit, limit, 'float32', seed), true));
    const bias = layer.kind === 'linear' ? (layer.bias ?? 0) : 0;
    out[paramName(net.name, i, 'b')] = tf.tidy(() => tf.variable(bias ? tf.fill(shapes.b, bias) : tf.zeros(shapes.b), true));
  });
  return out;
}

function fans(layer: IrLayer): { fanIn: number; fanOut: number } {
  switch (layer.kind) {
    case 'linear':
      return { fanIn: layer.in, fanOut: layer.out };
    case 'conv2d':
    case 'deconv2d':
      return { fanIn: layer.kernel * layer.kernel * layer.inChannels, fanOut: layer.kernel * layer.kernel * layer.outChannels };
    default:
      return { fanIn: 1, fanOut: 1 };
  }
}

/** The activation applied right after layer i, if the next layer is one. */
function nextActivation(layers: readonly IrLayer[], i: number): Activation | undefined {
  const n = layers[i + 1];
  return n && n.kind === 'act' ? n.fn : undefined;
}

function lookup(params: ParamLookup, name: string): tf.Tensor {
  const p = params instanceof Map ? (params as ReadonlyMap<string, tf.Tensor>).get(name) : (params as Readonly<Record<string, tf.Tensor>>)[name];
  if (!p) throw new Error(`applyNet: missing parameter ${name}`);
  return p;
}

/** Running state while applying layers: `t` is [N, ...] with images channels-last. */
interface Cur {
  t: tf.Tensor;
  /** Channels-first per-example shape (what the IR calls the shape). */
  shape: number[];
  /** `t` holds an image as [N, H, W, C]. */
  img: boolean;
}

function toUser(c: Cur): tf.Tensor {
  return c.img ? tf.transpose(c.t, [0, 3, 1, 2]) : c.t;
}

function fromUser(t: tf.Tensor, shape: number[]): Cur {
  return shape.length === 3 ? { t: tf.transpose(t, [0, 2, 3, 1]), shape, img: true } : { t, shape, img: false };
}

/**
 * Applies net `net` to `x [...lead, ...inShape]`, giving `[...lead, ...net.outShape]`.
 * `params` holds the parameters of `net` and of every net it calls; `nets` resolves `call` layers.
 */
export function applyNet(
  net: IrNet,
  params: ParamLookup,
  nets: ReadonlyMap<string, IrNet>,
  x: tf.Tensor,
  inShape: readonly number[] = net.inShape,
  opts: ApplyOptions = {},
): tf.Tensor {
  const from = opts.from ?? 0;
  const expected = shapeBefore(net, from, nets);
  if (!sameShape(inShape, expected)) throw new Error(`applyNet(${net.name}): inShape [${inShape}] differs from the net's [${expected}] at layer ${from}`);
  const evRank = inShape.length;
  if (x.rank < evRank || !sameShape(x.shape.slice(x.rank - evRank), inShape)) {
    throw new Error(`applyNet(${net.name}): input of shape [${x.shape}] does not end with [${inShape}]`);
  }
  const fused = opts.fused ?? true;
  if (fused && from === 0 && isMlp(net)) return applyMlp(net, params, x);
  return tf.tidy(() => runLayers(net, params, nets, x, inShape, opts, false).out);
}

/**
 * Applies net `net` like `applyNet` and returns its tapped outputs too (`tap(name)` stages): one
 * forward pass for `g(x)`, `g(x).s14` and `g(x).s7`.
 */
export function applyNetOutputs(
  net: IrNet,
  params: ParamLookup,
  nets: ReadonlyMap<string, IrNet>,
  x: tf.Tensor,
  opts: ApplyOptions = {},
): NetOutputs {
  const evRank = net.inShape.length;
  if (x.rank < evRank || !sameShape(x.shape.slice(x.rank - evRank), net.inShape)) {
    throw new Error(`applyNet(${net.name}): input of shape [${x.shape}] does not end with [${net.inShape}]`);
  }
  return tf.tidy(() => runLayers(net, params, nets, x, net.inShape, { ...opts, from: 0 }, true) as unknown as tf.TensorContainer) as unknown as NetOutputs;
}

/** The layers of `net` from `opts.from` on `x` (checked by the callers); inside their tidy. */
function runLayers(
  net: IrNet,
  params: ParamLookup,
  nets: ReadonlyMap<string, IrNet>,
  x: tf.Tensor,
  inShape: readonly number[],
  opts: ApplyOptions,
  wantTaps: boolean,
): NetOutputs {
  const from = opts.from ?? 0;
  const fused = opts.fused ?? true;
  const lead = x.shape.slice(0, x.rank - inShape.length);
  const n = prod(lead);
  const taps: Record<string, tf.Tensor> = {};
  {
    let c = fromUser(reshape(x, [n, ...inShape]), [...inShape]);
    const layers = net.layers;
    for (let i = from; i < layers.length; i++) {
      const layer = layers[i]!;
      const shape = layerOutputShape(layer, c.shape, nets);
      switch (layer.kind) {
        case 'linear': {
          const w = lookup(params, paramName(net.name, i, 'w')) as tf.Tensor2D;
          const b = lookup(params, paramName(net.name, i, 'b'));
          const flat = reshape(toUser(c), [-1, layer.in]) as tf.Tensor2D;
          let y: tf.Tensor;
          if (fused) {
            const next = nextActivation(layers, i);
            const act = next === 'relu' ? 'relu' : 'linear';
            y = dense(flat, w, b, act === 'relu');
            if (act === 'relu') i++; // the relu is done
          } else {
            y = tf.add(tf.matMul(flat, w), b);
          }
          c = { t: reshape(y, [n, ...shape]), shape, img: false };
          break;
        }
        case 'act':
          c = { t: activate(layer.fn, c.t), shape, img: c.img };
          break;
        case 'slice':
          c = { t: tf.slice(c.t, [0, layer.from], [n, layer.to - layer.from]), shape, img: false };
          break;
        case 'reshape':
          c = fromUser(tf.reshape(toUser(c), [n, ...shape]), shape);
          break;
        case 'flatten':
          c = { t: tf.reshape(toUser(c), [n, ...shape]), shape, img: false };
          break;
        case 'conv2d': {
          const w = lookup(params, paramName(net.name, i, 'w')) as tf.Tensor4D;
          const b = lookup(params, paramName(net.name, i, 'b'));
          const y = conv2d(c.t as tf.Tensor4D, w, layer.stride, layer.padding);
          c = { t: tf.add(y, b), shape, img: true };
          break;
        }
        case 'deconv2d': {
          const w = lookup(params, paramName(net.name, i, 'w')) as tf.Tensor4D;
          const b = lookup(params, paramName(net.name, i, 'b'));
          const outShape: [number, number, number, number] = [n, shape[1]!, shape[2]!, shape[0]!];
          const y = deconv2d(c.t as tf.Tensor4D, w, outShape, layer.stride, layer.padding);
          c = { t: tf.add(y, b), shape, img: true };
          break;
        }
        case 'call': {
          const callee = nets.get(layer.net)!;
          const y = applyNet(callee, params, nets, toUser(c), callee.inShape, { fused: opts.fused });
          c = fromUser(y, shape);
          break;
        }
        case 'tap':
          if (wantTaps) taps[layer.name] = reshape(toUser(c), [...lead, ...c.shape]);
          break;
        case 'skip': {
          const s = opts.skips?.[layer.name];
          const sShape = skipInputShape(layer, c.shape);
          if (!s) throw new Error(`applyNet(${net.name}): skip input '${layer.name}' not given`);
          if (!sameShape(s.shape, [...lead, ...sShape])) {
            throw new Error(`applyNet(${net.name}): skip input '${layer.name}' has shape [${s.shape}], expected [${[...lead, ...sShape]}]`);
          }
          const j = fromUser(reshape(s, [n, ...sShape]), sShape);
          // Channels-last images join on their last axis, as vectors do.
          c = { t: tf.concat([c.t, j.t], -1), shape, img: c.img };
          break;
        }
      }
    }
    if (!sameShape(c.shape, net.outShape)) {
      throw new Error(`applyNet(${net.name}): layers produce [${c.shape}], but the net declares [${net.outShape}]`);
    }
    return { out: reshape(toUser(c), [...lead, ...net.outShape]), taps };
  }
}

/** The per-example shape entering layer `from` of `net` (its input shape for 0). */
function shapeBefore(net: IrNet, from: number, nets: ReadonlyMap<string, IrNet>): number[] {
  let shape = [...net.inShape];
  for (let i = 0; i < from; i++) shape = layerOutputShape(net.layers[i]!, shape, nets);
  return shape;
}

/** A net of linear layers and activations from a vector to a vector (an MLP). */
function isMlp(net: IrNet): boolean {
  return net.inShape.length === 1 && net.outShape.length === 1 && net.layers.every((l) => l.kind === 'linear' || l.kind === 'act');
}

/**
 * An MLP on `x [...lead, in]` without flattening the leading axes: each linear layer (with its
 * relu) is one `dense` op, so no reshape kernel runs (under a gradient tape each reshape would
 * save its input, which for a net applied to a whole memory is the memory itself).
 */
function applyMlp(net: IrNet, params: ParamLookup, x: tf.Tensor, end = net.layers.length): tf.Tensor {
  return tf.tidy(() => {
    let t = x;
    let width = net.inShape[0]!;
    const layers = net.layers;
    for (let i = 0; i < end; i++) {
      const layer = layers[i]!;
      if (layer.kind === 'act') {
        t = activate(layer.fn, t);
        continue;
      }
      if (layer.kind !== 'linear') throw new Error(`applyNet(${net.name}): ${layer.kind} in an MLP`);
      if (layer.in !== width) throw new Error(`applyNet: layer linear expects last axis ${layer.in}, got ${width}`);
      const w = lookup(params, paramName(net.name, i, 'w')) as tf.Tensor2D;
      const b = lookup(params, paramName(net.name, i, 'b'));
      const relu = nextActivation(layers, i) === 'relu';
      t = dense(t, w, b, relu);
      if (relu) i++;
      width = layer.out;
    }
    if (end === layers.length && width !== net.outShape[0]) {
      throw new Error(`applyNet(${net.name}): layers produce [${width}], but the net declares [${net.outShape}]`);
    }
    return t;
  });
}

/**
 * An MLP whose last layer is linear, `f(v) = body(v) w + b`, taken apart so that a product with
 * its output can be folded through that layer (src/lower/fold.ts): `body` applies every layer
 * before the last (the identity for a one-layer net) to `x [...lead, in]`, giving
 * `[...lead, width]`; `last` applies the last layer to such a hidden value.
 */
export interface LinearTail {
  /** The net's input width. */
  inWidth: number;
  /** The last layer's input width. */
  width: number;
  /** The last layer's output width (the net's). */
  outWidth: number;
  w: tf.Tensor2D;
  b: tf.Tensor;
  body(x: tf.Tensor): tf.Tensor;
  last(hidden: tf.Tensor): tf.Tensor;
}

/** The last layer of `net` when it is an MLP ending in a linear layer (what `linearTail` takes apart). */
export function foldableLayer(net: IrNet): Extract<IrLayer, { kind: 'linear' }> | undefined {
  const layer = net.layers[net.layers.length - 1];
  return isMlp(net) && layer?.kind === 'linear' ? layer : undefined;
}

/** `net` as a body and a linear last layer, or undefined when it is not an MLP ending in one. */
export function linearTail(net: IrNet, params: ParamLookup): LinearTail | undefined {
  const end = net.layers.length - 1;
  const layer = foldableLayer(net);
  if (!layer) return undefined;
  const w = lookup(params, paramName(net.name, end, 'w')) as tf.Tensor2D;
  const b = lookup(params, paramName(net.name, end, 'b'));
  return {
    inWidth: net.inShape[0]!,
    width: layer.in,
    outWidth: layer.out,
    w,
    b,
    body: (x) => (end === 0 ? x : applyMlp(net, params, x, end)),
    last: (hidden) => dense(hidden, w, b, false),
  };
}

export const DENSE = 'VmmDense';
export const DENSE_RELU = 'VmmDenseRelu';
let denseGradRegistered = false;

type Info = tf.TensorInfo;
type FusedKernel = (args: { inputs: Record<string, Info>; backend: unknown; attrs: Record<string, unknown> }) => Info;

/**
 * Registers the dense kernels for the active backend (once per backend) and their gradient
 * (once). False where the backend is not one they were written for (wasm, cpu), and on the
 * generic path (kernels.ts): callers then use the ordinary ops.
 */
function denseAvailable(): boolean {
  const backend = ownKernelBackend();
  if (!backend) return false;
  if (tf.getKernel(DENSE, backend)) return true;
  const fused = tf.getKernel('_FusedMatMul', backend);
  if (!fused) return false;
  const fusedFn = fused.kernelFunc as unknown as FusedKernel;
  for (const [name, activation] of [
    [DENSE, 'linear'],
    [DENSE_RELU, 'relu'],
  ] as const) {
    const kernelFunc = (args: { inputs: Record<string, Info>; backend: unknown }): Info => {
      const { x, w, b } = args.inputs as { x: Info; w: Info; b: Info };
      const k = x.shape[x.shape.length - 1]!;
      const m = w.shape[1]!;
      const n = x.shape.length === 1 ? 1 : x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
      // The same buffers seen as [1, n, k] and [1, k, m] (what _FusedMatMul takes): a relabelling, as the
      // backends' own Reshape kernels do, with no copy.
      const out = fusedFn({
        inputs: { a: { ...x, shape: [1, n, k] }, b: { ...w, shape: [1, k, m] }, bias: b },
        backend: args.backend,
        attrs: { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0 },
      });
      return { dataId: out.dataId, shape: [...x.shape.slice(0, -1), m], dtype: out.dtype };
    };
    installKernel({ kernelName: name, backendName: backend, kernelFunc: kernelFunc as unknown as tf.KernelFunc }, 'dense');
  }
  if (!denseGradRegistered) {
    for (const name of [DENSE, DENSE_RELU]) {
      tf.registerGradient({
        kernelName: name,
        inputsToSave: ['x', 'w'],
        outputsToSave: name === DENSE_RELU ? [true] : [],
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) =>
          hasKernel(DENSE_GRAD) ? denseGradNative(dy as tf.Tensor, saved, attrs?.['wantDx'] === true) : denseGrad(dy as tf.Tensor, saved),
      });
    }
    denseGradRegistered = true;
  }
  return true;
}

/**
 * The native backward kernel (src/runtime/blas.ts, registered for wasm where the OpenBLAS module
 * is built); looked up by name, so the lowering does not depend on the runtime.
 */
const DENSE_GRAD = 'VmmDenseGrad';

/**
 * The gradient of a dense layer by one `VmmDenseGrad` kernel: dw, db and (when `wantDx`, decided
 * in the forward pass by `mayNeedGradient`) dx from one native call, instead of the 5-9 kernels
 * of `denseGrad`. The engine still asks for each input's part separately; should it ask for dx
 * where the forward pass guessed it would not (the layer's input is then a function of a tensor
 * that was not a trainable variable, e.g. in `tf.grad` w.r.t. an input), the kernel runs again
 * for it.
 */
function denseGradNative(dy: tf.Tensor, saved: tf.Tensor[], wantDx: boolean): Record<string, () => tf.Tensor> {
  const [x, w, y] = saved as [tf.Tensor, tf.Tensor2D, tf.Tensor | undefined];
  const run = (dx: boolean) => tf.engine().runKernel(DENSE_GRAD, { dy, x, w, ...(y ? { y } : {}) }, { wantDx: dx }) as tf.Tensor[];
  const [dw, db, dx] = run(wantDx) as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
  return { x: () => dx ?? run(true)[2]!, w: () => dw, b: () => db };
}

type TapeNode = { inputs: Record<string, tf.Tensor>; outputs: tf.Tensor[] };
/** Per gradient tape: how many of its nodes were scanned, and the ids of tensors that depend on a trainable variable. */
const dependents = new WeakMap<TapeNode[], { scanned: number; ids: Set<number> }>();

/**
 * Whether the gradient being recorded may ask for the gradient of `x`: `x` is a trainable variable
 * or the output of a recorded op one of whose inputs is (transitively). Data and memories fed to a
 * first layer are not, so their layer's backward pass skips `dx` (for `h(mem)` at M = 2048 a
 * [65536, 784] product). Scans the new part of the tape only.
 */
function mayNeedGradient(x: tf.Tensor): boolean {
  if (x instanceof tf.Variable) return x.trainable;
  const tape = (tf.engine() as unknown as { state: { activeTape: TapeNode[] | null } }).state.activeTape;
  if (!tape) return false;
  let d = dependents.get(tape);
  if (!d) dependents.set(tape, (d = { scanned: 0, ids: new Set() }));
  for (; d.scanned < tape.length; d.scanned++) {
    const node = tape[d.scanned]!;
    const hit = Object.values(node.inputs).some((t) => (t instanceof tf.Variable && t.trainable) || d.ids.has(t.id));
    if (hit) for (const o of node.outputs) d.ids.add(o.id);
  }
  return d.ids.has(x.id);
}

/**
 * The gradient of `y = act(x w + b)` for `x [..., in]`, each input's part computed only when the
 * engine asks for it (not for data fed to a first layer): `dx = g w^T`, `dw = x^T g`,
 * `db = sum_rows g` (`columnSum`), where `g = dy * (y > 0)` after a relu and `dy` otherwise.
 *
 * Measured on wasm and kept as they are (fresh tensors each call, as in training; XNNPACK packs
 * the right-hand operand of a product for every new tensor): `dw = (g^T x)^T` was ~15% slower for
 * the addressing embedding's first layer (it packs x [n, in] instead of g [n, out]), and
 * `db = 1^T g` as a product ~2.5x slower than the column sum (it packs g).
 */
function denseGrad(dy: tf.Tensor, saved: tf.Tensor[]): Record<string, () => tf.Tensor> {
  const [x, w, y] = saved as [tf.Tensor, tf.Tensor2D, tf.Tensor | undefined];
  const [k, m] = w.shape;
  const n = dy.size / m;
  const g2 = reshape(y ? tf.mul(dy, tf.step(y)) : dy, [n, m]) as tf.Tensor2D;
  return {
    x: () => reshape(tf.matMul(g2, w, false, true), x.shape),
    w: () => tf.matMul(reshape(x, [n, k]) as tf.Tensor2D, g2, true, false),
    b: () => columnSum(g2),
  };
}

/**
 * The sum over the rows of `g [n, m]`. On wasm, an average pool over the whole column times n:
 * wasm's Sum reduces only along the innermost axis and transposes g first (~35 ms for
 * [16384, 256]), its AvgPool (XNNPACK) reads g in place (~4 ms). The two agree to float32
 * rounding (relative 1e-5 over 1e5 rows).
 */
function columnSum(g: tf.Tensor2D): tf.Tensor {
  const [n, m] = g.shape;
  // Small sums (the K * B rows of most layers) stay one Sum kernel: the pool is three kernels.
  if (ownKernelBackend() !== 'wasm' || n < 1024) return tf.sum(g, 0);
  return tf.mul(tf.reshape(tf.avgPool(tf.reshape(g, [1, n, 1, m]) as tf.Tensor4D, [n, 1], 1, 'valid'), [m]), n);
}

/**
 * `act(x w + b)` for `x [..., in]`, `w [in, out]`, `b [out]`, act = relu or identity: one
 * `VmmDense(Relu)` kernel where available (see the module comment), else tfjs's fused matMul.
 */
export function dense(x: tf.Tensor, w: tf.Tensor2D, b: tf.Tensor, relu: boolean): tf.Tensor {
  if (x.shape[x.rank - 1] !== w.shape[0]) throw new Error(`dense: input [${x.shape}] does not end with ${w.shape[0]}`);
  if (denseAvailable() && x.dtype === 'float32') {
    const attrs: tf.NamedAttrMap = hasKernel(DENSE_GRAD) ? { wantDx: mayNeedGradient(x) } : {};
    return tf.engine().runKernel(relu ? DENSE_RELU : DENSE, { x, w, b }, attrs) as tf.Tensor;
  }
  const flat = reshape(x, [-1, w.shape[0]]) as tf.Tensor2D;
  const y = tf.fused.matMul({ a: flat, b: w, bias: b, activation: relu ? 'relu' : 'linear' });
  return reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
}

function activate(fn: Activation, t: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'relu':
      return tf.relu(t);
    case 'tanh':
      return tf.tanh(t);
    case 'sigmoid':
      return tf.sigmoid(t);
    case 'elu':
      return tf.elu(t);
    case 'softplus':
      return tf.softplus(t);
    case 'identity':
      return t;
  }
}

/** Whether the active backend registers kernel `name`. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

type Pad = 'same' | 'valid';
type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/** conv2d, NHWC, with a filter gradient on every backend (see the module comment). */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: Pad): tf.Tensor4D {
  if (hasKernel('Conv2DBackpropFilter')) return tf.conv2d(x, w, stride, pad);
  const f = tf.customGrad(((xi: tf.Tensor4D, wi: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xi, wi]);
    return {
      value: tf.conv2d(xi, wi, stride, pad),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        return [tf.conv2dTranspose(dy, sw, sx.shape, stride, pad), conv2dFilterGrad(sx, dy, sw.shape, stride, pad)];
      },
    };
  }) as unknown as CustomGradFn);
  return f(x, w) as tf.Tensor4D;
}

/** conv2dTranspose, NHWC, filter [k, k, out, in], with a filter gradient on every backend. */
export function deconv2d(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  outShape: [number, number, number, number],
  stride: number,
  pad: Pad,
): tf.Tensor4D {
  if (hasKernel('Conv2DBackpropFilter')) return tf.conv2dTranspose(x, w, outShape, stride, pad);
  const f = tf.customGrad(((xi: tf.Tensor4D, wi: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xi, wi]);
    return {
      value: tf.conv2dTranspose(xi, wi, outShape, stride, pad),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        // y = conv2d^T(x): dx = conv2d(dy), and the filter gradient swaps the roles of dy and x.
        return [tf.conv2d(dy, sw, stride, pad), conv2dFilterGrad(dy, sx, sw.shape, stride, pad)];
      },
    };
  }) as unknown as CustomGradFn);
  return f(x, w) as tf.Tensor4D;
}

/**
 * The gradient of `sum(dy * conv2d(x, w))` w.r.t. `w` (what the `Conv2DBackpropFilter` kernel
 * computes): `dw[i, j] = sum_{n, p, q} xpad[n, p*s + i, q*s + j, :]^T dy[n, p, q, :]`, one
 * strided slice and one matMul per kernel tap. x [N, H, W, Cin], dy [N, Ho, Wo, Cout],
 * filterShape [k, k, Cin, Cout].
 */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  stride: number,
  pad: Pad,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = filterShape;
    const info = tf.backend_util.computeConv2DInfo(x.shape, [kh, kw, cin, cout], stride, 1, pad);
    const { top, bottom, left, right } = info.padInfo;
    const [n] = x.shape;
    const oh = info.outHeight;
    const ow = info.outWidth;
    if (dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== cout) {
      throw new Error(`conv2dFilterGrad: dy [${dy.shape}] does not match the conv output [${n},${oh},${ow},${cout}]`);
    }
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    const dyFlat = tf.reshape(dy, [-1, cout]) as tf.Tensor2D;
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const patch = tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, cin], [1, stride, stride, 1]);
        taps.push(tf.matMul(tf.reshape(patch, [-1, cin]) as tf.Tensor2D, dyFlat, true, false));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, cin, cout]) as tf.Tensor4D;
  });
}

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const v of xs) p *= v;
  return p;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
