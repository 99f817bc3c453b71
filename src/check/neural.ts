/**
 * Neural long-term memories (Titans: Behrouz, Zhong & Mirrokni 2025, arXiv:2501.00663):
 *
 *     neural nm = mlp(H, 64, H) writes mem(key: kproj, value: vproj, gates: gate, chunk: 1, lr: 1)
 *
 * declares an MLP `nm` whose weights are state of the episode: they start from learned weights and
 * are written with the entries `e` of the memory `mem` by gradient steps on
 * `||nm(kproj(e)) - vproj(e)||^2`, with gates `gate(e) : real[3]` (theta, eta, alpha after a
 * sigmoid). `nm(q)` in the model or guide reads it (a forward pass, no update).
 *
 * Checks: the net is an MLP (linear layers with one activation between them) (VMM2092); `mem` is a
 * declared `memory` (VMM2090); `kproj : entry -> [In(nm)]`, `vproj : entry -> [Out(nm)]`,
 * `gate : entry -> [3]` and a read's argument ends in `[In(nm)]` (VMM2091); the write options are
 * known and well formed (VMM2092); a read happens only where an episode exists, in the model or the
 * guide, not in a net, const or param (VMM2093, also reported from nets.ts).
 */
import type { Arg, Expr, NeuralDecl, Span } from '../ast/types.ts';
import type { IrLayer, IrNeural, IrParam, ValueType } from '../ir/types.ts';
import { evalConst } from './consts.ts';
import type { Ctx, Scope, Sym } from './context.ts';
import { formatExpr } from './format.ts';
import { checkNet } from './nets.ts';
import { formatShape, formatType, shapeEq } from '../ir/size.ts';
import type { CheckedNeural } from './types.ts';

const OPTIONS = ['key', 'value', 'gates', 'chunk', 'lr', 'momentum', 'forget', 'bias'] as const;
const fmt = (s: number[]) => `[${s.join(', ')}]`;

/** The param names of a neural memory's initial weights (not writable by users: they contain a dot). */
export function neuralParamNames(name: string, layers: number): { weights: string[]; biases: string[] } {
  return {
    weights: Array.from({ length: layers }, (_, l) => `${name}.w${l}`),
    biases: Array.from({ length: layers }, (_, l) => `${name}.b${l}`),
  };
}

/** `linear (act linear)*` with one activation kind: the widths and the activation, or undefined. */
function mlpShape(layers: IrLayer[]): { widths: number[]; activation: IrNeural['activation'] } | undefined {
  const widths: number[] = [];
  let activation: IrNeural['activation'] | undefined;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    if (i % 2 === 0) {
      if (l.kind !== 'linear') return undefined;
      if (widths.length && widths[widths.length - 1] !== l.in) return undefined;
      if (!widths.length) widths.push(l.in);
      widths.push(l.out);
    } else {
      if (l.kind !== 'act' || l.fn === 'elu') return undefined;
      if (activation && activation !== l.fn) return undefined;
      activation = l.fn as IrNeural['activation'];
    }
  }
  if (layers.length % 2 === 0) return undefined;
  return { widths, activation: activation ?? 'identity' };
}

/** Checks a `neural` declaration; its initial weights are appended to `params`. */
export function checkNeural(ctx: Ctx, decl: NeuralDecl, scope: Scope, params: IrParam[]): CheckedNeural | undefined {
  const name = decl.name.name;
  const net = checkNet(ctx, { kind: 'Net', name: decl.name, stages: decl.stages, span: decl.span }, scope);
  const shape = net && mlpShape(net.layers);
  if (net && !shape) {
    const stages = decl.stages;
    ctx.error(
      'VMM2092',
      `the net of the neural memory \`${name}\` must be an MLP, \`mlp(IN, ..., OUT)\` or linear layers with one activation (relu, tanh, sigmoid or softplus) between them: its inner gradient is written in closed form`,
      { start: stages[0]!.span.start, end: stages[stages.length - 1]!.span.end },
    );
  }

  // The memory written.
  const write = decl.write;
  const memSym = ctx.resolve(write.callee.name, write.callee.span, scope, ['memory']);
  let entry: number[] | undefined;
  if (memSym && memSym.kind !== 'memory') {
    ctx.error('VMM2090', `a neural memory writes the entries of a declared \`memory\`, but \`${memSym.name}\` is ${kindWord(memSym)}`, write.callee.span, [
      { message: `\`${memSym.name}\` is declared here`, span: memSym.span },
    ]);
  } else if (memSym?.type) {
    const rest = memSym.type.shape.slice(1);
    if (rest.every((s) => Object.values(s.terms).every((c) => c === 0))) entry = rest.map((s) => s.c);
    else {
      ctx.error('VMM2091', `the entries of \`${memSym.name}\` have the symbolic shape ${formatShape(rest)}: a neural memory needs entries of a fixed shape`, write.callee.span);
    }
  }

  // Options.
  const opts = new Map<string, Arg>();
  let okOpts = true;
  for (const a of write.args) {
    if (!a.name) {
      ctx.error('VMM2092', `the write rule takes named options only (\`key: NET, value: NET, gates: NET, chunk: N, lr: X\`), found \`${formatExpr(a.value)}\``, a.value.span);
      okOpts = false;
    } else if (!(OPTIONS as readonly string[]).includes(a.name.name)) {
      ctx.error('VMM2092', `unknown write option \`${a.name.name}\`: the options are ${OPTIONS.map((o) => `\`${o}\``).join(', ')}`, a.name.span);
      okOpts = false;
    } else if (opts.has(a.name.name)) {
      ctx.error('VMM2092', `the write option \`${a.name.name}\` is given twice`, a.name.span);
      okOpts = false;
    } else opts.set(a.name.name, a);
  }
  for (const req of ['key', 'value', 'gates']) {
    if (!opts.has(req)) {
      ctx.error('VMM2092', `the write rule of \`${name}\` needs \`${req}: NET\` (key: entry -> In(${name}), value: entry -> Out(${name}), gates: entry -> [3])`, write.span);
      okOpts = false;
    }
  }
  const widthIn = shape?.widths[0];
  const widthOut = shape?.widths[shape.widths.length - 1];
  const proj = (opt: 'key' | 'value' | 'gates', out: number | undefined, what: string): string | undefined => {
    const a = opts.get(opt);
    if (!a) return undefined;
    if (a.value.kind !== 'Ident') {
      ctx.error('VMM2092', `\`${opt}:\` names a net (declared with \`net\`), found \`${formatExpr(a.value)}\``, a.value.span);
      return undefined;
    }
    const sym = ctx.resolve(a.value.name, a.value.span, scope, ['net']);
    if (!sym) return undefined;
    if (sym.kind !== 'net') {
      ctx.error('VMM2092', `\`${opt}:\` names a net, but \`${sym.name}\` is ${kindWord(sym)}`, a.value.span, [{ message: `\`${sym.name}\` is declared here`, span: sym.span }]);
      return undefined;
    }
    const n = sym.net;
    if (!n) return undefined;
    let ok = true;
    if (entry && fmt(n.inShape) !== fmt(entry)) {
      ctx.error('VMM2091', `the ${opt} net \`${sym.name}\` takes ${fmt(n.inShape)}, but the entries of \`${write.callee.name}\` are ${fmt(entry)}`, a.value.span, [
        { message: `\`${sym.name}\` is declared here`, span: sym.span },
      ]);
      ok = false;
    }
    if (out !== undefined && fmt(n.outShape) !== fmt([out])) {
      ctx.error('VMM2091', `the ${opt} net \`${sym.name}\` gives ${fmt(n.outShape)}, but ${what} is [${out}]`, a.value.span, [
        { message: `\`${name}\` is declared here with the net ${fmt([widthIn ?? 0])} -> ${fmt([widthOut ?? 0])}`, span: decl.name.span },
      ]);
      ok = false;
    }
    return ok ? sym.name : undefined;
  };
  const key = proj('key', widthIn, `the input of \`${name}\``);
  const value = proj('value', widthOut, `the output of \`${name}\``);
  const gates = proj('gates', 3, 'a gate vector (theta, eta, alpha)');
  const number = (opt: string, test: (v: number) => boolean, want: string, dflt: number): number | undefined => {
    const a = opts.get(opt);
    if (!a) return dflt;
    const v = evalConst(ctx, a.value, scope, `the write option \`${opt}\``);
    if (v === undefined) return undefined;
    if (!test(v)) {
      ctx.error('VMM2092', `the write option \`${opt}\` must be ${want}, found ${formatExpr(a.value)}`, a.value.span);
      return undefined;
    }
    return v;
  };
  const chunk = number('chunk', (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1 (entries written per parallel step)', 1);
  const lr = number('lr', (v) => v > 0 && Number.isFinite(v), 'a positive number (the largest inner step size)', 0.1);
  // The inner steps accumulate in the momentum S with factor eta, so the effective step size is
  // up to theta / (1 - eta): an eta gate that saturates at 1 (the outer optimizer gets there in a
  // few steps) makes the writes diverge. `momentum: m` caps eta at m; 0: no momentum.
  const momentum = number('momentum', (v) => v >= 0 && v <= 1, 'a number in [0, 1] (the largest momentum gate eta; 0: none)', 1);
  // `forget: f` caps the forgetting gate alpha at f; 0: nothing is forgotten.
  const forget = number('forget', (v) => v >= 0 && v <= 1, 'a number in [0, 1] (the largest forgetting gate alpha; 0: none)', 1);
  // `bias: 0`: the biases are not written (learned, fixed within an episode): with a linear net,
  // momentum: 0 and forget: 0 the write is the delta rule W += 2 theta (v - W k) k^T.
  const bias = number('bias', (v) => v === 0 || v === 1, '0 or 1 (whether the write updates the biases)', 1);
  if (!shape || !memSym || memSym.kind !== 'memory' || !entry || !okOpts || !key || !value || !gates || chunk === undefined || lr === undefined || momentum === undefined || forget === undefined || bias === undefined) return undefined;

  const L = shape.widths.length - 1;
  const names = neuralParamNames(name, L);
  for (let l = 0; l < L; l++) {
    const [a, b] = [shape.widths[l]!, shape.widths[l + 1]!];
    params.push({ name: names.weights[l]!, type: { elem: 'real', shape: [{ c: a, terms: {} }, { c: b, terms: {} }] }, init: { kind: 'normal', std: 1 / Math.sqrt(a) } });
    params.push({ name: names.biases[l]!, type: { elem: 'real', shape: [{ c: b, terms: {} }] }, init: { kind: 'zeros' } });
  }
  const optional = { ...(forget !== 1 ? { forget } : {}), ...(bias === 0 ? { writeBias: false } : {}) };
  return { name, memory: memSym.name, widths: shape.widths, activation: shape.activation, key, value, gates, chunk, lr, momentum, ...optional, ...names, decl };
}

function kindWord(s: Sym): string {
  const words: Record<string, string> = { const: 'a const', size: 'a size symbol', data: 'data', param: 'a param', net: 'a net', neural: 'a neural memory', let: 'a let binding', site: 'a random site', memory: 'a memory' };
  return words[s.kind] ?? s.kind;
}

/**
 * The type of a read `nm(arg)` with `arg : argType`, or undefined after reporting: only in the
 * model or the guide (VMM2093), with an argument ending in `[In(nm)]` (VMM2091), mapping over
 * the leading axes as a net does.
 */
export function neuralReadType(ctx: Ctx, sym: Sym, callSpan: Span, argExpr: Expr, argType: ValueType, scope: Scope): ValueType | undefined {
  const n = sym.neural;
  if (scope.where !== 'model' && scope.where !== 'guide') {
    ctx.error('VMM2093', `the neural memory \`${sym.name}\` is read outside an episode: its weights are written per episode, so read it in the model or the guide`, callSpan, [
      { message: `\`${sym.name}\` is declared here`, span: sym.span },
    ]);
    return undefined;
  }
  if (!n) return undefined;
  if (scope.where === 'model' && scope.recordReads) ctx.modelReads.add(n.memory);
  const shape = argType.shape;
  const want = [{ c: n.widths[0]!, terms: {} }];
  const trail = shape.slice(Math.max(0, shape.length - 1));
  if (!shapeEq(trail, want)) {
    ctx.error('VMM2091', `the neural memory \`${sym.name}\` reads keys of width ${n.widths[0]}, found \`${formatExpr(argExpr)}\` : ${formatType(argType)}`, argExpr.span, [
      { message: `\`${sym.name}\` is declared here with input [${n.widths[0]}]`, span: sym.span },
    ]);
    return undefined;
  }
  return { elem: 'real', shape: [...shape.slice(0, -1), { c: n.widths[n.widths.length - 1]!, terms: {} }] };
}
