/**
 * Const folding and symbolic sizes. A size expression is numbers, consts and size symbols under
 * `+ - * /`; its value is linear in the size symbols (`M + 2`). Consts are plain numbers known at
 * compile time. Type expressions (`real[M + 2, D]`, `cat(10)`) evaluate to value types.
 */
import type { Expr, TypeExpr } from '../ast/types.ts';
import type { Size, ValueType } from '../ir/types.ts';
import { KIND_WORD, type Ctx, type Scope } from './context.ts';
import { formatExpr } from './format.ts';
import { addSize, constSize, formatSize, isConcrete, scaleSize, symSize } from '../ir/size.ts';

export interface SizeOpts {
  /** May the expression mention size symbols (`M`)? */
  allowSymbols: boolean;
  /** What is being evaluated, for messages: "a const", "a layer size", "a dimension". */
  what: string;
}

/** Evaluates a linear size / const expression; reports and returns undefined on errors. */
export function evalLinear(ctx: Ctx, e: Expr, scope: Scope, opts: SizeOpts): Size | undefined {
  switch (e.kind) {
    case 'Number':
      return constSize(e.value);
    case 'Ident': {
      const sym = ctx.resolve(e.name, e.span, scope, opts.allowSymbols ? ['const', 'size'] : ['const']);
      if (!sym) return undefined;
      if (sym.kind === 'const') return sym.value === undefined ? undefined : constSize(sym.value);
      if (sym.kind === 'size') {
        if (opts.allowSymbols) return symSize(sym.name);
        ctx.error('VMM2013', `\`${e.name}\` is a size symbol, bound per episode; ${opts.what} must be known at compile time`, e.span, [
          { message: `\`${e.name}\` is declared here with \`size\``, span: sym.span },
        ]);
        return undefined;
      }
      ctx.error('VMM2010', `\`${e.name}\` is ${KIND_WORD[sym.kind]}, not a constant: ${opts.what} is built from numbers, consts${opts.allowSymbols ? ', size symbols' : ''} and + - * /`, e.span, [
        { message: `\`${e.name}\` is declared here`, span: sym.span },
      ]);
      return undefined;
    }
    case 'Unary': {
      const v = evalLinear(ctx, e.operand, scope, opts);
      return v && scaleSize(v, -1);
    }
    case 'Binary': {
      if (e.op === '@') {
        ctx.error('VMM2010', `\`@\` (matrix product) is not allowed in ${opts.what}: only + - * / on numbers and consts`, e.span);
        return undefined;
      }
      const l = evalLinear(ctx, e.left, scope, opts);
      const r = evalLinear(ctx, e.right, scope, opts);
      if (!l || !r) return undefined;
      switch (e.op) {
        case '+':
          return addSize(l, r);
        case '-':
          return addSize(l, r, -1);
        case '*':
          if (isConcrete(l)) return scaleSize(r, l.c);
          if (isConcrete(r)) return scaleSize(l, r.c);
          ctx.error(
            'VMM2012',
            `cannot multiply sizes \`${formatSize(l)}\` and \`${formatSize(r)}\`: sizes must be linear in the size symbols (like \`2*M + 1\`); a product of two symbols is not supported`,
            e.span,
          );
          return undefined;
        case '/': {
          if (!isConcrete(r)) {
            ctx.error('VMM2012', `cannot divide by the size \`${formatSize(r)}\`: sizes must be linear in the size symbols`, e.right.span);
            return undefined;
          }
          if (r.c === 0) {
            ctx.error('VMM2011', `division by zero in ${opts.what}`, e.right.span);
            return undefined;
          }
          const q = scaleSize(l, 1 / r.c);
          if (!isConcrete(q) && Object.values(q.terms).some((v) => !Number.isInteger(v))) {
            ctx.error('VMM2012', `\`${formatExpr(e)}\` is not a whole size for every value of ${Object.keys(l.terms).map((s) => `\`${s}\``).join(', ')}`, e.span);
            return undefined;
          }
          return q;
        }
      }
      return undefined;
    }
    case 'Call':
    case 'Index':
    case 'Member':
      ctx.error('VMM2010', `\`${formatExpr(e)}\` is not a constant expression: ${opts.what} is built from numbers, consts${opts.allowSymbols ? ', size symbols' : ''} and + - * /`, e.span);
      return undefined;
  }
}

/** A compile-time number (a const's value, a setting). */
export function evalConst(ctx: Ctx, e: Expr, scope: Scope, what: string): number | undefined {
  const v = evalLinear(ctx, e, scope, { allowSymbols: false, what });
  return v?.c;
}

/**
 * A size: a positive whole number, or (with `allowSymbols`) a linear combination of size symbols
 * with whole coefficients.
 */
export function evalSize(ctx: Ctx, e: Expr, scope: Scope, opts: SizeOpts): Size | undefined {
  const v = evalLinear(ctx, e, scope, opts);
  if (!v) return undefined;
  if (isConcrete(v)) {
    if (!Number.isInteger(v.c)) {
      ctx.error('VMM2011', `${opts.what} must be a whole number, but \`${formatExpr(e)}\` is ${Number(v.c.toPrecision(6))}`, e.span);
      return undefined;
    }
    if (v.c < 1) {
      ctx.error('VMM2011', `${opts.what} must be at least 1, but \`${formatExpr(e)}\` is ${v.c}`, e.span);
      return undefined;
    }
    return v;
  }
  if (!Number.isInteger(v.c)) {
    ctx.error('VMM2012', `\`${formatExpr(e)}\` = ${formatSize(v)} is not a whole size`, e.span);
    return undefined;
  }
  return v;
}

/** A concrete positive whole number (layer sizes, kernel sizes). */
export function evalConcreteSize(ctx: Ctx, e: Expr, scope: Scope, what: string): number | undefined {
  return evalSize(ctx, e, scope, { allowSymbols: false, what })?.c;
}

/** `binary[D]`, `real[M, D]`, `cat(10)`: a value type; undefined after an error. */
export function evalType(ctx: Ctx, t: TypeExpr, scope: Scope, opts: { allowSymbols: boolean; what: string }): ValueType | undefined {
  let ok = true;
  const shape: Size[] = [];
  for (const d of t.dims) {
    const s = evalSize(ctx, d, scope, { allowSymbols: opts.allowSymbols, what: `a dimension of ${opts.what}` });
    if (s) shape.push(s);
    else ok = false;
  }
  let card: Size | undefined;
  if (t.elem === 'cat') {
    if (!t.card) {
      ctx.error('VMM2071', `\`cat\` needs its number of categories, e.g. \`cat(10)\``, t.elemSpan);
      ok = false;
    } else {
      card = evalSize(ctx, t.card, scope, { allowSymbols: opts.allowSymbols, what: 'the number of categories' });
      if (!card) ok = false;
    }
  } else if (t.card) {
    ctx.error('VMM2071', `only \`cat\` takes a number of categories; write \`${t.elem}[...]\` for a shape`, t.card.span);
    ok = false;
  }
  if (!ok) return undefined;
  return card ? { elem: t.elem, shape, card } : { elem: t.elem, shape };
}
