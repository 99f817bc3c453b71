/**
 * `recall`: synthetic associative recall (../synthetic_recall.ts): the model's memory receives
 * the pairs (key bits, then value bits), its observed data input the value to recall, its other
 * data input the query key; N = classes * shots pairs per episode.
 */
import { RunError } from '../../diagnostics/errors.ts';
import type { IrProgram } from '../../ir/types.ts';
import type { DataOptions, RawBatch } from '../bind.ts';
import type { GeneratedDatasetSpec } from '../spec.ts';
import { recallEpisodes, type RecallBatch } from '../synthetic_recall.ts';

export interface RecallBinding {
  memory: string;
  key: string;
  value: string;
  keyBits: number;
  valueBits: number;
  queryWidth: number;
  /** A `real` memory: the pairs and the query carry bits as -1 / +1 (centred, so that distinct keys are nearly orthogonal); the observed value stays 0 / 1. */
  signed: boolean;
  pairs: number;
}

/** Which of the model's inputs receive the pairs, the value and the query key. */
export function recallBinding(ir: IrProgram, opts: DataOptions): RecallBinding {
  const memory = ir.memories[0]?.name;
  const observed = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')?.name;
  const value = ir.data.find((d) => d.name === observed);
  const key = ir.data.find((d) => d.name !== observed && d.type.shape.length === 1);
  if (!memory || !value || !key || value.type.shape.length !== 1) {
    throw new RunError(`${ir.name}: the recall data set needs a memory of pairs, an observed data vector (the value) and another data vector (the query key)`);
  }
  const valueBits = value.type.shape[0]!.c;
  const entry = ir.memories[0]!.type.shape.slice(1);
  const queryWidth = key.type.shape[0]!.c;
  const keyBits = entry.length === 1 ? entry[0]!.c - valueBits : 0;
  if (entry.length !== 1 || keyBits < 1 || (queryWidth !== keyBits && queryWidth !== keyBits + valueBits)) {
    throw new RunError(`${ir.name}: recall memory entries are [K + ${valueBits}] (key bits, then the value's ${valueBits} bits) and the query '${key.name}' is [K] or [K + ${valueBits}] (value bits zero)`);
  }
  const signed = ir.memories[0]!.type.elem === 'real';
  return { memory, key: key.name, value: value.name, keyBits, valueBits, queryWidth, signed, pairs: opts.classes * opts.shots };
}

/** A query of width K + V carries the key bits and zeros where an entry has its value bits. */
export function recallInputs(r: RecallBinding, e: RecallBatch): RawBatch {
  const B = e.batch;
  const sign = (a: Float32Array) => (r.signed ? a.map((x) => 2 * x - 1) : a);
  let keys = sign(e.keys);
  if (r.queryWidth !== r.keyBits) {
    const padded = new Float32Array(B * r.queryWidth);
    for (let b = 0; b < B; b++) padded.set(keys.subarray(b * r.keyBits, (b + 1) * r.keyBits), b * r.queryWidth);
    keys = padded;
  }
  return {
    inputs: [
      { name: r.key, data: keys, shape: [B, r.queryWidth], plates: ['batch'] },
      { name: r.value, data: e.values, shape: [B, r.valueBits], plates: ['batch'] },
      { name: r.memory, data: sign(e.pairs), shape: [B, r.pairs, r.keyBits + r.valueBits], plates: ['batch'] },
    ],
  };
}

export const recallDataset: GeneratedDatasetSpec = {
  name: 'recall',
  kind: 'generated',
  summary: 'synthetic associative recall (Titans, in miniature): a memory of key-value pairs, a query key, the value to recall; generated',
  open(ir, o, stream) {
    const r = recallBinding(ir, o);
    const gen = recallEpisodes({ keyBits: r.keyBits, valueBits: r.valueBits, pairs: r.pairs, seed: o.seed, ...(stream ? { stream } : {}) });
    return {
      next: (n) => recallInputs(r, gen.next(n)),
      state: () => gen.state(),
      setState: (s) => gen.setState(s as ReturnType<typeof gen.state>),
      describe: `synthetic associative recall: ${r.pairs} pairs of ${r.keyBits}-bit keys and ${r.valueBits}-bit values per episode`,
    };
  },
};
