/**
 * Types and shapes of expressions. Each expression is checked into an IR expression that carries
 * its per-example type; `undefined` is the error type: the error is already reported and every
 * enclosing expression stays silent, so one mistake gives one diagnostic.
 */
import type { Arg, Call, Expr, Ident, IndexExpr, MemberExpr, Span } from '../ast/types.ts';
import type { IrExpr, IrSkipArg, Size, ValueType } from '../ir/types.ts';
import { BUILTINS, DISTRIBUTIONS, KIND_WORD, LAYERS, type Ctx, type Scope } from './context.ts';
import { formatExpr } from './format.ts';
import { neuralReadType } from './neural.ts';
import { didYouMean } from './suggest.ts';
import { builtin, type BuiltinSpec } from '../ir/builtins.ts';
import { formatShape, formatSize, formatType, shapeEq, sizeEq } from '../ir/size.ts';

export interface Typed {
  type: ValueType;
  ir: IrExpr;
  /** Set when the value is a table of entries (a memory, a param, a `stack` of them, or a let bound to one): the memory it names. */
  table?: string;
}

const SCALAR: ValueType = { elem: 'real', shape: [] };

export function isNumeric(t: ValueType): boolean {
  return t.elem !== 'cat';
}

/** "`x : binary[784]`" for a name, else "`h(x)` : real[128]" (short expressions) or just the type. */
export function describe(e: Expr, t: ValueType): string {
  const text = formatExpr(e);
  if (e.kind === 'Ident') return `\`${text} : ${formatType(t)}\``;
  if (text.length <= 32) return `\`${text}\` : ${formatType(t)}`;
  return formatType(t);
}

export function checkExpr(ctx: Ctx, e: Expr, scope: Scope): Typed | undefined {
  const r = inner(ctx, e, scope);
  if (r) ctx.exprTypes.set(e, r.type);
  return r;
}

function inner(ctx: Ctx, e: Expr, scope: Scope): Typed | undefined {
  switch (e.kind) {
    case 'Number':
      return { type: SCALAR, ir: { op: 'const', value: e.value, type: SCALAR } };
    case 'Ident':
      return checkIdent(ctx, e, scope);
    case 'Call':
      return checkCall(ctx, e, scope);
    case 'Index':
      return checkIndex(ctx, e, scope);
    case 'Member':
      return checkMember(ctx, e, scope);
    case 'Unary': {
      const a = checkExpr(ctx, e.operand, scope);
      if (!a || !numeric(ctx, e.operand, a, '`-`')) return undefined;
      const type: ValueType = { elem: 'real', shape: a.type.shape };
      return { type, ir: { op: 'unary', fn: 'neg', arg: a.ir, type } };
    }
    case 'Binary':
      return checkBinary(ctx, e, scope);
  }
}

export function checkIdent(ctx: Ctx, e: Ident, scope: Scope): Typed | undefined {
  const sym = ctx.resolve(e.name, e.span, scope, ['const', 'data', 'memory', 'param', 'let', 'site']);
  if (!sym) return undefined;
  switch (sym.kind) {
    case 'const':
      if (sym.value === undefined) return undefined;
      return { type: SCALAR, ir: { op: 'const', value: sym.value, type: SCALAR } };
    case 'size':
      ctx.error('VMM2005', `the size symbol \`${e.name}\` is not a value: size symbols appear in types and in \`Categorical(${e.name})\``, e.span, [
        { message: `\`${e.name}\` is declared here`, span: sym.span },
      ]);
      return undefined;
    case 'neural':
      ctx.error('VMM2005', `\`${e.name}\` is a neural memory, not a value: read it with a key, \`${e.name}(q)\``, e.span, [
        { message: `\`${e.name}\` is declared here`, span: sym.span },
      ]);
      return undefined;
    case 'net':
      ctx.error('VMM2005', `\`${e.name}\` is a net, not a value: apply it to an argument, \`${e.name}(...)\``, e.span, [
        { message: `\`${e.name}\` is declared here`, span: sym.span },
      ]);
      return undefined;
    case 'data':
    case 'memory':
    case 'param': {
      if (!sym.type) return undefined;
      if (sym.kind === 'memory' && scope.recordReads && scope.where === 'model') ctx.modelReads.add(sym.name);
      if (sym.kind === 'data' && scope.recordReads && scope.where === 'model') ctx.modelDataReads.push({ name: sym.name, span: e.span, order: scope.order });
      const table = sym.kind !== 'data' && sym.type.shape.length >= 1 ? sym.name : undefined;
      return { type: sym.type, ir: { op: 'ref', name: sym.name, ref: sym.kind, type: sym.type }, ...(table ? { table } : {}) };
    }
    case 'let':
    case 'site': {
      if (!sym.type) return undefined;
      // A latent with entries (`latent sem : real[S, H]`: semantic slots) is a table an address can range over.
      const table = sym.table ?? (sym.kind === 'site' && sym.type.shape.length >= 2 ? sym.name : undefined);
      return {
        type: sym.type,
        ir: { op: 'ref', name: sym.name, ref: sym.kind, type: sym.type },
        ...(table ? { table } : {}),
      };
    }
  }
}

function numeric(ctx: Ctx, e: Expr, t: Typed, where: string): boolean {
  if (isNumeric(t.type)) return true;
  ctx.error('VMM2021', `${where} needs numbers, but ${describe(e, t.type)} is categorical: a \`cat\` value can only index a memory or be observed`, e.span);
  return false;
}

function checkArgs(ctx: Ctx, call: Call, scope: Scope): (Typed | undefined)[] {
  return call.args.map((a) => checkExpr(ctx, a.value, scope));
}

function noNamedArgs(ctx: Ctx, call: Call, what: string): boolean {
  const n = call.args.find((a) => a.name);
  if (!n) return true;
  ctx.error('VMM2024', `${what} takes no named arguments; remove \`${n.name!.name}:\``, n.name!.span);
  return false;
}

function arity(ctx: Ctx, call: Call, min: number, max: number, usage: string): boolean {
  const n = call.args.length;
  if (n >= min && n <= max) return true;
  const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
  ctx.error('VMM2024', `\`${call.callee.name}\` takes ${want} argument${want === '1' ? '' : 's'} (\`${usage}\`), found ${n}`, call.span);
  return false;
}

function checkCall(ctx: Ctx, e: Call, scope: Scope): Typed | undefined {
  const name = e.callee.name;
  const row = builtin(name);
  if (row) return checkBuiltin(ctx, e, scope, row);
  if ((DISTRIBUTIONS as readonly string[]).includes(name)) {
    ctx.error('VMM2006', `the distribution \`${name}\` can only appear after \`~\` in a site, not inside an expression`, e.callee.span);
    checkArgs(ctx, e, scope);
    return undefined;
  }
  if ((LAYERS as readonly string[]).includes(name)) {
    ctx.error('VMM2006', `\`${name}\` is a layer, not a function: declare a net (\`net f = ${name}(...)\`) and apply it (\`f(x)\`)`, e.callee.span);
    return undefined;
  }
  const sym = ctx.resolve(name, e.callee.span, scope, ['net'], BUILTINS);
  if (!sym) {
    checkArgs(ctx, e, scope);
    return undefined;
  }
  if (sym.kind === 'neural') return checkNeuralRead(ctx, e, scope, sym);
  if (sym.kind !== 'net') {
    ctx.error('VMM2006', `\`${name}\` is ${KIND_WORD[sym.kind]}, not a net: only nets and builtins (${BUILTINS.join(', ')}) can be applied`, e.callee.span, [
      { message: `\`${name}\` is declared here`, span: sym.span },
    ]);
    checkArgs(ctx, e, scope);
    return undefined;
  }
  const skipPorts = sym.net?.skips ?? [];
  const okNamed = skipPorts.length ? true : noNamedArgs(ctx, e, `net \`${name}\``);
  const positionalArgs = skipPorts.length ? e.args.filter((a) => !a.name) : e.args;
  if (positionalArgs.length !== 1 && skipPorts.length) {
    const usage = `\`${name}(x, ${skipPorts.map((p) => `${p.name}: ...`).join(', ')})\``;
    ctx.error('VMM2024', `net \`${name}\` takes one input and its skip inputs by name, ${usage}; found ${positionalArgs.length} unnamed argument${positionalArgs.length === 1 ? '' : 's'}`, e.span);
    checkArgs(ctx, e, scope);
    return undefined;
  }
  if (positionalArgs.length !== 1) {
    ctx.error('VMM2024', `net \`${name}\` takes one argument, found ${e.args.length}${e.args.length > 1 ? ': to feed several values, join them with `concat(...)`' : ''}`, e.span);
    checkArgs(ctx, e, scope);
    return undefined;
  }
  const argExpr = positionalArgs[0]!.value;
  const arg = checkExpr(ctx, argExpr, scope);
  const net = sym.net;
  if (!arg || !net || !okNamed) {
    if (skipPorts.length) checkArgs(ctx, { ...e, args: e.args.filter((a) => a.name) }, scope);
    return undefined;
  }
  if (!numeric(ctx, argExpr, arg, `net \`${name}\``)) return undefined;
  const inRank = net.inShape.length;
  const shape = arg.type.shape;
  const lead = shape.slice(0, Math.max(0, shape.length - inRank));
  const trail = shape.slice(lead.length);
  const want = net.inShape.map((n) => ({ c: n, terms: {} }));
  if (!shapeEq(trail, want)) {
    const mapped = inRank ? `[..., ${net.inShape.join(', ')}]` : '[]';
    ctx.error(
      'VMM2022',
      `net \`${name}\` expects input ${formatShape(want)} (or ${mapped}, mapping over leading axes), found ${describe(argExpr, arg.type)}`,
      argExpr.span,
      [{ message: `\`${name}\` declared here with input ${formatShape(want)}`, span: net.decl.name.span }],
    );
    return undefined;
  }
  const type: ValueType = { elem: 'real', shape: [...lead, ...net.outShape.map((n) => ({ c: n, terms: {} }))] };
  if (!skipPorts.length) return { type, ir: { op: 'net', net: name, arg: arg.ir, type } };
  const skips = checkSkipArgs(ctx, e, net, lead, argExpr, scope);
  return skips && { type, ir: { op: 'net', net: name, arg: arg.ir, type, skips } };
}

type CheckedNetSym = NonNullable<NonNullable<ReturnType<Ctx['resolve']>>['net']>;

/**
 * The skip inputs of `dec(h, s7: v7, s14: v14)`, in the net's order: each skip stage of the net
 * given once by name, with the shape the stage joins (`[C, H, W]`), mapped over the same leading
 * axes as the net's input.
 */
function checkSkipArgs(ctx: Ctx, e: Call, net: CheckedNetSym, lead: Size[], argExpr: Expr, scope: Scope): IrSkipArg[] | undefined {
  const ports = net.skips ?? [];
  const name = net.name;
  const given = new Map<string, Arg>();
  let ok = true;
  for (const a of e.args) {
    if (!a.name) continue;
    const n = a.name.name;
    const port = ports.find((p) => p.name === n);
    if (!port) {
      ctx.error('VMM2037', `net \`${name}\` has no skip input \`${n}\` (it takes ${ports.map((p) => `\`${p.name}:\``).join(', ')})${didYouMean(n, ports.map((p) => p.name))}`, a.name.span, [
        { message: `\`${name}\` is declared here`, span: net.decl.name.span },
      ]);
      ok = false;
    } else if (given.has(n)) {
      ctx.error('VMM2037', `skip input \`${n}\` is given twice`, a.span, [{ message: 'first given here', span: given.get(n)!.span }]);
      ok = false;
    } else given.set(n, a);
  }
  const out: IrSkipArg[] = [];
  for (const port of ports) {
    const a = given.get(port.name);
    const want: Size[] = [...lead, ...port.shape.map((n) => ({ c: n, terms: {} }))];
    if (!a) {
      ctx.error('VMM2037', `net \`${name}\` needs its skip input \`${port.name}\` : real${formatShape(want)}: write \`${name}(..., ${port.name}: ...)\``, e.span, [
        { message: `\`${port.name}\` is joined here, ${port.shape[0]} channel${port.shape[0] === 1 ? '' : 's'} at ${formatShape(port.shape.map((n) => ({ c: n, terms: {} })))}`, span: port.span },
      ]);
      ok = false;
      continue;
    }
    const v = checkExpr(ctx, a.value, scope);
    if (!v) {
      ok = false;
      continue;
    }
    if (!numeric(ctx, a.value, v, `skip input \`${port.name}\``)) {
      ok = false;
      continue;
    }
    if (!shapeEq(v.type.shape, want)) {
      const mapped = lead.length ? ` (the leading axes ${formatShape(lead)} of its input \`${formatExpr(argExpr)}\`, then the skip's shape)` : '';
      ctx.error('VMM2037', `skip input \`${port.name}\` of net \`${name}\` expects ${formatShape(want)}${mapped}, found ${describe(a.value, v.type)}`, a.value.span, [
        { message: `\`${port.name}\` is joined here, ${port.shape[0]} channel${port.shape[0] === 1 ? '' : 's'} at ${formatShape(port.shape.map((n) => ({ c: n, terms: {} })))}`, span: port.span },
      ]);
      ok = false;
      continue;
    }
    out.push({ name: port.name, arg: v.ir });
  }
  return ok ? out : undefined;
}

/**
 * `g(x).s14`: the output `s14` (a `tap(s14)` stage) of the net application `g(x)`, mapped over
 * the same leading axes as `g(x)`.
 */
function checkMember(ctx: Ctx, e: MemberExpr, scope: Scope): Typed | undefined {
  const member = e.member.name;
  const t = e.target;
  const sym = t.kind === 'Call' || t.kind === 'Ident' ? ctx.symbols.get(t.kind === 'Call' ? t.callee.name : t.name) : undefined;
  if (t.kind === 'Ident' && sym?.kind === 'net') {
    ctx.error('VMM2037', `\`${formatExpr(e)}\` names an output of net \`${t.name}\` without applying it: write \`${t.name}(x).${member}\``, e.span);
    return undefined;
  }
  if (t.kind !== 'Call' || sym?.kind !== 'net') {
    const inner = checkExpr(ctx, t, scope);
    if (inner) {
      const hint = inner.ir.op === 'net' || t.kind !== 'Ident' ? '' : ': read it where the net is applied, `g(x).NAME`';
      ctx.error('VMM2037', `\`.${member}\` reads an output of a net application (\`g(x).${member}\`), but \`${formatExpr(t)}\` is not one${hint}`, e.member.span);
    }
    return undefined;
  }
  const call = checkExpr(ctx, t, scope);
  const net = sym.net;
  if (!call || !net || call.ir.op !== 'net') return undefined;
  const tap = net.taps?.find((p) => p.name === member);
  if (!tap) {
    const taps = net.taps ?? [];
    const has = taps.length ? `its outputs are ${taps.map((p) => `\`.${p.name}\``).join(', ')}` : 'it has none: add `tap(NAME)` after the stage whose value you want';
    ctx.error('VMM2037', `net \`${net.name}\` has no output \`${member}\`; ${has}${didYouMean(member, taps.map((p) => p.name))}`, e.member.span, [
      { message: `\`${net.name}\` is declared here`, span: net.decl.name.span },
    ]);
    return undefined;
  }
  const lead = call.type.shape.slice(0, call.type.shape.length - net.outShape.length);
  const type: ValueType = { elem: 'real', shape: [...lead, ...tap.shape.map((n) => ({ c: n, terms: {} }))] };
  return { type, ir: { ...call.ir, tap: member, type } };
}

/** `nm(q)`: a read of a neural memory (src/check/neural.ts). */
function checkNeuralRead(ctx: Ctx, e: Call, scope: Scope, sym: NonNullable<ReturnType<Ctx['resolve']>>): Typed | undefined {
  const okNamed = noNamedArgs(ctx, e, `the neural memory \`${sym.name}\``);
  if (e.args.length !== 1) {
    ctx.error('VMM2024', `the neural memory \`${sym.name}\` is read with one key, \`${sym.name}(q)\`, found ${e.args.length} arguments`, e.span);
    checkArgs(ctx, e, scope);
    return undefined;
  }
  const argExpr = e.args[0]!.value;
  const arg = checkExpr(ctx, argExpr, scope);
  if (!arg || !okNamed || !numeric(ctx, argExpr, arg, `the neural memory \`${sym.name}\``)) return undefined;
  const type = neuralReadType(ctx, sym, e.span, argExpr, arg.type, scope);
  if (!type || !sym.neural) return undefined;
  const { decl: _decl, ...neural } = sym.neural;
  return { type, ir: { op: 'neural_read', neural, arg: arg.ir, type } };
}

/**
 * `f(args)` for a built-in `f`: its row of the signature table (src/ir/builtins.ts) says the
 * arity, which arguments need an axis and the result's type; here the table's complaints get
 * their places in the source.
 */
function checkBuiltin(ctx: Ctx, e: Call, scope: Scope, row: BuiltinSpec): Typed | undefined {
  const name = row.name;
  const okNamed = noNamedArgs(ctx, e, `\`${name}\``);
  const args = checkArgs(ctx, e, scope);
  const exprs = e.args.map((a) => a.value);
  const okArity = arity(ctx, e, row.arity.min, row.arity.max, row.usage);
  if (!okNamed || !okArity || args.some((a) => !a)) return undefined;
  const ts = args as Typed[];
  for (let i = 0; i < ts.length; i++) if (!numeric(ctx, exprs[i]!, ts[i]!, `\`${name}\``)) return undefined;
  if (row.needsAxis) {
    const scalar = ts.findIndex((t) => t.type.shape.length === 0);
    if (scalar >= 0) {
      ctx.error('VMM2025', `\`${name}\` ${row.needsAxis}, but ${describe(exprs[scalar]!, ts[scalar]!.type)} is a scalar`, exprs[scalar]!.span);
      return undefined;
    }
  }
  const type = row.result(ts.map((t, i) => ({ type: t.type, text: describe(exprs[i]!, t.type) })));
  if ('code' in type) {
    const notes = type.note ? [{ message: type.note.message, span: exprs[type.note.at]!.span }] : [];
    ctx.error(type.code, type.message, type.at === undefined ? e.span : exprs[type.at]!.span, notes);
    return undefined;
  }
  const ir: IrExpr = { op: 'builtin', fn: name, args: ts.map((t) => t.ir), type };
  if (!row.joinsTables) return { type, ir };
  // A stack of tables is a table (learned entries added to a memory); it is named after its first memory.
  const tables = ts.map((t) => t.table).filter((t): t is string => t !== undefined);
  const mem = tables.find((t) => ctx.symbols.get(t)?.kind === 'memory') ?? tables[0];
  return mem ? { type, ir, table: mem } : { type, ir };
}

function checkIndex(ctx: Ctx, e: IndexExpr, scope: Scope): Typed | undefined {
  const target = checkExpr(ctx, e.target, scope);
  const index = checkExpr(ctx, e.index, scope);
  if (!target || !index) return undefined;
  const tt = target.type;
  if (tt.shape.length === 0) {
    ctx.error('VMM2025', `cannot index ${describe(e.target, tt)}: only values with at least one axis have entries`, e.target.span);
    return undefined;
  }
  const rows = tt.shape[0]!;
  const expected = `cat(${formatSize(rows)})`;
  const declNote = indexDeclNote(ctx, e.index, index.type);
  if (index.type.elem !== 'cat' || index.type.shape.length !== 0 || !index.type.card) {
    ctx.error(
      'VMM2023',
      `the index of \`${formatExpr(e.target)}[...]\` must be a categorical value ${expected} (e.g. an address), found ${describe(e.index, index.type)}`,
      e.index.span,
      declNote,
    );
    return undefined;
  }
  if (!sizeEq(index.type.card, rows)) {
    ctx.error(
      'VMM2023',
      `${describe(e.index, index.type)} cannot index ${describe(e.target, tt)}: expected an index of type ${expected}, found ${formatType(index.type)}`,
      e.index.span,
      declNote,
    );
    return undefined;
  }
  const type: ValueType = { elem: tt.elem, shape: tt.shape.slice(1), ...(tt.card ? { card: tt.card } : {}) };
  return { type, ir: { op: 'index', target: target.ir, index: index.ir, type } };
}

function indexDeclNote(ctx: Ctx, e: Expr, t: ValueType): { message: string; span: Span }[] {
  if (e.kind !== 'Ident') return [];
  const sym = ctx.symbols.get(e.name);
  if (!sym) return [];
  return [{ message: `\`${e.name}\` is declared here with type ${formatType(t)}`, span: sym.span }];
}

function checkBinary(ctx: Ctx, e: Expr & { kind: 'Binary' }, scope: Scope): Typed | undefined {
  const l = checkExpr(ctx, e.left, scope);
  const r = checkExpr(ctx, e.right, scope);
  if (!l || !r) return undefined;
  if (!numeric(ctx, e.left, l, `\`${e.op}\``) || !numeric(ctx, e.right, r, `\`${e.op}\``)) return undefined;
  const [a, b] = [l.type.shape, r.type.shape];
  if (e.op === '@') {
    for (const [x, t] of [
      [e.left, l.type],
      [e.right, r.type],
    ] as const) {
      if (t.shape.length < 1 || t.shape.length > 2) {
        ctx.error('VMM2025', `\`@\` multiplies vectors and matrices (one or two axes), but ${describe(x, t)} has ${t.shape.length}`, x.span);
        return undefined;
      }
    }
    const inner = a[a.length - 1]!;
    if (!sizeEq(inner, b[0]!)) {
      ctx.error(
        'VMM2020',
        `\`@\` contracts the last axis of the left side with the first axis of the right side, but ${formatSize(inner)} != ${formatSize(b[0]!)}: found ${formatType(l.type)} @ ${formatType(r.type)}`,
        e.span,
      );
      return undefined;
    }
    const type: ValueType = { elem: 'real', shape: [...a.slice(0, -1), ...b.slice(1)] };
    return { type, ir: { op: 'matmul', left: l.ir, right: r.ir, type } };
  }
  // Equal shapes, or one operand's shape a trailing part of the other's (a scalar; a vector added to
  // every row of a table, `slots + target`), broadcast from the right as in NumPy.
  const suffix = (short: typeof a, long: typeof a) => short.length <= long.length && shapeEq(short, long.slice(long.length - short.length));
  if (!(suffix(a, b) || suffix(b, a))) {
    ctx.error(
      'VMM2020',
      `\`${e.op}\` needs operands of the same shape, or one whose shape ends the other's (a scalar, a row added to every row): found ${formatType(l.type)} ${e.op} ${formatType(r.type)}`,
      e.span,
    );
    return undefined;
  }
  const fn = ({ '+': 'add', '-': 'sub', '*': 'mul', '/': 'div' } as const)[e.op];
  const type: ValueType = { elem: 'real', shape: a.length >= b.length ? a : b };
  return { type, ir: { op: 'binary', fn, left: l.ir, right: r.ir, type } };
}
