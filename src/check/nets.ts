/**
 * Nets: a chain of layers `net e = reshape(1, 28, 28) >> conv2d(1, 32, kernel: 3) >> relu >> flatten`.
 * The shape is followed through every stage (linear, mlp, conv2d / deconv2d with padding same or
 * valid, reshape, flatten, activations, calls of other nets); the net's input shape is the input of
 * its first stage. Image shapes are written channels-first, `[C, H, W]`, as in `reshape(C, H, W)`.
 *
 * Several outputs and inputs (U-Net style skip connections, as in the VMA reimplementation's
 * decoder that reads the chosen entry's feature maps):
 * - `tap(s14)` names the value at that point of the chain as an output of the net; `g(x)` is still
 *   the final output, `g(x).s14` the tapped one (one forward pass gives both);
 * - `skip(s14, C)` concatenates an extra input of the net, C channels at the current resolution
 *   (C features after a vector), channel-wise: `[C0, H, W]` becomes `[C0 + C, H, W]`; the
 *   application passes it by name, `dec(h, s14: g(m).s14)`, shape-checked against `[C, H, W]`.
 */
import type { Arg, Call, Expr, NetDecl, Span } from '../ast/types.ts';
import type { Activation, IrLayer } from '../ir/types.ts';
import { LAYERS, type Ctx, type Scope } from './context.ts';
import { evalConcreteSize, evalConst } from './consts.ts';
import { formatExpr } from './format.ts';
import { didYouMean } from './suggest.ts';
import type { CheckedNet, CheckedNetPort } from './types.ts';

const ACTIVATIONS: Activation[] = ['relu', 'tanh', 'sigmoid', 'elu', 'softplus'];

const fmt = (s: number[]) => `[${s.join(', ')}]`;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Parameters owned by a layer list (calls of other nets own none here). */
export function layerParamCount(l: IrLayer): number {
  switch (l.kind) {
    case 'linear':
      return l.in * l.out + l.out;
    case 'conv2d':
    case 'deconv2d':
      return l.kernel * l.kernel * l.inChannels * l.outChannels + l.outChannels;
    default:
      return 0;
  }
}

export function netParamCount(layers: IrLayer[]): number {
  return layers.reduce((n, l) => n + layerParamCount(l), 0);
}

interface Stage {
  layers: IrLayer[];
  /** The input shape it requires, if it determines one (linear / mlp / reshape / a net). */
  input?: number[];
  /** Output shape given the input shape; reports mismatches itself. */
  apply(input: number[], prev: { span: Span; text: string }): number[] | undefined;
  /** `tap(name)` / `skip(name, C)`: the port it declares (its shape is known after `apply`). */
  port?: { kind: 'tap' | 'skip'; name: string; span: Span };
}

/** Checks a net declaration; returns the resolved net, or undefined after an error. */
export function checkNet(ctx: Ctx, decl: NetDecl, scope: Scope): CheckedNet | undefined {
  const name = decl.name.name;
  const stages: (Stage | undefined)[] = decl.stages.map((s) => stageOf(ctx, s, scope));
  if (stages.some((s) => s === undefined)) return undefined;
  const first = stages[0]!;
  const firstExpr = decl.stages[0]!;
  if (!first.input) {
    ctx.error(
      'VMM2033',
      `the input shape of net \`${name}\` cannot be inferred from its first stage \`${formatExpr(firstExpr)}\`: start the chain with linear, mlp, reshape(C, H, W) or another net`,
      firstExpr.span,
    );
    return undefined;
  }
  const inShape = first.input;
  let shape: number[] | undefined = inShape;
  const layers: IrLayer[] = [];
  let prev = { span: firstExpr.span, text: `the input of \`${name}\`` };
  const taps: CheckedNetPort[] = [];
  const skips: CheckedNetPort[] = [];
  for (let i = 0; i < stages.length; i++) {
    const st = stages[i]!;
    const expr = decl.stages[i]!;
    const before: number[] = shape;
    shape = st.apply(shape, prev);
    if (!shape) return undefined;
    if (st.port) {
      const ports = st.port.kind === 'tap' ? taps : skips;
      const twice = ports.find((p) => p.name === st.port!.name);
      if (twice) {
        ctx.error('VMM2036', `net \`${name}\` has two ${st.port.kind}s named \`${twice.name}\``, st.port.span, [{ message: 'first named here', span: twice.span }]);
        return undefined;
      }
      // A skip input's shape: the current one with its channels (or features) replaced by C.
      const port = st.port.kind === 'tap' ? shape : skipShape(before, (st.layers[0] as { channels: number }).channels);
      ports.push({ name: st.port.name, shape: port, span: st.port.span });
    }
    layers.push(...st.layers);
    prev = { span: expr.span, text: `\`${formatExpr(expr)}\`` };
  }
  return { name, layers, inShape, outShape: shape, decl, derived: false, ...(taps.length ? { taps } : {}), ...(skips.length ? { skips } : {}) };
}

/** The shape of a skip input of C channels joining a value of shape `at`: `[C, H, W]` or `[C]`. */
function skipShape(at: number[], channels: number): number[] {
  return at.length === 3 ? [channels, at[1]!, at[2]!] : [channels];
}

function positional(args: Arg[]): Expr[] {
  return args.filter((a) => !a.name).map((a) => a.value);
}

function named(ctx: Ctx, call: Call, allowed: string[]): Map<string, Arg> | undefined {
  const out = new Map<string, Arg>();
  let ok = true;
  for (const a of call.args) {
    if (!a.name) continue;
    const n = a.name.name;
    if (!allowed.includes(n)) {
      const hint = allowed.length ? ` (it takes ${allowed.map((x) => `\`${x}:\``).join(', ')})` : ' (it takes no named arguments)';
      ctx.error('VMM2031', `\`${call.callee.name}\` has no argument \`${n}\`${hint}${didYouMean(n, allowed)}`, a.name.span);
      ok = false;
    } else if (out.has(n)) {
      ctx.error('VMM2031', `argument \`${n}\` is given twice`, a.span, [{ message: 'first given here', span: out.get(n)!.span }]);
      ok = false;
    } else out.set(n, a);
  }
  return ok ? out : undefined;
}

function identValue(ctx: Ctx, a: Arg, allowed: string[], what: string): string | undefined {
  if (a.value.kind === 'Ident' && allowed.includes(a.value.name)) return a.value.name;
  const got = formatExpr(a.value);
  ctx.error('VMM2031', `${what} must be one of ${allowed.map((x) => `\`${x}\``).join(', ')}, found \`${got}\`${didYouMean(got, allowed)}`, a.value.span);
  return undefined;
}

function stageOf(ctx: Ctx, e: Expr, scope: Scope): Stage | undefined {
  if (e.kind === 'Ident') return bareStage(ctx, e.name, e.span, scope);
  if (e.kind !== 'Call') {
    ctx.error('VMM2030', `\`${formatExpr(e)}\` is not a layer: a net stage is a layer (\`linear(IN, OUT)\`, \`relu\`, ...) or the name of a net`, e.span);
    return undefined;
  }
  const name = e.callee.name;
  const pos = positional(e.args);
  const size = (x: Expr, what: string) => evalConcreteSize(ctx, x, scope, what);
  switch (name) {
    case 'linear': {
      const nm = named(ctx, e, ['bias']);
      if (pos.length !== 2) {
        ctx.error('VMM2031', `\`linear\` takes two sizes, \`linear(IN, OUT)\`, found ${pos.length} argument${pos.length === 1 ? '' : 's'}`, e.span);
        return undefined;
      }
      const a = size(pos[0]!, 'a layer size');
      const b = size(pos[1]!, 'a layer size');
      // `bias: B` starts the bias at B: a negative one before a relu makes the features sparse at
      // the start (few active per input), as a Titans memory's keys need (models/titans_recall.vmm).
      const biasArg = nm?.get('bias');
      const bias = biasArg ? evalConst(ctx, biasArg.value, scope, 'the initial bias `bias:`') : 0;
      if (a === undefined || b === undefined || !nm || bias === undefined) return undefined;
      return vectorStage(ctx, [a, b], [{ kind: 'linear', in: a, out: b, ...(bias ? { bias } : {}) }], e, pos[0]!);
    }
    case 'slice': {
      // `slice(FROM, TO)`: features FROM .. TO - 1 of a vector, e.g. the key bits of an entry that
      // holds a key and then a value. Its input is whatever the previous stage gives.
      const nm = named(ctx, e, []);
      if (pos.length !== 2) {
        ctx.error('VMM2031', `\`slice\` takes two positions, \`slice(FROM, TO)\`, found ${pos.length} argument${pos.length === 1 ? '' : 's'}`, e.span);
        return undefined;
      }
      const from = evalConst(ctx, pos[0]!, scope, 'a slice position');
      const to = size(pos[1]!, 'a slice position');
      if (from === undefined || to === undefined || !nm) return undefined;
      if (!Number.isInteger(from) || from < 0) {
        ctx.error('VMM2031', `a slice position must be a whole number >= 0, found ${from}`, pos[0]!.span);
        return undefined;
      }
      if (to <= from) {
        ctx.error('VMM2031', `\`${formatExpr(e)}\` is empty: \`slice(FROM, TO)\` keeps features FROM .. TO - 1, so TO must exceed FROM`, e.span);
        return undefined;
      }
      return {
        layers: [{ kind: 'slice', from, to }],
        apply(input, prev) {
          if (input.length !== 1 || to > input[0]!) {
            ctx.error('VMM2034', `\`${formatExpr(e)}\` needs a vector of at least ${to} features, but ${prev.text} gives ${fmt(input)}`, e.span, [
              { message: `this stage outputs ${fmt(input)}`, span: prev.span },
            ]);
            return undefined;
          }
          return [to - from];
        },
      };
    }
    case 'mlp': {
      const nm = named(ctx, e, ['act']);
      if (pos.length < 2) {
        ctx.error('VMM2031', `\`mlp\` takes at least two sizes, \`mlp(IN, HIDDEN..., OUT)\`, found ${pos.length}`, e.span);
        return undefined;
      }
      const sizes = pos.map((p) => size(p, 'a layer size'));
      let act: Activation = 'relu';
      const actArg = nm?.get('act');
      if (actArg) {
        const a = identValue(ctx, actArg, ACTIVATIONS, 'the activation `act:`');
        if (!a) return undefined;
        act = a as Activation;
      }
      if (!nm || sizes.some((s) => s === undefined)) return undefined;
      const ns = sizes as number[];
      const layers: IrLayer[] = [];
      for (let i = 0; i + 1 < ns.length; i++) {
        if (i > 0) layers.push({ kind: 'act', fn: act });
        layers.push({ kind: 'linear', in: ns[i]!, out: ns[i + 1]! });
      }
      return vectorStage(ctx, [ns[0]!, ns[ns.length - 1]!], layers, e, pos[0]!);
    }
    case 'reshape': {
      const nm = named(ctx, e, []);
      if (pos.length < 1) {
        ctx.error('VMM2031', '`reshape` takes the new shape, e.g. `reshape(1, 28, 28)`', e.span);
        return undefined;
      }
      const dims = pos.map((p) => size(p, 'a reshape size'));
      if (!nm || dims.some((d) => d === undefined)) return undefined;
      const out = dims as number[];
      return {
        layers: [{ kind: 'reshape', shape: out }],
        input: [prod(out)],
        apply(input) {
          if (prod(input) !== prod(out)) {
            ctx.error(
              'VMM2035',
              `\`${formatExpr(e)}\` has ${prod(out)} elements, but its input ${fmt(input)} has ${prod(input)}`,
              e.span,
            );
            return undefined;
          }
          return out;
        },
      };
    }
    case 'conv2d':
    case 'deconv2d':
      return convStage(ctx, e, name, scope);
    case 'tap':
    case 'skip':
      return portStage(ctx, e, name, scope);
    case 'flatten':
    case 'relu':
    case 'tanh':
    case 'sigmoid':
    case 'elu':
    case 'softplus':
      if (e.args.length) {
        ctx.error('VMM2031', `\`${name}\` takes no arguments: write \`${name}\``, e.span);
        return undefined;
      }
      return bareStage(ctx, name, e.callee.span, scope);
  }
  const sym = ctx.symbols.get(name);
  if (sym?.kind === 'net') {
    ctx.error('VMM2031', `a net is used in a chain by its name alone: write \`${name}\`, not \`${formatExpr(e)}\``, e.span);
    return undefined;
  }
  return bareStage(ctx, name, e.callee.span, scope);
}

/** A stage from [n] to [m]: linear or mlp. */
function vectorStage(ctx: Ctx, [n, m]: [number, number], layers: IrLayer[], e: Call, inArg: Expr): Stage {
  return {
    layers,
    input: [n],
    apply(input, prev) {
      if (input.length !== 1) {
        ctx.error('VMM2032', `\`${e.callee.name}\` expects a vector [${n}], but ${prev.text} gives ${fmt(input)}: insert \`flatten\` before it`, e.span, [
          { message: `this stage outputs ${fmt(input)}`, span: prev.span },
        ]);
        return undefined;
      }
      if (input[0] !== n) {
        ctx.error('VMM2032', `\`${e.callee.name}\` expects input size ${n}, but ${prev.text} gives ${fmt(input)}`, inArg.span, [
          { message: `this stage outputs ${fmt(input)}`, span: prev.span },
        ]);
        return undefined;
      }
      return [m];
    },
  };
}

function convStage(ctx: Ctx, e: Call, name: 'conv2d' | 'deconv2d', scope: Scope): Stage | undefined {
  const pos = positional(e.args);
  const nm = named(ctx, e, ['kernel', 'stride', 'padding']);
  if (pos.length !== 2) {
    ctx.error('VMM2031', `\`${name}\` takes the channel counts, \`${name}(IN_CH, OUT_CH, kernel: 3, stride: 1, padding: same)\`, found ${pos.length} positional argument${pos.length === 1 ? '' : 's'}`, e.span);
    return undefined;
  }
  const cin = evalConcreteSize(ctx, pos[0]!, scope, 'a channel count');
  const cout = evalConcreteSize(ctx, pos[1]!, scope, 'a channel count');
  if (!nm) return undefined;
  const kArg = nm.get('kernel');
  const sArg = nm.get('stride');
  const pArg = nm.get('padding');
  const kernel = kArg ? evalConcreteSize(ctx, kArg.value, scope, 'the kernel size') : 3;
  const stride = sArg ? evalConcreteSize(ctx, sArg.value, scope, 'the stride') : 1;
  const padding = pArg ? (identValue(ctx, pArg, ['same', 'valid'], 'the padding') as 'same' | 'valid' | undefined) : 'same';
  if (cin === undefined || cout === undefined || kernel === undefined || stride === undefined || padding === undefined) return undefined;
  const layer: IrLayer = { kind: name, inChannels: cin, outChannels: cout, kernel, stride, padding };
  return {
    layers: [layer],
    apply(input, prev) {
      if (input.length !== 3) {
        ctx.error('VMM2034', `\`${name}\` expects an image [C, H, W], but ${prev.text} gives ${fmt(input)}: insert \`reshape(C, H, W)\` before it`, e.span, [
          { message: `this stage outputs ${fmt(input)}`, span: prev.span },
        ]);
        return undefined;
      }
      const [c, h, w] = input as [number, number, number];
      if (c !== cin) {
        ctx.error('VMM2034', `\`${name}\` expects ${cin} input channel${cin === 1 ? '' : 's'}, but ${prev.text} gives ${fmt(input)} with ${c}`, pos[0]!.span, [
          { message: `this stage outputs ${fmt(input)} (channels first)`, span: prev.span },
        ]);
        return undefined;
      }
      const out = (n: number): number | undefined => {
        if (name === 'conv2d') return padding === 'same' ? Math.ceil(n / stride) : n >= kernel ? Math.floor((n - kernel) / stride) + 1 : undefined;
        return padding === 'same' ? n * stride : (n - 1) * stride + kernel;
      };
      const oh = out(h);
      const ow = out(w);
      if (oh === undefined || ow === undefined) {
        ctx.error('VMM2034', `\`${name}\` with kernel ${kernel} and \`padding: valid\` needs an image of at least ${kernel}x${kernel}, found ${fmt(input)}`, e.span, [
          { message: `this stage outputs ${fmt(input)}`, span: prev.span },
        ]);
        return undefined;
      }
      return [cout, oh, ow];
    },
  };
}

/** `tap(name)`: an output of the net here; `skip(name, C)`: an extra input joined here. */
function portStage(ctx: Ctx, e: Call, kind: 'tap' | 'skip', scope: Scope): Stage | undefined {
  const pos = positional(e.args);
  const nm = named(ctx, e, []);
  const want = kind === 'tap' ? 1 : 2;
  const usage = kind === 'tap' ? '`tap(NAME)`: names the value here as an output of the net, read with `net(x).NAME`' : '`skip(NAME, C)`: joins the extra input NAME, C channels at this resolution, given as `net(x, NAME: value)`';
  if (pos.length !== want || pos[0]!.kind !== 'Ident') {
    ctx.error('VMM2031', `\`${kind}\` takes ${kind === 'tap' ? 'a name' : 'a name and a channel count'}: ${usage}`, e.span);
    return undefined;
  }
  const id = pos[0] as { name: string; span: Span };
  if (!nm) return undefined;
  if (kind === 'tap') {
    return { layers: [{ kind: 'tap', name: id.name }], apply: (input) => input, port: { kind, name: id.name, span: id.span } };
  }
  const channels = evalConcreteSize(ctx, pos[1]!, scope, 'a channel count');
  if (channels === undefined) return undefined;
  return {
    layers: [{ kind: 'skip', name: id.name, channels }],
    port: { kind, name: id.name, span: id.span },
    apply(input, prev) {
      if (input.length !== 3 && input.length !== 1) {
        ctx.error('VMM2036', `\`skip\` joins an image [C, H, W] or a vector, but ${prev.text} gives ${fmt(input)}`, e.span, [
          { message: `this stage outputs ${fmt(input)}`, span: prev.span },
        ]);
        return undefined;
      }
      return [input[0]! + channels, ...input.slice(1)];
    },
  };
}

function bareStage(ctx: Ctx, name: string, span: Span, scope: Scope): Stage | undefined {
  if ((ACTIVATIONS as string[]).includes(name)) {
    return { layers: [{ kind: 'act', fn: name as Activation }], apply: (input) => input };
  }
  if (name === 'flatten') return { layers: [{ kind: 'flatten' }], apply: (input) => [prod(input)] };
  if (name === 'linear' || name === 'mlp' || name === 'reshape' || name === 'conv2d' || name === 'deconv2d' || name === 'tap' || name === 'skip' || name === 'slice') {
    const usage: Record<string, string> = {
      linear: 'linear(IN, OUT)',
      slice: 'slice(FROM, TO)',
      mlp: 'mlp(IN, HIDDEN..., OUT)',
      reshape: 'reshape(C, H, W)',
      conv2d: 'conv2d(IN_CH, OUT_CH, kernel: 3)',
      deconv2d: 'deconv2d(IN_CH, OUT_CH, kernel: 3)',
      tap: 'tap(NAME)',
      skip: 'skip(NAME, C)',
    };
    ctx.error('VMM2031', `\`${name}\` needs its sizes: \`${usage[name]}\``, span);
    return undefined;
  }
  const sym = ctx.symbols.get(name);
  if (!sym) {
    const nets = [...ctx.symbols.values()].filter((s) => s.kind === 'net' && s.order < scope.order).map((s) => s.name);
    ctx.error('VMM2030', `unknown layer \`${name}\`${didYouMean(name, [...LAYERS, ...nets])}`, span);
    return undefined;
  }
  if (sym.kind === 'neural') {
    sym.used = true;
    ctx.error(
      'VMM2093',
      `the neural memory \`${name}\` is read outside an episode: its weights are written per episode, so it cannot be a stage of a net; read it in the model or the guide, \`let r = ${name}(q)\``,
      span,
      [{ message: `\`${name}\` is declared here`, span: sym.span }],
    );
    return undefined;
  }
  if (sym.kind !== 'net') {
    ctx.error('VMM2030', `\`${name}\` is not a layer or a net`, span, [{ message: `\`${name}\` is declared here`, span: sym.span }]);
    return undefined;
  }
  const resolved = ctx.resolve(name, span, scope, ['net']);
  const net = resolved?.net;
  if (!net) return undefined;
  if (net.skips?.length) {
    ctx.error(
      'VMM2036',
      `net \`${name}\` takes skip inputs (${net.skips.map((s) => `\`${s.name}\``).join(', ')}), so it cannot be a stage of a chain: apply it in an expression, \`${name}(x, ${net.skips.map((s) => `${s.name}: ...`).join(', ')})\``,
      span,
      [{ message: `\`${name}\` is declared here`, span: net.decl.name.span }],
    );
    return undefined;
  }
  return {
    layers: [{ kind: 'call', net: net.name }],
    input: net.inShape,
    apply(input, prev) {
      if (fmt(input) !== fmt(net.inShape)) {
        ctx.error('VMM2032', `net \`${name}\` expects input ${fmt(net.inShape)}, but ${prev.text} gives ${fmt(input)}`, span, [
          { message: `\`${name}\` is declared here with input ${fmt(net.inShape)}`, span: net.decl.name.span },
        ]);
        return undefined;
      }
      return net.outShape;
    },
  };
}
