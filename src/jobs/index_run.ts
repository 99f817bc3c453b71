/**
 * `vmm index RUN --memory FILE --out DIR` and `vmm classify RUN --index DIR --queries FILE`
 * (issue #26): hard addressing over a memory too large to score entry by entry per query. The
 * index embeds every entry once with the run's addressing nets (./address_keys.ts) and stores the
 * keys and an HNSW graph (./ann_index.ts); classification embeds the queries, takes the index's
 * candidates and scores them exactly (or, `--exact`, scans every stored key).
 *
 * Images are read and binarized as `vmm classify --memory` does (./classify_run.ts): memory image
 * k with id k, query j with id M + j, so the same files give the same binary images either way.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { binarizeFixed } from '../data/binarize.ts';
import { RunError } from '../diagnostics/errors.ts';
import { addressKeys, embedKeys, embedQueries } from './address_keys.ts';
import { buildMemoryIndex, fingerprintChanges, hashFiles, openMemoryIndex, readManifest, type BuildResult, type IndexFingerprint } from './ann_index.ts';
import type { Choice, QueryResult } from './classify_run.ts';
import { loadTrained } from './evaluate_run.ts';
import { readImageArray, type ImageArray } from '../data/image_array.ts';
import { openImageRows, type ImageRows } from '../data/image_rows.ts';

export interface IndexOptions {
  memory: string;
  out: string;
  /** Entries embedded per batch (one write to keys.f32 and the manifest each). */
  batch: number;
  binarize: 'sample' | 'threshold';
  seed: number;
  threads?: number;
  progress?: (p: { phase: 'embed' | 'index'; done: number; total: number }) => void;
}

/** Binary rows [start, end) of `a` as the model reads them (ids firstId + k, as classify_run.ts). */
function binaryRows(a: ImageArray | ImageRows, start: number, end: number, mode: 'sample' | 'threshold', seed: number, firstId: number): Float32Array {
  const D = a.height * a.width;
  const px = 'rows' in a ? a.rows(start, end) : a.pixels.subarray(start * D, end * D);
  if (mode === 'threshold') return Float32Array.from(px, (v) => (v >= 128 ? 1 : 0));
  return binarizeFixed(px, seed, { pixelsPerImage: D, maxValue: 255, imageIds: Array.from({ length: end - start }, (_, k) => firstId + start + k) });
}

/** The hash that says which weights (and model text) a run's keys come from. */
function modelHash(weights: string, source: string): string {
  const files = readdirSync(weights)
    .map((f) => join(weights, f))
    .filter((p) => statSync(p).isFile())
    .sort();
  return hashFiles(files, source);
}

function checkMode(mode: string): void {
  if (mode !== 'sample' && mode !== 'threshold') throw new RunError(`--binarize: expected sample or threshold, got '${mode}'`);
}

/** Embeds a memory file into an index folder (resumable; see ann_index.ts). */
export async function runIndex(runPath: string, o: IndexOptions): Promise<BuildResult> {
  checkMode(o.binarize);
  const { ir, model, config, weights } = loadTrained(runPath);
  const cleanup: (() => void)[] = [];
  try {
    const a = addressKeys(ir);
    // Read by rows where the file allows it (a .npy of bytes): a memory need not fit in memory as floats.
    const mem = openImageRows(o.memory);
    cleanup.push(() => mem.close());
    if (mem.height * mem.width !== a.dataSize) {
      throw new RunError(`${o.memory}: images of ${mem.height}x${mem.width} = ${mem.height * mem.width} pixels, but ${ir.name}'s data '${a.data}' has ${a.dataSize}`);
    }
    const fingerprint: IndexFingerprint = {
      model: { run: resolve(runPath), name: ir.name, sha256: modelHash(weights, config.source) },
      memory: { path: resolve(o.memory), bytes: statSync(o.memory).size, sha256: hashFiles([o.memory]), count: mem.count },
      binarize: o.binarize,
      seed: o.seed,
      dim: a.dim,
      learned: a.learned,
    };
    return await buildMemoryIndex(o.out, {
      fingerprint,
      batch: o.batch,
      embed: (start, end) => embedKeys(ir, model, a, binaryRows(mem, start, end, o.binarize, o.seed, 0)),
      ...(mem.labels ? { labels: mem.labels } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
    });
  } finally {
    for (const c of cleanup) c();
    model.dispose();
  }
}

export interface IndexClassifyOptions {
  index: string;
  queries: string;
  top: number;
  exact?: boolean;
  /** ANN: candidates taken from the index per query (then scored exactly). */
  candidates: number;
  /** ANN: entries outside the candidates sampled to estimate the normalizer of q(a | x). */
  tail: number;
  binarize: 'sample' | 'threshold';
  seed: number;
  threads?: number;
}

/** The last line of `vmm classify --index --json`. */
export interface IndexSummary {
  queries: number;
  entries: number;
  index: 'ann' | 'exact';
  /** The search itself: the index (or the scan) and the exact scores, not start-up or embedding the queries. */
  search_ms: number;
}

/**
 * Classifies every query against an index folder: the entry argmax_a q(a | x, memory) and the
 * `top` most probable, with q(a | x) = exp(score - log Z) (log Z exact for `--exact`, estimated
 * from the candidates and a uniform sample of the rest otherwise).
 */
export async function runClassifyIndex(runPath: string, o: IndexClassifyOptions, emit: (r: QueryResult) => void = () => {}): Promise<{ results: QueryResult[]; summary: IndexSummary }> {
  checkMode(o.binarize);
  const { ir, model, config, weights } = loadTrained(runPath);
  try {
    const a = addressKeys(ir);
    const m = readManifest(o.index);
    if (!m) throw new RunError(`${o.index}: no manifest.json (build the index with: vmm index ${runPath} --memory FILE --out ${o.index})`);
    const want = { ...m, model: { ...m.model, sha256: modelHash(weights, config.source) }, dim: a.dim, learned: a.learned };
    const changed = fingerprintChanges(m, want);
    if (changed.length) {
      throw new RunError(`${o.index} was built from other weights than ${runPath}'s (${changed.join('; ')}): build it again with vmm index ${runPath} --memory ${m.memory.path} --out ${o.index}`);
    }
    const qs = readImageArray(o.queries);
    if (qs.height * qs.width !== a.dataSize) {
      throw new RunError(`${o.queries}: images of ${qs.height}x${qs.width} = ${qs.height * qs.width} pixels, but ${ir.name}'s data '${a.data}' has ${a.dataSize}`);
    }
    const M = m.memory.count;
    const Q = qs.count;
    const H = a.dim;
    const q = new Float32Array(Q * H);
    for (let s = 0; s < Q; s += 1024) {
      const e = Math.min(Q, s + 1024);
      q.set(embedQueries(ir, model, a, binaryRows(qs, s, e, o.binarize, o.seed, M)), s * H);
    }
    const ix = await openMemoryIndex(o.index, { ann: !o.exact, candidates: o.candidates });
    const top = Math.max(1, o.top);
    const search = (x: Float32Array) =>
      o.exact ? ix.searchExact(x, { top }) : ix.searchAnn(x, { top, candidates: o.candidates, tail: o.tail, seed: o.seed, ...(o.threads !== undefined ? { threads: o.threads } : {}) });
    search(q.subarray(0, H)); // warm-up (first kernels of the backend, pages of the graph): start-up, not search
    const t0 = performance.now();
    const hits = search(q);
    const searchMs = performance.now() - t0;
    ix.dispose();
    const label = (i: number) => (i >= M ? `learned:${i - M}` : (ix.labels?.[i] ?? String(i)));
    const results: QueryResult[] = hits.map((h, j) => {
      const choices: Choice[] = h.entries.map((e, k) => ({ entry: e, label: label(e), prob: Math.exp(h.scores[k]! - h.logZ) }));
      const r: QueryResult = { query: j, ...choices[0]!, top: choices };
      emit(r);
      return r;
    });
    return { results, summary: { queries: Q, entries: ix.size, index: o.exact ? 'exact' : 'ann', search_ms: Math.round(searchMs * 1000) / 1000 } };
  } finally {
    model.dispose();
  }
}
