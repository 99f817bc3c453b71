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
import type { IrExpr, IrProgram } from '../ir/types.ts';
import type { CompiledModel } from '../lower/compile.ts';
import { evaluate, type Binding, type EvalContext } from '../lower/evaluate.ts';
import { alignTo } from '../lower/plates.ts';
import { bindInputs } from '../data/bind.ts';
import { splitAddressLogits } from '../lower/address_split.ts';

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

/** Takes the guide's address logits apart into keys and query; a RunError says why a model does not qualify. */
export function addressKeys(ir: IrProgram): AddressKeys {
  const b = bindInputs(ir);
  if (!b.memory) fail(ir, 'it has no memory address');
  const s = splitAddressLogits(ir);
  if (typeof s === 'string') return fail(ir, s);
  return { ...s, data: b.data, dataSize: b.dataSize };
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
