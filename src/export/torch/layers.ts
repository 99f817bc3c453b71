/**
 * The PyTorch emission of each net layer kind (IrLayer['kind']), beside its tfjs application in
 * src/lower/nets.ts: one line of the generated net method per layer, on `x` (leading axes first,
 * then the layer's input, channels-first for images as in the IR and in PyTorch). Weights keep
 * vmm's names and layouts (`net/<net>/<i>/w`: dense [in, out], conv2d [k, k, in, out], deconv2d
 * [k, k, out, in]); vmm_runtime.py permutes a convolution's kernel where torch wants
 * [out, in, k, k], so vmm checkpoints load without conversion. Every net method takes the net's
 * skip inputs (`skips`, by name) and a dict that receives its tapped outputs (`taps`), as
 * src/lower/nets.ts' applyNetOutputs. A kind that returns a string
 * starting with `!` is not emitted: the exporter reports it (VMM3040) with that reason.
 */
import type { IrLayer } from '../../ir/types.ts';

export interface LayerContext {
  /** The net's name (its weights are `net/<net>/<index>/...`). */
  net: string;
  index: number;
  /** The event shape entering the layer (channels-first). */
  inShape: readonly number[];
}

type Emit<K extends IrLayer['kind']> = (layer: Extract<IrLayer, { kind: K }>, c: LayerContext) => string;

const w = (c: LayerContext) => `P['net/${c.net}/${c.index}/w']`;
const b = (c: LayerContext) => `P['net/${c.net}/${c.index}/b']`;
/** The leading axes of x ahead of an event of rank r. */
const lead = (r: number) => `x.shape[:x.dim() - ${r}]`;

export const TORCH_LAYERS: { [K in IrLayer['kind']]: Emit<K> } = {
  linear: (_l, c) => `x = rt.linear(x, ${w(c)}, ${b(c)})`,
  act: (l) => `x = rt.ACTIVATIONS['${l.fn}'](x)`,
  slice: (l) => `x = x[..., ${l.from}:${l.to}]`,
  reshape: (l, c) => `x = x.reshape(*${lead(c.inShape.length)}, ${l.shape.join(', ')})`,
  flatten: (_l, c) => `x = x.reshape(*${lead(c.inShape.length)}, ${c.inShape.reduce((a, n) => a * n, 1)})`,
  conv2d: (l, c) => `x = rt.conv2d(x, ${w(c)}, ${b(c)}, ${l.stride}, '${l.padding}')`,
  deconv2d: (l, c) => `x = rt.deconv2d(x, ${w(c)}, ${b(c)}, ${l.stride}, '${l.padding}')`,
  call: (l) => `x = self.net_${l.net}(x)`,
  // The net method's `taps` dict (given by a read that wants them) receives the named output.
  tap: (l) => `if taps is not None: taps['${l.name}'] = x`,
  // Its extra input from the `skips` dict, joined channel-wise (the first event axis).
  skip: (l, c) => `x = rt.skip(x, skips['${l.name}'], ${c.inShape.length})`,
};

/** The emission of one layer (a `!reason` when it cannot be emitted). */
export function emitLayer(layer: IrLayer, c: LayerContext): string {
  return (TORCH_LAYERS[layer.kind] as (l: IrLayer, c: LayerContext) => string)(layer, c);
}
