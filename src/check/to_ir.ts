/**
 * `toIr`: checked program -> IR (src/ir/types.ts). The checker already folded consts, resolved
 * nets to layers with concrete sizes and typed every expression; here the distributions get their
 * resolved parameters (the `Normal(e)` short form split into `loc = e[:n]` and
 * `scale = softplus(e[n:]) + 1e-4`; `Bernoulli(probs: p)` into `logits = log p - log(1 - p)`),
 * each net gets its parameter count, and the guide (written or derived) and the training settings
 * (defaults filled in by the checker) are attached. The result shares nothing with its input.
 */
import type { CheckedDist, CheckedProgram, CheckedStmt } from './types.ts';
import { netParamCount } from './nets.ts';
import { addSize } from '../ir/size.ts';
import type { IrDist, IrExpr, IrProgram, IrStmt, Size, ValueType } from '../ir/types.ts';

/** The smallest scale of a `Normal(e)` short form: `softplus(.) + 1e-4`. */
export const MIN_SCALE = 1e-4;

export function toIr(checked: CheckedProgram): IrProgram {
  const ir: IrProgram = {
    name: checked.name,
    consts: Object.fromEntries(checked.consts.map((c) => [c.name, c.value])),
    sizeSymbols: [...checked.sizeSymbols],
    data: checked.data.map((d) => ({ name: d.name, type: d.type })),
    memories: checked.memories.map((m) => ({ name: m.name, type: m.type })),
    params: checked.params,
    nets: checked.nets.map((n) => ({
      name: n.name,
      layers: n.layers,
      inShape: n.inShape,
      outShape: n.outShape,
      paramCount: netParamCount(n.layers),
      ...(n.taps ? { taps: n.taps.map((p) => ({ name: p.name, shape: p.shape })) } : {}),
      ...(n.skips ? { skips: n.skips.map((p) => ({ name: p.name, shape: p.shape })) } : {}),
    })),
    ...(checked.neural.length ? { neural: checked.neural.map(({ decl: _decl, ...n }) => n) } : {}),
    model: checked.model.map(stmt),
    guide: { derived: checked.guide.derived, stmts: checked.guide.stmts.map(stmt) },
    train: checked.train,
  };
  // A deep copy: the IR may be transformed (e.g. by estimator overrides) without touching the
  // checked program; structuredClone keeps the sharing of `e` between loc and scale.
  return structuredClone(ir);
}

function stmt(s: CheckedStmt): IrStmt {
  if (s.stmt === 'let') return { stmt: 'let', name: s.name, value: s.value, type: s.type };
  return { stmt: 'site', name: s.name, role: s.role, discrete: s.discrete, dist: dist(s.dist), type: s.type };
}

const real = (t: ValueType, shape = t.shape): ValueType => ({ elem: 'real', shape });
const scalar = (value: number): IrExpr => ({ op: 'const', value, type: { elem: 'real', shape: [] } });

function dist(d: CheckedDist): IrDist {
  switch (d.kind) {
    case 'family':
      return { kind: 'family', family: d.family, params: d.params, paramNames: d.paramNames };
    case 'Categorical':
      if (d.form === 'logits') return { kind: 'Categorical', logits: d.logits, n: d.n };
      if (!d.memory) return { kind: 'Categorical', n: d.n };
      return { kind: 'Categorical', n: d.n, memory: d.memory, offset: (d.table && rowOffset(d.table, d.memory)) ?? { c: 0, terms: {} } };
    case 'probs': {
      // logits = log p - log(1 - p)
      const p = d.param;
      const t = real(p.type);
      const oneMinus: IrExpr = { op: 'binary', fn: 'sub', left: scalar(1), right: p, type: t };
      const logits: IrExpr = {
        op: 'binary',
        fn: 'sub',
        left: { op: 'builtin', fn: 'log', args: [p], type: t },
        right: { op: 'builtin', fn: 'log', args: [oneMinus], type: t },
        type: t,
      };
      return { kind: 'family', family: d.family, params: [logits], paramNames: d.paramNames };
    }
    case 'halves': {
      const e = d.params;
      const lead = e.type.shape.slice(0, -1);
      const half: ValueType = { elem: 'real', shape: [...lead, { c: d.n, terms: {} }] };
      const loc: IrExpr = { op: 'slice', arg: e, from: 0, to: d.n, type: half };
      const raw: IrExpr = { op: 'slice', arg: e, from: d.n, to: 2 * d.n, type: half };
      const scale: IrExpr = {
        op: 'binary',
        fn: 'add',
        left: { op: 'builtin', fn: 'softplus', args: [raw], type: half },
        right: scalar(MIN_SCALE),
        type: half,
      };
      return { kind: 'family', family: d.family, params: [loc, scale], paramNames: d.paramNames };
    }
  }
}

/**
 * Where the rows of `memory` start in a table built from it by `stack` (entries before it, e.g.
 * learned dummies in `stack(dummies, mem)`), so that evaluation can tell which addressed rows are
 * the memory's own. Undefined when the table is not a stack containing the memory.
 */
function rowOffset(table: IrExpr, memory: string): Size | undefined {
  if (table.op === 'ref') return table.name === memory ? { c: 0, terms: {} } : undefined;
  if (table.op !== 'builtin' || table.fn !== 'stack') return undefined;
  let before: Size = { c: 0, terms: {} };
  for (const a of table.args) {
    const inner = rowOffset(a, memory);
    if (inner) return addSize(before, inner);
    before = addSize(before, a.type.shape[0]!);
  }
  return undefined;
}
