/**
 * Distributions after `~`: parameter names, parameter types and shapes, and the support (the type
 * of the values the distribution gives). `matchSupport` compares a support with the type a site
 * needs (a declared type, the observed data's type, the model's type for a guide site) and blames
 * the parameter that decides the shape.
 */
import type { Call, Expr, Span } from '../ast/types.ts';
import type { DiagnosticNote } from '../diagnostics/diagnostic.ts';
import type { ValueType } from '../ir/types.ts';
import { family, type Constraint, type FamilySpec, type Support } from '../families/registry.ts';
import { DISTRIBUTIONS, type Ctx, type Scope } from './context.ts';
import { evalSize } from './consts.ts';
import { checkExpr, describe, isNumeric, type Typed } from './exprs.ts';
import { formatCall, formatExpr } from './format.ts';
import { formatSize, formatType, halveSize, isConcrete, scaleSize, shapeEq, typeEq } from '../ir/size.ts';
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

const usage = (name: string): string => family(name)?.usage ?? `\`${name}(...)\``;

export function checkDist(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  const r = checkForm(ctx, call, scope);
  if (r) checkConstantParams(ctx, call, r);
  return r;
}

function checkForm(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  const name = call.callee.name;
  switch (name) {
    case 'Categorical':
      return categorical(ctx, call, scope);
    case 'Bernoulli':
      return bernoulli(ctx, call, scope);
    case 'Normal':
      return normal(ctx, call, scope);
  }
  const spec = family(name);
  if (spec && spec.typing === 'elementwise') return elementwise(ctx, call, scope, spec);
  ctx.error('VMM2040', `unknown distribution \`${name}\`${didYouMean(name, DISTRIBUTIONS)} (the distributions are ${DISTRIBUTIONS.join(', ')})`, call.callee.span);
  for (const a of call.args) checkExpr(ctx, a.value, scope);
  return undefined;
}

function argError(ctx: Ctx, call: Call, problem: string, span: Span = call.span): undefined {
  ctx.error('VMM2041', `${problem}; \`${call.callee.name}\` is written ${usage(call.callee.name)}`, span);
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

/**
 * A family whose parameters are all real and broadcast against each other (`Laplace(loc, scale)`,
 * `Beta(alpha, beta)`): arguments positional or named after the registry's parameters; the values
 * have the shape of the largest parameter.
 */
function elementwise(ctx: Ctx, call: Call, scope: Scope, spec: FamilySpec): DistResult | undefined {
  const names = spec.params.map((p) => p.name);
  const slots = new Map<string, { expr: Expr; typed?: Typed }>();
  let ok = true;
  if (call.args.length !== names.length) {
    for (const a of call.args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`${spec.name}\` takes ${names.length} argument${names.length === 1 ? '' : 's'} (${names.join(', ')}), found ${call.args.length}`);
  }
  for (const [i, a] of call.args.entries()) {
    const slot = a.name ? a.name.name : names[i]!;
    if (!names.includes(slot)) {
      argError(ctx, call, `\`${spec.name}\` has no parameter \`${slot}\`${didYouMean(slot, names)}`, a.name!.span);
      ok = false;
    } else if (slots.has(slot)) {
      argError(ctx, call, `\`${slot}\` is given twice`, a.span);
      ok = false;
    } else slots.set(slot, { expr: a.value });
  }
  for (const v of slots.values()) {
    const t = checkExpr(ctx, v.expr, scope);
    if (!t) ok = false;
    else v.typed = t;
  }
  if (!ok) return undefined;
  const params = names.map((n) => ({ name: n, ...slots.get(n)! }));
  for (const p of params) if (!numericParam(ctx, call, p.expr, p.typed!, p.name)) return undefined;
  const main = params.reduce((a, b) => (b.typed!.type.shape.length > a.typed!.type.shape.length ? b : a));
  for (const p of params) {
    const sh = p.typed!.type.shape;
    if (sh.length !== 0 && !shapeEq(sh, main.typed!.type.shape)) {
      ctx.error(
        'VMM2042',
        `\`${spec.name}\` needs parameters of the same shape (or scalars), but ${describe(main.expr, main.typed!.type)} and ${describe(p.expr, p.typed!.type)} differ`,
        call.span,
      );
      return undefined;
    }
  }
  const shape = main.typed!.type.shape;
  return {
    dist: { kind: 'family', family: spec.name, params: params.map((p) => p.typed!.ir), paramNames: spec.params.map((p) => p.name) },
    support: { elem: spec.support === 'binary' ? 'binary' : 'real', shape },
    discrete: spec.discrete,
    param: { expr: main.expr, type: main.typed!.type, name: main.name },
    broadcast: shape.length === 0,
  };
}

const CONSTRAINT_TEXT: Record<Constraint, string> = { real: 'a finite number', positive: 'positive', unit: 'in (0, 1)' };

function violates(c: Constraint | 'probability', v: number): boolean {
  if (!Number.isFinite(v)) return true;
  if (c === 'positive') return !(v > 0);
  if (c === 'unit') return !(v > 0 && v < 1);
  if (c === 'probability') return !(v >= 0 && v <= 1);
  return false;
}

/** The value of an argument written as a number (`1e-3`, `-2`), else undefined. */
function literal(e: Expr): number | undefined {
  if (e.kind === 'Number') return e.value;
  if (e.kind === 'Unary' && e.op === '-' && e.operand.kind === 'Number') return -e.operand.value;
  return undefined;
}

/**
 * A parameter written as a constant that is outside its family's domain (`Normal(0, 0)`,
 * `Bernoulli(probs: 2)`, `Beta(-1, 1)`) would make every log-density NaN at the first step:
 * reported here, at the argument.
 */
function checkConstantParams(ctx: Ctx, call: Call, r: DistResult): void {
  const d = r.dist;
  const named = (i: number, names: string[]) => {
    const a = call.args.find((x) => x.name?.name === names[i]) ?? call.args.find((x, j) => !x.name && j === i);
    return a?.value;
  };
  const check = (e: Expr | undefined, c: Constraint | 'probability', what: string) => {
    const v = e && literal(e);
    if (e && v !== undefined && violates(c, v)) {
      const want = c === 'probability' ? 'in [0, 1]' : CONSTRAINT_TEXT[c];
      ctx.error('VMM2045', `\`${what}\` of \`${call.callee.name}\` must be ${want}, found ${formatExpr(e)}`, e.span);
    }
  };
  if (d.kind === 'Normal' && d.form === 'locScale') check(named(1, ['loc', 'scale']), 'positive', 'scale');
  else if (d.kind === 'Bernoulli' && d.form === 'probs') check(call.args[0]?.value, 'probability', 'probs');
  else if (d.kind === 'family') {
    const spec = family(d.family)!;
    const names = spec.params.map((p) => p.name);
    spec.params.forEach((p, i) => check(named(i, names), p.constraint, p.name));
  }
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

/** Where a checked distribution puts its values. */
export function supportOf(d: CheckedDist): Support {
  switch (d.kind) {
    case 'Categorical':
      return 'category';
    case 'Bernoulli':
      return 'binary';
    case 'Normal':
      return 'real';
    case 'family':
      return family(d.family)!.support;
  }
}

const SUPPORT_TEXT: Record<Support, string> = { real: 'any real number', positive: 'positive numbers', unit: 'numbers in (0, 1)', binary: '0 or 1', category: 'categories' };

/**
 * The guide's distribution must put its values where the model's does: a Normal guide for a Beta
 * latent would draw values the model gives density zero (log-weights of -Infinity).
 */
export function matchGuideSupport(ctx: Ctx, guide: CheckedDist, model: Support | undefined, call: Call, name: string, modelSpan: Span): boolean {
  if (model === undefined) return true;
  const g = supportOf(guide);
  // A narrower guide support is fine (positive inside real, unit inside positive and real).
  const inside: Record<Support, Support[]> = { real: ['real'], positive: ['positive', 'real'], unit: ['unit', 'positive', 'real'], binary: ['binary'], category: ['category'] };
  if (inside[g].includes(model)) return true;
  ctx.error('VMM2046', `the guide's \`${name}\` draws ${SUPPORT_TEXT[g]} (\`${call.callee.name}\`), but the model's \`${name}\` takes ${SUPPORT_TEXT[model]}: use a family with that support`, call.callee.span, [
    { message: `the model's \`${name}\` is here`, span: modelSpan },
  ]);
  return false;
}
