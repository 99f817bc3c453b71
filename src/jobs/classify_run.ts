/**
 * `vmm classify RUN --memory FILE --queries FILE`: few-shot classification with a trained
 * memory model on images the user brings, as the VMA paper evaluates it (Bornschein et al. 2017,
 * arXiv:1709.07116, Sec. 4): the memory is one shared set of entries (e.g. one support image per
 * class), and each query is assigned the entry `argmax_a q(a | x, memory)` of the model's
 * amortized address posterior. For each query: that entry, its probability and the top few.
 *
 * Images come through `readImageArray` (image_array.ts) and are binarized as in evaluation: a
 * seeded Bernoulli draw per pixel with probability intensity/255 (`--binarize sample`, the fixed
 * binarization of src/data/binarize.ts, memory image k with id k, query j with id M + j), or
 * thresholding at 1/2 (`--binarize threshold`). Binary images come out unchanged either way.
 * Entries the model appends to the memory itself (learned "dummy" entries) can be chosen too;
 * they are reported as `learned:<k>`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { binarizeFixed } from '../data/binarize.ts';
import { Rng } from '../random/rng.ts';
import { addressPosterior } from '../lower/objective.ts';
import { RunError } from '../diagnostics/errors.ts';
import { bindInputs, type RawBatch } from '../data/bind.ts';
import { loadTrained } from './evaluate_run.ts';
import { readImageArray, type ImageArray } from '../data/image_array.ts';
import type { IrProgram } from '../ir/types.ts';
import type { CompiledModel } from '../lower/compile.ts';

export interface ClassifyOptions {
  memory: string;
  queries: string;
  /** How many entries to list per query. */
  top: number;
  json?: boolean;
  binarize: 'sample' | 'threshold';
  seed: number;
}

export interface Choice {
  /** Memory entry index (0-based; entries >= the file's count are the model's learned entries). */
  entry: number;
  /** The entry's label: the NPZ `labels` value, else its index; `learned:<k>` for learned entries. */
  label: string;
  prob: number;
}

export interface QueryResult extends Choice {
  query: number;
  top: Choice[];
}

/** Binary [count, D] images from 0..255 intensities (see the module comment). */
export function binarizeImages(a: ImageArray, mode: 'sample' | 'threshold', seed: number, firstId: number): Float32Array {
  const D = a.height * a.width;
  if (mode === 'threshold') return Float32Array.from(a.pixels, (v) => (v >= 128 ? 1 : 0));
  return binarizeFixed(a.pixels, seed, { pixelsPerImage: D, maxValue: 255, imageIds: Array.from({ length: a.count }, (_, k) => firstId + k) });
}

/** Classifies every query; calls `emit` with each result in order and returns them all. */
export async function runClassify(runPath: string, o: ClassifyOptions, emit: (r: QueryResult) => void = () => {}): Promise<QueryResult[]> {
  if (o.binarize !== 'sample' && o.binarize !== 'threshold') throw new RunError(`--binarize: expected sample or threshold, got '${String(o.binarize)}'`);
  const { ir, model } = loadTrained(runPath);
  try {
    const b = bindInputs(ir);
    if (!b.memory || !ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) {
      throw new RunError(`${ir.name} has no memory address to classify with (classify needs a model with 'memory' and a 'discrete address')`);
    }
    const mem = readImageArray(o.memory);
    const qs = readImageArray(o.queries);
    for (const [a, path] of [[mem, o.memory], [qs, o.queries]] as const) {
      if (a.height * a.width !== b.dataSize) {
        throw new RunError(`${path}: images of ${a.height}x${a.width} = ${a.height * a.width} pixels, but ${ir.name}'s data '${b.data}' has ${b.dataSize}`);
      }
    }
    const memory = binarizeImages(mem, o.binarize, o.seed, 0);
    const queries = binarizeImages(qs, o.binarize, o.seed, mem.count);
    return await classifyImages(ir, model, memory, queries, { top: o.top, seed: o.seed, ...(mem.labels ? { labels: mem.labels } : {}) }, emit);
  } finally {
    model.dispose();
  }
}

/**
 * The classification itself: binary memory [M, D] and queries [Q, D] (flat, row-major); for each
 * query, argmax q(a | x, memory), its probability and the `top` most probable entries.
 */
export async function classifyImages(
  ir: IrProgram,
  model: CompiledModel,
  memory: Float32Array,
  queries: Float32Array,
  o: { top: number; seed: number; labels?: readonly string[] },
  emit: (r: QueryResult) => void = () => {},
): Promise<QueryResult[]> {
  const b = bindInputs(ir);
  if (!b.memory || !ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) {
    throw new RunError(`${ir.name} has no memory address to classify with (classify needs a model with 'memory' and a 'discrete address')`);
  }
  const D = b.dataSize;
  for (const [what, a] of [['memory', memory], ['queries', queries]] as const) {
    if (a.length === 0 || a.length % D !== 0) throw new RunError(`classify: the ${what} hold ${a.length} values, not a whole number of ${ir.name}'s ${D}-value images`);
  }
  const M = memory.length / D;
  const Q = queries.length / D;
  const label = (i: number) => (i >= M ? `learned:${i - M}` : (o.labels?.[i] ?? String(i)));
  const rng = new Rng(o.seed);
  const results: QueryResult[] = [];
  const chunk = Math.max(1, Math.min(256, Math.floor(4_000_000 / Math.max(1, M))));
  for (let q0 = 0; q0 < Q; q0 += chunk) {
    const n = Math.min(chunk, Q - q0);
    const raw: RawBatch = {
      inputs: [
        { name: b.data, data: queries.subarray(q0 * D, (q0 + n) * D), shape: [n, D], plates: ['batch'] },
        { name: b.memory, data: memory, shape: [M, D], plates: [] },
      ],
    };
    const probs = tf.tidy(() => addressPosterior(ir, model.inputs(raw), model.applyNet, rng));
    const p = (await probs.array()) as number[][]; // asynchronous: any backend, webgpu included
    probs.dispose();
    for (let j = 0; j < n; j++) {
      const row = p[j]!;
      const order = row.map((_, i) => i).sort((x, y) => row[y]! - row[x]! || x - y);
      const top = order.slice(0, Math.max(1, o.top)).map((i) => ({ entry: i, label: label(i), prob: row[i]! }));
      const r: QueryResult = { query: q0 + j, ...top[0]!, top };
      results.push(r);
      emit(r);
    }
  }
  return results;
}

/** One line of text for a result: `query 3: entry 7 (label) p=0.912  top: 7 0.912, 2 0.051, ...` */
export function formatResult(r: QueryResult): string {
  const name = (c: Choice) => (c.label === String(c.entry) ? String(c.entry) : `${c.entry} (${c.label})`);
  return `query ${r.query}: entry ${name(r)} p=${r.prob.toFixed(3)}  top: ${r.top.map((c) => `${name(c)} ${c.prob.toFixed(3)}`).join(', ')}`;
}
