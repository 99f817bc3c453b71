/**
 * The guide's address logits taken apart into keys and a query (issue #26): `q(a | x, M) =
 * softmax_i(key(m_i) · query(x))` (Bornschein et al. 2017, arXiv:1709.07116, Sec. 3:
 * `softmax(h(m_i) · h(x))`). Two users: `vmm index` (src/jobs/address_keys.ts) embeds every entry's
 * key once for a maximum-inner-product index, and training with a shared memory and
 * `address = topk(k, tail)` keeps the keys cached and recomputes the logits of the chosen entries
 * only (src/lower/truncated.ts, the `truncated` handler).
 *
 * What qualifies: the logits are `keys @ query` or `dot(keys, query)` where `keys` ([N, H]) reads
 * one memory (and params, e.g. learned entries stacked on), and `query` ([H]) reads the data only.
 * `keys` must treat the entries row by row (nets, elementwise maths, `stack` / `concat`, slices), so
 * that the keys of a memory are the keys of its parts (its chunks, or gathered rows).
 */
import { builtin } from '../ir/builtins.ts';
import { mapChildren } from '../ir/traverse.ts';
import type { IrExpr, IrProgram, IrSite } from '../ir/types.ts';

export interface AddressSplit {
  /** The address site. */
  address: string;
  /** The memory input whose entries the keys embed. */
  memory: string;
  /** `keys` [N, H] and `query` [H], the guide's `let`s written out. */
  keys: IrExpr;
  query: IrExpr;
  /** Where the memory's rows start in the key table, and how many rows are the model's own (learned entries). */
  offset: number;
  learned: number;
  /** H: the length of a key. */
  dim: number;
}

/** `e` with every `let` of `lets` replaced by its definition. */
function inlineLets(e: IrExpr, lets: ReadonlyMap<string, IrExpr>): IrExpr {
  const go = (x: IrExpr): IrExpr => (x.op === 'ref' && x.ref === 'let' && lets.has(x.name) ? go(lets.get(x.name)!) : mapChildren(x, go));
  return go(e);
}

/** The names `e` reads, by kind, and whether it mixes entries (`why`, the first such operation). */
function reads(e: IrExpr): { refs: Map<string, string>; mixes?: string } {
  const refs = new Map<string, string>();
  let mixes: string | undefined;
  const go = (x: IrExpr): void => {
    switch (x.op) {
      case 'ref':
        refs.set(x.name, x.ref);
        return;
      case 'const':
        return;
      case 'net':
        go(x.arg);
        for (const s of x.skips ?? []) go(s.arg);
        return;
      case 'index':
        mixes ??= 'an indexing';
        go(x.target);
        go(x.index);
        return;
      case 'builtin': {
        // The signature table says which built-ins mix entries (a softmax, a pooling, attention).
        const why = builtin(x.fn)?.mixes;
        if (why) mixes ??= why;
        x.args.forEach(go);
        return;
      }
      case 'matmul':
        mixes ??= "a product '@'";
        go(x.left);
        go(x.right);
        return;
      case 'binary':
        go(x.left);
        go(x.right);
        return;
      case 'unary':
      case 'slice':
        go(x.arg);
        return;
      case 'neural_read':
        mixes ??= 'a neural memory read';
        go(x.arg);
        return;
    }
  };
  go(e);
  return mixes === undefined ? { refs } : { refs, mixes };
}

/** Takes the guide's address logits apart into keys and query; a string says why a model does not qualify. */
export function splitAddressLogits(ir: IrProgram): AddressSplit | string {
  const site = ir.model.find((s): s is IrSite => s.stmt === 'site' && s.role === 'address');
  if (!site) return 'it has no memory address';
  const lets = new Map<string, IrExpr>();
  let g: IrSite | undefined;
  for (const s of ir.guide.stmts) {
    if (s.stmt === 'let') lets.set(s.name, s.value);
    else if (s.name === site.name) {
      g = s;
      break;
    }
  }
  const d = g?.dist;
  if (!d || d.kind !== 'Categorical' || !d.logits) return `the guide's '${site.name}' has no logits`;
  const logits = inlineLets(d.logits, lets);
  const isDot = logits.op === 'builtin' && logits.fn === 'dot';
  if (logits.op !== 'matmul' && !isDot) return `its logits are not a product '@' or 'dot'`;
  const [l, r] = logits.op === 'matmul' ? [logits.left, logits.right] : [logits.args[0]!, logits.args[1]!];
  const pair = l.type.shape.length === 2 && r.type.shape.length === 1 ? [l, r] : isDot && r.type.shape.length === 2 && l.type.shape.length === 1 ? [r, l] : undefined;
  if (!pair) return 'the product is not [N, H] with [H]';
  const [keys, query] = pair as [IrExpr, IrExpr];
  const k = reads(keys);
  const q = reads(query);
  const memories = [...k.refs].filter(([, kind]) => kind === 'memory').map(([n]) => n);
  if (memories.length !== 1) return `the keys read ${memories.length === 0 ? 'no memory' : `several memories (${memories.join(', ')})`}`;
  const bad = [...k.refs].filter(([, kind]) => kind === 'data' || kind === 'site').map(([n]) => n);
  if (bad.length) return `the keys read ${bad.map((n) => `'${n}'`).join(', ')}, which the memory alone does not give`;
  if (k.mixes) return `the keys mix entries (${k.mixes}), so a memory's keys are not the keys of its parts`;
  const qbad = [...q.refs].filter(([, kind]) => kind === 'memory' || kind === 'site').map(([n]) => n);
  if (qbad.length) return `the query reads ${qbad.map((n) => `'${n}'`).join(', ')}, not only the target`;
  const memory = memories[0]!;
  const rows = keys.type.shape[0]!;
  const memSym = ir.memories.find((m) => m.name === memory)?.type.shape[0];
  const symbols = Object.entries(rows.terms).filter(([, c]) => c !== 0);
  if (!memSym || symbols.length !== 1 || symbols[0]![1] !== 1 || Object.keys(memSym.terms).join() !== symbols[0]![0] || memSym.c !== 0) {
    return `the key table's rows are not the memory's entries plus a fixed number of the model's own`;
  }
  const dim = query.type.shape[0]!;
  if (Object.keys(dim.terms).length) return 'the key length depends on the memory size';
  return { address: site.name, memory, keys, query, offset: d.offset?.c ?? 0, learned: rows.c, dim: dim.c };
}
