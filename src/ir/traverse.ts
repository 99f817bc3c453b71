/**
 * Walking the IR: the direct subexpressions of an expression, every expression of a statement
 * list, and a rebuilding map. One place for the traversal, so that a new expression kind is
 * added here once rather than in every pass that walks the IR.
 */
import { distParams, type IrDist, type IrExpr, type IrStmt } from './types.ts';

/** Every expression of a statement list (lets and distribution parameters). */
export function* exprsOf(stmts: IrStmt[]): Generator<IrExpr> {
  for (const s of stmts) {
    if (s.stmt === 'let') yield s.value;
    else yield* distParams(s.dist);
  }
}

/** The direct subexpressions of an expression. */
export function childrenOf(e: IrExpr): IrExpr[] {
  switch (e.op) {
    case 'const':
    case 'ref':
      return [];
    case 'net':
      return [e.arg, ...(e.skips ?? []).map((s) => s.arg)];
    case 'unary':
    case 'slice':
    case 'neural_read':
      return [e.arg];
    case 'index':
      return [e.target, e.index];
    case 'builtin':
      return e.args;
    case 'matmul':
    case 'binary':
      return [e.left, e.right];
  }
}

/** `e` with every subexpression replaced by `f` of it (bottom-up is the caller's choice: `f` may recurse). */
export function mapChildren(e: IrExpr, f: (c: IrExpr) => IrExpr): IrExpr {
  switch (e.op) {
    case 'const':
    case 'ref':
      return e;
    case 'net':
      return { ...e, arg: f(e.arg), ...(e.skips ? { skips: e.skips.map((s) => ({ ...s, arg: f(s.arg) })) } : {}) };
    case 'unary':
    case 'slice':
    case 'neural_read':
      return { ...e, arg: f(e.arg) };
    case 'index':
      return { ...e, target: f(e.target), index: f(e.index) };
    case 'builtin':
      return { ...e, args: e.args.map(f) };
    case 'matmul':
    case 'binary':
      return { ...e, left: f(e.left), right: f(e.right) };
  }
}

/** A distribution with every parameter expression replaced by `f` of it. */
export function mapDist(d: IrDist, f: (e: IrExpr) => IrExpr): IrDist {
  if (d.kind === 'family') return { ...d, params: d.params.map(f) };
  return d.logits ? { ...d, logits: f(d.logits) } : d;
}

/** True when `e` mentions the name `name` (of the given reference kinds) anywhere. */
export function mentions(e: IrExpr, pred: (r: IrExpr & { op: 'ref' }) => boolean): boolean {
  if (e.op === 'ref') return pred(e);
  return childrenOf(e).some((c) => mentions(c, pred));
}
