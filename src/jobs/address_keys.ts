/**
 * The addressing nets of a trained model, taken apart for large memories (issue #26): the guide's
 * address posterior `q(a | x, M) = softmax_i(key(m_i) · query(x))` (Bornschein et al. 2017,
 * arXiv:1709.07116, Sec. 3: `softmax(h(m_i) · h(x))`) is a maximum-inner-product problem once every
 * entry's key is computed: keys are embedded once (`vmm index`), queries per target, and an index
 * finds the largest scores without touching every entry.
 *
 * What qualifies: the guide's address logits are `keys @ query` or `dot(keys, query)` where
 * `keys` ([N, H]) reads the memory (and params, e.g. learned entries stacked on), and `query`
 * ([H]) reads the data only. `keys` must treat the entries row by row (nets, elementwise maths,
 * `stack` / `concat`, slices), so that the keys of a memory are the keys of its chunks: that is
 * what lets a memory of a million entries be embedded in batches. Entries the model appends
 * itself (`stack(mem, dummies)`) are the table's rows outside the memory's; they are embedded once.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hostRead } from '../kernels/readback.ts';
import { RunError } from '../diagnostics/errors.ts';
import { builtin } from '../ir/builtins.ts';
import { mapChildren } from '../ir/traverse.ts';
import type { IrExpr, IrProgram, IrSite } from '../ir/types.ts';
import type { CompiledModel } from '../lower/compile.ts';
import { evaluate, type Binding, type EvalContext } from '../lower/evaluate.ts';
import { alignTo } from '../lower/plates.ts';
import { bindInputs } from '../data/bind.ts';

export interface AddressKeys {
  /** The address site. */
  address: string;
  /** The memory input whose entries the keys embed, and the data input the query reads. */
  memory: string;
  data: string;
  /** Pixels per image (memory entries and targets alike). */
  dataSize: number;
  /** `keys` [N, H] and `query` [H], `let`s of the guide written out. */
  keys: IrExpr;
  query: IrExpr;
  /** Where the memory's rows start in the key table, and how many rows are the model's own (learned entries). */
  offset: number;
  learned: number;
  /** H: the length of a key. */
  dim: number;
}

const fail = (ir: IrProgram, why: string): never => {
  throw new RunError(
    `${ir.name}: a memory index needs the guide's address logits as 'keys(memory) @ query(x)' (e.g. 'a ~ Categorical(logits: h(mem) @ h(x))'); ${why}`,
  );
};

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

/** Takes the guide's address logits apart into keys and query; a RunError says why a model does not qualify. */
export function addressKeys(ir: IrProgram): AddressKeys {
  const b = bindInputs(ir);
  const site = ir.model.find((s): s is IrSite => s.stmt === 'site' && s.role === 'address');
  if (!site || !b.memory) fail(ir, 'it has no memory address');
  const lets = new Map<string, IrExpr>();
  let g: IrSite | undefined;
  for (const s of ir.guide.stmts) {
    if (s.stmt === 'let') lets.set(s.name, s.value);
    else if (s.name === site!.name) {
      g = s;
      break;
    }
  }
  const d = g?.dist;
  if (!d || d.kind !== 'Categorical' || !d.logits) return fail(ir, `the guide's '${site!.name}' has no logits`);
  const logits = inlineLets(d.logits, lets);
  const isDot = logits.op === 'builtin' && logits.fn === 'dot';
  if (logits.op !== 'matmul' && !isDot) return fail(ir, `its logits are not a product '@' or 'dot'`);
  const [l, r] = logits.op === 'matmul' ? [logits.left, logits.right] : [logits.args[0]!, logits.args[1]!];
  const [keys, query] = l.type.shape.length === 2 && r.type.shape.length === 1 ? [l, r] : isDot && r.type.shape.length === 2 && l.type.shape.length === 1 ? [r, l] : fail(ir, 'the product is not [N, H] with [H]');
  const k = reads(keys);
  const q = reads(query);
  const memories = [...k.refs].filter(([, kind]) => kind === 'memory').map(([n]) => n);
  if (memories.length !== 1) fail(ir, `the keys read ${memories.length === 0 ? 'no memory' : `several memories (${memories.join(', ')})`}`);
  const bad = [...k.refs].filter(([, kind]) => kind === 'data' || kind === 'site').map(([n]) => n);
  if (bad.length) fail(ir, `the keys read ${bad.map((n) => `'${n}'`).join(', ')}, which the memory alone does not give`);
  if (k.mixes) fail(ir, `the keys mix entries (${k.mixes}), so a memory's keys are not the keys of its parts`);
  const qbad = [...q.refs].filter(([, kind]) => kind === 'memory' || kind === 'site').map(([n]) => n);
  if (qbad.length) fail(ir, `the query reads ${qbad.map((n) => `'${n}'`).join(', ')}, not only the target`);
  const memory = memories[0]!;
  const rows = keys.type.shape[0]!;
  const memSym = ir.memories.find((m) => m.name === memory)?.type.shape[0];
  const symbols = Object.entries(rows.terms).filter(([, c]) => c !== 0);
  if (!memSym || symbols.length !== 1 || symbols[0]![1] !== 1 || Object.keys(memSym.terms).join() !== symbols[0]![0] || memSym.c !== 0) {
    fail(ir, `the key table's rows are not the memory's entries plus a fixed number of the model's own`);
  }
  const dim = query.type.shape[0]!;
  if (Object.keys(dim.terms).length) fail(ir, 'the key length depends on the memory size');
  return { address: site!.name, memory, data: b.data, dataSize: b.dataSize, keys, query, offset: d.offset?.c ?? 0, learned: rows.c, dim: dim.c };
}

function paramsEnv(ir: IrProgram, model: CompiledModel): Map<string, Binding> {
  const env = new Map<string, Binding>();
  for (const p of ir.params) env.set(p.name, { t: model.variables.get(`param/${p.name}`)!, plates: [] });
  return env;
}

/**
 * Keys of `n` memory entries (`rows`, [n, D] flat): [n, H] for the entries and [learned, H] for
 * the model's own entries (the same for every chunk).
 */
export function embedKeys(ir: IrProgram, model: CompiledModel, a: AddressKeys, rows: Float32Array): { keys: Float32Array; learned: Float32Array } {
  const n = rows.length / a.dataSize;
  if (!Number.isInteger(n) || n < 1) throw new RunError(`embedKeys: ${rows.length} values are not whole ${a.dataSize}-pixel entries`);
  const [mine, own] = tf.tidy(() => {
    const env = paramsEnv(ir, model);
    env.set(a.memory, { t: tf.tensor2d(rows, [n, a.dataSize]), plates: [] });
    const ctx: EvalContext = { env, applyNet: model.applyNet, cache: new Map() };
    const v = evaluate(a.keys, ctx);
    if (v.plates.length || v.t.shape.length !== 2 || v.t.shape[0] !== n + a.learned || v.t.shape[1] !== a.dim) {
      throw new RunError(`embedKeys: the keys of ${n} entries came out as [${v.t.shape}], not [${n + a.learned}, ${a.dim}]`);
    }
    const t = v.t as tf.Tensor2D;
    const before = tf.slice(t, [0, 0], [a.offset, a.dim]);
    const after = tf.slice(t, [a.offset + n, 0], [a.learned - a.offset, a.dim]);
    return [tf.slice(t, [a.offset, 0], [n, a.dim]), tf.concat([before, after], 0)];
  });
  const out = { keys: hostRead(mine, 'embedKeys', 'run `vmm index` and `vmm classify --index` on cpu or wasm (--backend wasm)') as Float32Array, learned: hostRead(own, 'embedKeys') as Float32Array };
  tf.dispose([mine, own]);
  return out;
}

/** Queries of `n` targets ([n, D] flat): [n, H]. */
export function embedQueries(ir: IrProgram, model: CompiledModel, a: AddressKeys, rows: Float32Array): Float32Array {
  const n = rows.length / a.dataSize;
  if (!Number.isInteger(n) || n < 1) throw new RunError(`embedQueries: ${rows.length} values are not whole ${a.dataSize}-pixel images`);
  const q = tf.tidy(() => {
    const env = paramsEnv(ir, model);
    env.set(a.data, { t: tf.tensor2d(rows, [n, a.dataSize]), plates: ['batch'] });
    const v = evaluate(a.query, { env, applyNet: model.applyNet, cache: new Map() });
    return alignTo(v, ['batch'], undefined, { batch: n });
  });
  const out = hostRead(q, 'embedQueries', 'run `vmm index` and `vmm classify --index` on cpu or wasm (--backend wasm)') as Float32Array;
  q.dispose();
  return out;
}
