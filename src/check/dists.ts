/**
 * Distributions after `~`: parameter names, parameter types and shapes, and the support (the type
 * of the values the distribution gives). `matchSupport` compares a support with the type a site
 * needs (a declared type, the observed data's type, the model's type for a guide site) and blames
 * the parameter that decides the shape.
 */
import type { Call, Expr, Span } from '../ast/types.ts';
import type { DiagnosticNote } from '../diagnostics/diagnostic.ts';
import type { ValueType } from '../ir/types.ts';
import { families, family, type Constraint, type FamilySpec, type Support } from '../families/registry.ts';
import { DISTRIBUTIONS, type Ctx, type Scope } from './context.ts';
import { evalSize } from './consts.ts';
import { checkExpr, describe, isNumeric, type Typed } from './exprs.ts';
import { formatCall, formatExpr } from './format.ts';
import { formatSize, formatType, halveSize, isConcrete, scaleSize, shapeEq, typeEq } from '../ir/size.ts';
import { didYouMean } from './suggest.ts';
import { checkedFamily, type CheckedDist } from './types.ts';

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

/** Types a call by its family's typing rule (src/families/types.ts, `Typing`). */
function checkForm(ctx: Ctx, call: Call, scope: Scope): DistResult | undefined {
  const name = call.callee.name;
  const spec = family(name);
  if (spec) {
    switch (spec.typing) {
      case 'categories':
        return categories(ctx, call, scope, spec);
      case 'logitsOrProbs':
        return logitsOrProbs(ctx, call, scope, spec);
      case 'halves':
        return halvesOrElementwise(ctx, call, scope, spec);
      case 'elementwise':
        return elementwise(ctx, call, scope, spec);
    }
  }
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

/**
 * The 'categories' forms: `F(logits: real[N])`, or uniform over `F(N)` categories or over the
 * entries of a memory or param `F(mem)` (the form of an address).
 */
function categories(ctx: Ctx, call: Call, scope: Scope, spec: FamilySpec): DistResult | undefined {
  const F = spec.name;
  const logitsName = spec.params[0]!.name;
  if (call.args.length !== 1) {
    for (const a of call.args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`${F}\` takes one argument, found ${call.args.length}`);
  }
  const arg = call.args[0]!;
  if (arg.name) {
    if (arg.name.name !== logitsName) {
      checkExpr(ctx, arg.value, scope);
      return argError(ctx, call, `\`${F}\` has no parameter \`${arg.name.name}\`${didYouMean(arg.name.name, [logitsName])}`, arg.name.span);
    }
    const t = checkExpr(ctx, arg.value, scope);
    if (!t || !numericParam(ctx, call, arg.value, t, logitsName)) return undefined;
    if (t.type.shape.length !== 1) {
      ctx.error(
        'VMM2042',
        `the ${logitsName} of \`${F}\` must have exactly one axis, real[N], but ${describe(arg.value, t.type)} has ${t.type.shape.length}`,
        arg.value.span,
      );
      return undefined;
    }
    const n = t.type.shape[0]!;
    return {
      dist: { kind: 'Categorical', form: 'logits', logits: t.ir, n },
      support: { elem: 'cat', shape: [], card: n },
      discrete: spec.discrete,
      param: { expr: arg.value, type: t.type, name: logitsName },
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
      discrete: spec.discrete,
      param: { expr: e, type: { elem: 'real', shape: [] }, name: 'size' },
      broadcast: false,
    };
  }
  const t = checkExpr(ctx, e, { ...scope, recordReads: false });
  if (!t) return undefined;
  if (!t.table || t.type.shape.length < 1) {
    ctx.error(
      'VMM2043',
      `\`${F}(E)\` is uniform over the entries of a memory or param (or a size \`N\`), but ${describe(e, t.type)} is not one${
        t.type.shape.length === 1 && !t.table ? `: for learned probabilities write \`${F}(${logitsName}: ${formatExpr(e)})\`` : ''
      }`,
      e.span,
    );
    return undefined;
  }
  const n = t.type.shape[0]!;
  return {
    dist: { kind: 'Categorical', form: 'uniform', n, memory: t.table, table: t.ir },
    support: { elem: 'cat', shape: [], card: n },
    discrete: spec.discrete,
    param: { expr: e, type: t.type, name: 'table' },
    broadcast: false,
    table: t.table,
  };
}

/** The 'logitsOrProbs' forms: the one parameter named, `F(logits: E)` or `F(probs: E)`. */
function logitsOrProbs(ctx: Ctx, call: Call, scope: Scope, spec: FamilySpec): DistResult | undefined {
  const F = spec.name;
  const logitsName = spec.params[0]!.name;
  if (call.args.length !== 1) {
    for (const a of call.args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`${F}\` takes one argument, found ${call.args.length}`);
  }
  const arg = call.args[0]!;
  if (!arg.name) {
    checkExpr(ctx, arg.value, scope);
    return argError(ctx, call, `say whether \`${formatExpr(arg.value)}\` holds logits or probabilities`, arg.value.span);
  }
  const pname = arg.name.name;
  if (pname !== logitsName && pname !== 'probs') {
    checkExpr(ctx, arg.value, scope);
    return argError(ctx, call, `\`${F}\` has no parameter \`${pname}\`${didYouMean(pname, [logitsName, 'probs'])}`, arg.name.span);
  }
  const t = checkExpr(ctx, arg.value, scope);
  if (!t || !numericParam(ctx, call, arg.value, t, pname)) return undefined;
  const paramNames = [logitsName];
  return {
    dist: pname === 'probs' ? { kind: 'probs', family: F, param: t.ir, paramNames } : { kind: 'family', family: F, params: [t.ir], paramNames },
    support: { elem: elemOf(spec), shape: t.type.shape },
    discrete: spec.discrete,
    param: { expr: arg.value, type: t.type, name: pname },
    broadcast: t.type.shape.length === 0,
  };
}

/**
 * The 'halves' forms: `F(E)`, E's last axis holding the two parameters as halves (the second made
 * positive in the IR), or the two parameters as 'elementwise' (`F(loc, scale)`).
 */
function halvesOrElementwise(ctx: Ctx, call: Call, scope: Scope, spec: FamilySpec): DistResult | undefined {
  const F = spec.name;
  const names = spec.params.map((p) => p.name);
  const [first, second] = names as [string, string];
  const args = call.args;
  if (args.length === 1) {
    const a = args[0]!;
    if (a.name) {
      checkExpr(ctx, a.value, scope);
      const hint = names.includes(a.name.name) ? `\`${a.name.name}:\` needs its partner` : `\`${F}\` has no parameter \`${a.name.name}\``;
      return argError(ctx, call, hint, a.name.span);
    }
    const t = checkExpr(ctx, a.value, scope);
    if (!t || !numericParam(ctx, call, a.value, t, 'parameters')) return undefined;
    const shape = t.type.shape;
    if (shape.length === 0) {
      ctx.error('VMM2042', `\`${F}(E)\` splits the last axis of E into mean and scale, but ${describe(a.value, t.type)} is a scalar: write \`${F}(${first}, ${second})\``, a.value.span);
      return undefined;
    }
    const last = shape[shape.length - 1]!;
    const half = halveSize(last);
    if (!isConcrete(last) || !half) {
      ctx.error(
        'VMM2042',
        `\`${F}(E)\` needs an even, constant last size (first half the mean, second half the scale), but ${describe(a.value, t.type)} has last size ${formatSize(last)}`,
        a.value.span,
      );
      return undefined;
    }
    return {
      dist: { kind: 'halves', family: F, params: t.ir, n: half.c, paramNames: names },
      support: { elem: elemOf(spec), shape: [...shape.slice(0, -1), half] },
      discrete: spec.discrete,
      param: { expr: a.value, type: t.type, name: 'parameters' },
      broadcast: false,
    };
  }
  if (args.length !== 2) {
    for (const a of args) checkExpr(ctx, a.value, scope);
    return argError(ctx, call, `\`${F}\` takes one or two arguments, found ${args.length}`);
  }
  let loc: Expr | undefined;
  let scale: Expr | undefined;
  let ok = true;
  for (const [i, a] of args.entries()) {
    const slot = a.name ? a.name.name : i === 0 ? first : second;
    if (slot !== first && slot !== second) {
      argError(ctx, call, `\`${F}\` has no parameter \`${slot}\`${didYouMean(slot, names)}`, a.name!.span);
      ok = false;
    } else if ((slot === first ? loc : scale) !== undefined) {
      argError(ctx, call, `\`${slot}\` is given twice`, a.span);
      ok = false;
    } else if (slot === first) loc = a.value;
    else scale = a.value;
  }
  const tl = loc && checkExpr(ctx, loc, scope);
  const ts = scale && checkExpr(ctx, scale, scope);
  if (!ok || !tl || !ts || !loc || !scale) return undefined;
  if (!numericParam(ctx, call, loc, tl, first) || !numericParam(ctx, call, scale, ts, second)) return undefined;
  const [a, b] = [tl.type.shape, ts.type.shape];
  if (!(shapeEq(a, b) || a.length === 0 || b.length === 0)) {
    ctx.error(
      'VMM2042',
      `\`${F}\` needs \`${first}\` and \`${second}\` of the same shape (or a scalar), but ${describe(loc, tl.type)} and ${describe(scale, ts.type)} differ`,
      call.span,
    );
    return undefined;
  }
  const main = a.length >= b.length ? { expr: loc, type: tl.type, name: first } : { expr: scale, type: ts.type, name: second };
  return {
    dist: { kind: 'family', family: F, params: [tl.ir, ts.ir], paramNames: names },
    support: { elem: elemOf(spec), shape: main.type.shape },
    discrete: spec.discrete,
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
    support: { elem: elemOf(spec), shape },
    discrete: spec.discrete,
    param: { expr: main.expr, type: main.typed!.type, name: main.name },
    broadcast: shape.length === 0,
  };
}

/** The element type of a family's values ('cat' for categories, which carry their count). */
function elemOf(spec: FamilySpec): 'real' | 'binary' {
  return spec.support === 'binary' ? 'binary' : 'real';
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
  if (d.kind === 'probs') check(call.args[0]?.value, 'probability', 'probs');
  else if (d.kind === 'family') {
    const spec = family(d.family)!;
    const names = spec.params.map((p) => p.name);
    spec.params.forEach((p, i) => check(named(i, names), p.constraint, p.name));
  }
}

/** A family to suggest for values of each element type: the first of the registry with that support. */
function forElem(elem: string): string | undefined {
  const support: Support | undefined = elem === 'binary' ? 'binary' : elem === 'cat' ? 'category' : elem === 'real' ? 'real' : undefined;
  const f = families().find((x) => x.support === support);
  if (!f) return undefined;
  return f.typing === 'halves' || f.typing === 'elementwise' ? `\`${f.name}(...)\`` : `\`${f.name}(${f.params[0]!.name}: ...)\``;
}

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
  const halves = family(dname)?.typing === 'halves';
  if (s.elem !== expected.elem) {
    const suggestion = forElem(expected.elem);
    const fix = suggestion ? `; for ${expected.elem} values use ${suggestion}` : '';
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
  } else if (halves && p.name === 'parameters') {
    const last = expected.shape[expected.shape.length - 1];
    const doubled = last ? [...expected.shape.slice(0, -1), scaleSize(last, 2)] : undefined;
    want = doubled ? `${formatType({ elem: 'real', shape: doubled })} (mean and scale halves)` : 'a loc and a scale';
  } else {
    want = `${p.name} ${formatType({ elem: 'real', shape: expected.shape })}${halves ? ' (or a scalar)' : ''}`;
  }
  const found = p.name === 'size' ? `\`${formatCall(call)}\` with ${formatSize(s.card!)} categories` : describe(p.expr, p.type);
  ctx.error(code, `${what} needs ${want}, found ${found}`, p.expr.span, notes);
  return false;
}

/** Where a checked distribution puts its values. */
export function supportOf(d: CheckedDist): Support {
  return family(checkedFamily(d))!.support;
}

const SUPPORT_TEXT: Record<Support, string> = { real: 'any real number', positive: 'positive numbers', unit: 'numbers in (0, 1)', binary: '0 or 1', category: 'categories', count: 'counts 0, 1, 2, ...' };

/**
 * The guide's distribution must put its values where the model's does: a Normal guide for a Beta
 * latent would draw values the model gives density zero (log-weights of -Infinity).
 */
export function matchGuideSupport(ctx: Ctx, guide: CheckedDist, model: Support | undefined, call: Call, name: string, modelSpan: Span): boolean {
  if (model === undefined) return true;
  const g = supportOf(guide);
  // A narrower guide support is fine (positive inside real, unit inside positive and real, counts inside real).
  const inside: Record<Support, Support[]> = { real: ['real'], positive: ['positive', 'real'], unit: ['unit', 'positive', 'real'], binary: ['binary'], category: ['category'], count: ['count', 'real'] };
  if (inside[g].includes(model)) return true;
  ctx.error('VMM2046', `the guide's \`${name}\` draws ${SUPPORT_TEXT[g]} (\`${call.callee.name}\`), but the model's \`${name}\` takes ${SUPPORT_TEXT[model]}: use a family with that support`, call.callee.span, [
    { message: `the model's \`${name}\` is here`, span: modelSpan },
  ]);
  return false;
}
