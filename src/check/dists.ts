/**
 * Distributions after `~`: parameter names, parameter types and shapes, and the support (the type
 * of the values the distribution gives). `matchSupport` compares a support with the type a site
 * needs (a declared type, the observed data's type, the model's type for a guide site) and blames
 * the parameter that decides the shape.
 */
import type { Call, Expr, Span } from '../ast/types.ts';
import type { DiagnosticNote } from '../diagnostics/diagnostic.ts';
import type { ValueType } from '../ir/types.ts';
import { DISTRIBUTIONS, type Ctx, type Scope } from './context.ts';
import { evalSize } from './consts.ts';
import { checkExpr, describe, isNumeric, type Typed } from './exprs.ts';
import { formatCall, formatExpr } from './format.ts';
import { formatSize, formatType, halveSize, isConcrete, scaleSize, shapeEq, typeEq } from './size.ts';
import { didYouMean } from './suggest.ts';
import type { CheckedDist } from './types.ts';

export interface DistResult {
  dist: CheckedDist;
  support: ValueType;
  discrete: boolean;
  /** The parameter that decides the support's shape (blamed on a mismatch). */
  param: { expr: Expr; type: ValueType; name: string };
  /** Every parameter is a scalar: the values broadcast to any declared shape. */
  broadcast: boolean;
  /** For `Categorical(mem)`: the memory (or param) whose entries it ranges over. */
  table?: string;
}

const USAGE: Record<string, string> = {
  Categorical: '`Categorical(mem)`, `Categorical(N)` or `Categorical(logits: E)`',
  Bernoulli: '`Bernoulli(logits: E)` or `Bernoulli(probs: E)`',
  Normal: '`Normal(E)` (E holds mean and scale halves), `Normal(loc, scale)` or `Normal(loc: E1, scale: E2)`',
};

export function checkDist(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  const name = call.callee.name;
  switch (name) {
    case 'Categorical':
      return categorical(ctx, call, scope);
    case 'Bernoulli':
      return bernoulli(ctx, call, scope);
    case 'Normal':
      return normal(ctx, call, scope);
  }
  ctx.error('VMM2040', `unknown distribution \`${name}\`${didYouMean(name, DISTRIBUTIONS)} (the distributions are ${DISTRIBUTIONS.join(', ')})`, call.callee.span);
  for (const a of call.args) checkExpr(ctx, a.value, scope);
  return undefined;
}

function argError(ctx: Ctx, call: Call, problem: string, span: Span = call.span): undefined {
  ctx.error('VMM2041', `${problem}; \`${call.callee.name}\` is written ${USAGE[call.callee.name]}`, span);
  return undefined;
}

/** True if `e` is syntactically a size expression over consts and size symbols (`N`, `M + 2`). */
function isSizeLike(ctx: Ctx, e: Expr): boolean {
  switch (e.kind) {
    case 'Number':
      return true;
    case 'Ident': {
      const k = ctx.symbols.get(e.name)?.kind;
      return k === 'const' || k === 'size';
    }
    case 'Unary':
      return isSizeLike(ctx, e.operand);
    case 'Binary':
      return e.op !== '@' && isSizeLike(ctx, e.left) && isSizeLike(ctx, e.right);
    default:
      return false;
  }
}

function numericParam(ctx: Ctx, call: Call, e: Expr, t: Typed, pname: string): boolean {
  if (isNumeric(t.type)) return true;
  ctx.error('VMM2042', `the ${pname} of \`${call.callee.name}\` must be real numbers, but ${describe(e, t.type)} is categorical`, e.span);
  return false;
}

function categorical(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  if (call.args.length !== 1) {
    for (const a of call.args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`Categorical\` takes one argument, found ${call.args.length}`);
  }
  const arg = call.args[0]!;
  if (arg.name) {
    if (arg.name.name !== 'logits') {
      checkExpr(ctx, arg.value, scope);
      return argError(ctx, call, `\`Categorical\` has no parameter \`${arg.name.name}\`${didYouMean(arg.name.name, ['logits'])}`, arg.name.span);
    }
    const t = checkExpr(ctx, arg.value, scope);
    if (!t || !numericParam(ctx, call, arg.value, t, 'logits')) return undefined;
    if (t.type.shape.length !== 1) {
      ctx.error(
        'VMM2042',
        `the logits of \`Categorical\` must have exactly one axis, real[N], but ${describe(arg.value, t.type)} has ${t.type.shape.length}`,
        arg.value.span,
      );
      return undefined;
    }
    const n = t.type.shape[0]!;
    return {
      dist: { kind: 'Categorical', form: 'logits', logits: t.ir, n },
      support: { elem: 'cat', shape: [], card: n },
      discrete: true,
      param: { expr: arg.value, type: t.type, name: 'logits' },
      broadcast: false,
    };
  }
  const e = arg.value;
  if (isSizeLike(ctx, e)) {
    const n = evalSize(ctx, e, scope, { allowSymbols: true, what: 'the number of categories' });
    if (!n) return undefined;
    return {
      dist: { kind: 'Categorical', form: 'uniform', n },
      support: { elem: 'cat', shape: [], card: n },
      discrete: true,
      param: { expr: e, type: { elem: 'real', shape: [] }, name: 'size' },
      broadcast: false,
    };
  }
  const t = checkExpr(ctx, e, { ...scope, recordReads: false });
  if (!t) return undefined;
  if (!t.table || t.type.shape.length < 1) {
    ctx.error(
      'VMM2043',
      `\`Categorical(E)\` is uniform over the entries of a memory or param (or a size \`N\`), but ${describe(e, t.type)} is not one${
        t.type.shape.length === 1 && !t.table ? `: for learned probabilities write \`Categorical(logits: ${formatExpr(e)})\`` : ''
      }`,
      e.span,
    );
    return undefined;
  }
  const n = t.type.shape[0]!;
  return {
    dist: { kind: 'Categorical', form: 'uniform', n, memory: t.table, table: t.ir },
    support: { elem: 'cat', shape: [], card: n },
    discrete: true,
    param: { expr: e, type: t.type, name: 'table' },
    broadcast: false,
    table: t.table,
  };
}

function bernoulli(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  if (call.args.length !== 1) {
    for (const a of call.args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`Bernoulli\` takes one argument, found ${call.args.length}`);
  }
  const arg = call.args[0]!;
  if (!arg.name) {
    checkExpr(ctx, arg.value, scope);
    return argError(ctx, call, `say whether \`${formatExpr(arg.value)}\` holds logits or probabilities`, arg.value.span);
  }
  const pname = arg.name.name;
  if (pname !== 'logits' && pname !== 'probs') {
    checkExpr(ctx, arg.value, scope);
    return argError(ctx, call, `\`Bernoulli\` has no parameter \`${pname}\`${didYouMean(pname, ['logits', 'probs'])}`, arg.name.span);
  }
  const t = checkExpr(ctx, arg.value, scope);
  if (!t || !numericParam(ctx, call, arg.value, t, pname)) return undefined;
  return {
    dist: { kind: 'Bernoulli', form: pname, param: t.ir },
    support: { elem: 'binary', shape: t.type.shape },
    discrete: true,
    param: { expr: arg.value, type: t.type, name: pname },
    broadcast: t.type.shape.length === 0,
  };
}

function normal(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  const args = call.args;
  if (args.length === 1) {
    const a = args[0]!;
    if (a.name) {
      checkExpr(ctx, a.value, scope);
      const hint = a.name.name === 'loc' || a.name.name === 'scale' ? `\`${a.name.name}:\` needs its partner` : `\`Normal\` has no parameter \`${a.name.name}\``;
      return argError(ctx, call, hint, a.name.span);
    }
    const t = checkExpr(ctx, a.value, scope);
    if (!t || !numericParam(ctx, call, a.value, t, 'parameters')) return undefined;
    const shape = t.type.shape;
    if (shape.length === 0) {
      ctx.error('VMM2042', `\`Normal(E)\` splits the last axis of E into mean and scale, but ${describe(a.value, t.type)} is a scalar: write \`Normal(loc, scale)\``, a.value.span);
      return undefined;
    }
    const last = shape[shape.length - 1]!;
    const half = halveSize(last);
    if (!isConcrete(last) || !half) {
      ctx.error(
        'VMM2042',
        `\`Normal(E)\` needs an even, constant last size (first half the mean, second half the scale), but ${describe(a.value, t.type)} has last size ${formatSize(last)}`,
        a.value.span,
      );
      return undefined;
    }
    return {
      dist: { kind: 'Normal', form: 'short', params: t.ir, n: half.c },
      support: { elem: 'real', shape: [...shape.slice(0, -1), half] },
      discrete: false,
      param: { expr: a.value, type: t.type, name: 'parameters' },
      broadcast: false,
    };
  }
  if (args.length !== 2) {
    for (const a of args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`Normal\` takes one or two arguments, found ${args.length}`);
  }
  let loc: Expr | undefined;
  let scale: Expr | undefined;
  let ok = true;
  for (const [i, a] of args.entries()) {
    const slot = a.name ? a.name.name : i === 0 ? 'loc' : 'scale';
    if (slot !== 'loc' && slot !== 'scale') {
      argError(ctx, call, `\`Normal\` has no parameter \`${slot}\`${didYouMean(slot, ['loc', 'scale'])}`, a.name!.span);
      ok = false;
    } else if ((slot === 'loc' ? loc : scale) !== undefined) {
      argError(ctx, call, `\`${slot}\` is given twice`, a.span);
      ok = false;
    } else if (slot === 'loc') loc = a.value;
    else scale = a.value;
  }
  const tl = loc && checkExpr(ctx, loc, scope);
  const ts = scale && checkExpr(ctx, scale, scope);
  if (!ok || !tl || !ts || !loc || !scale) return undefined;
  if (!numericParam(ctx, call, loc, tl, 'loc') || !numericParam(ctx, call, scale, ts, 'scale')) return undefined;
  const [a, b] = [tl.type.shape, ts.type.shape];
  if (!(shapeEq(a, b) || a.length === 0 || b.length === 0)) {
    ctx.error(
      'VMM2042',
      `\`Normal\` needs \`loc\` and \`scale\` of the same shape (or a scalar), but ${describe(loc, tl.type)} and ${describe(scale, ts.type)} differ`,
      call.span,
    );
    return undefined;
  }
  const main = a.length >= b.length ? { expr: loc, type: tl.type, name: 'loc' } : { expr: scale, type: ts.type, name: 'scale' };
  return {
    dist: { kind: 'Normal', form: 'locScale', loc: tl.ir, scale: ts.ir },
    support: { elem: 'real', shape: main.type.shape },
    discrete: false,
    param: main,
    broadcast: main.type.shape.length === 0,
  };
}

const FOR_ELEM: Record<string, string> = {
  binary: '`Bernoulli(logits: ...)`',
  real: '`Normal(...)`',
  cat: '`Categorical(logits: ...)`',
};

/**
 * Checks that the distribution gives values of type `expected` (e.g. the observed data's type);
 * `what` names that value in the message ("`x : binary[784]`"). Reports with `code` and returns false on a mismatch.
 */
export function matchSupport(
  ctx: Ctx,
  r: DistResult,
  call: Call,
  expected: ValueType,
  what: string,
  code: string,
  notes: DiagnosticNote[] = [],
): boolean {
  const s = r.support;
  if (typeEq(s, expected)) return true;
  const dname = call.callee.name;
  if (s.elem !== expected.elem) {
    const fix = FOR_ELEM[expected.elem] ? `; for ${expected.elem} values use ${FOR_ELEM[expected.elem]}` : '';
    ctx.error(code, `${what} needs ${expected.elem} values, but \`${dname}\` gives ${formatType(s)}${fix}`, call.callee.span, notes);
    return false;
  }
  if (r.broadcast && expected.elem !== 'cat') return true;
  const p = r.param;
  let want: string;
  if (expected.elem === 'cat') {
    const card = expected.card!;
    want = p.name === 'logits' ? `logits real[${formatSize(card)}]` : p.name === 'table' ? `a table with ${formatSize(card)} entries` : `${formatSize(card)} categories`;
    if (expected.shape.length) want += ` and a scalar index`;
  } else if (dname === 'Normal' && p.name === 'parameters') {
    const last = expected.shape[expected.shape.length - 1];
    const doubled = last ? [...expected.shape.slice(0, -1), scaleSize(last, 2)] : undefined;
    want = doubled ? `${formatType({ elem: 'real', shape: doubled })} (mean and scale halves)` : 'a loc and a scale';
  } else {
    want = `${p.name} ${formatType({ elem: 'real', shape: expected.shape })}${dname === 'Normal' ? ' (or a scalar)' : ''}`;
  }
  const found = p.name === 'size' ? `\`${formatCall(call)}\` with ${formatSize(s.card!)} categories` : describe(p.expr, p.type);
  ctx.error(code, `${what} needs ${want}, found ${found}`, p.expr.span, notes);
  return false;
}
