/**
 * A memory index on disk (issue #26): the keys `key(m_i)` of every entry of a large memory
 * (./address_keys.ts), stored once, and an approximate nearest-neighbour index over them, so that
 * hard addressing `argmax_i key(m_i) · query(x)` (Bornschein et al. 2017, arXiv:1709.07116) reads
 * a few candidates instead of every entry.
 *
 * The index is HNSW (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
 * using Hierarchical Navigable Small World graphs", arXiv:1603.09320) over the keys made equally
 * long by one added coordinate, so that the largest inner product is the smallest angle
 * ({@link augmentKeys}), from the `usearch` package (prebuilt N-API binaries in the npm package; why this library:
 * bench/results/ann.md). It only proposes candidates: their scores are recomputed exactly from the
 * stored keys, so what a query gets is exact among the candidates, and the exact scan (`exact`)
 * reads the same keys.
 *
 * A folder holds:
 *   manifest.json   what was embedded with what (hashes of the model and of the memory file),
 *                   how far the embedding got, and the index's settings
 *   keys.f32        [entries, H] little-endian float32, the memory's keys in file order
 *   learned.f32     [learned, H], the keys of the model's own entries (e.g. learned dummies)
 *   labels.json     the memory file's labels, when it has them
 *   index.usearch   the HNSW graph over keys.f32 then learned.f32 (entry ids 0..entries+learned-1)
 *
 * Building is resumable: keys are appended batch by batch and the manifest records the rows
 * written, so an interrupted build goes on where it stopped; a changed model or memory file (its
 * hash) starts it again from the first entry.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { hostRead } from '../kernels/readback.ts';
import { RunError } from '../diagnostics/errors.ts';
import { Rng } from '../random/rng.ts';

export const INDEX_FORMAT = 'vmm-index/1';
/** HNSW settings: graph degree, and the candidate list while inserting (see bench/results/ann.md). */
export const HNSW = { connectivity: 16, expansionAdd: 128 } as const;

/** What a folder's keys were computed from: a build with other values starts again. */
export interface IndexFingerprint {
  model: { run: string; name: string; sha256: string };
  memory: { path: string; bytes: number; sha256: string; count: number };
  binarize: 'sample' | 'threshold';
  seed: number;
  dim: number;
  learned: number;
}

export interface IndexManifest extends IndexFingerprint {
  format: string;
  /** Memory rows whose keys are in keys.f32. */
  embedded: number;
  labels: boolean;
  /**
   * `metric: 'mips-cos'`: the graph is over the keys with one coordinate added,
   * `sqrt(maxNorm^2 - |k|^2)`, by cosine (see {@link augmentKeys}).
   */
  index?: { library: 'usearch'; version: string; metric: 'mips-cos'; maxNorm: number; connectivity: number; expansionAdd: number; buildS: number };
}

type Usearch = typeof import('usearch').default;
let usearchModule: Usearch | undefined;
/** The usearch package, loaded on first use (only the index commands need its native module). */
export async function loadUsearch(): Promise<Usearch> {
  if (usearchModule) return usearchModule;
  try {
    usearchModule = (await import('usearch')).default;
    return usearchModule;
  } catch (e) {
    throw new RunError(`the memory index needs the 'usearch' package (npm install usearch), which failed to load: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The installed usearch's version (recorded in the manifest): its package.json, found above its entry point. */
function usearchVersion(): string {
  try {
    let d = dirname(createRequire(import.meta.url).resolve('usearch'));
    for (let up = 0; up < 5; up++, d = dirname(d)) {
      const p = join(d, 'package.json');
      if (!existsSync(p)) continue;
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'usearch') return pkg.version;
    }
  } catch {
    /* not installed: loadUsearch says so */
  }
  return 'unknown';
}

const manifestPath = (dir: string) => join(dir, 'manifest.json');

export function readManifest(dir: string): IndexManifest | undefined {
  const p = manifestPath(dir);
  if (!existsSync(p)) return undefined;
  let m: IndexManifest;
  try {
    m = JSON.parse(readFileSync(p, 'utf8')) as IndexManifest;
  } catch (e) {
    throw new RunError(`${p}: not a readable index manifest (${(e as Error).message})`);
  }
  if (m.format !== INDEX_FORMAT) throw new RunError(`${p}: format '${String(m.format)}', expected '${INDEX_FORMAT}' (build the index again with vmm index)`);
  return m;
}

function writeManifest(dir: string, m: IndexManifest): void {
  const tmp = manifestPath(dir) + '.tmp';
  writeFileSync(tmp, JSON.stringify(m, null, 2) + '\n');
  renameSync(tmp, manifestPath(dir));
}

/** What differs between a folder's fingerprint and the wanted one, in words ([] when nothing). */
export function fingerprintChanges(have: IndexFingerprint, want: IndexFingerprint): string[] {
  const out: string[] = [];
  if (have.model.sha256 !== want.model.sha256) out.push(`the model (${want.model.run}) changed`);
  if (have.memory.sha256 !== want.memory.sha256 || have.memory.bytes !== want.memory.bytes) out.push(`the memory file (${want.memory.path}) changed`);
  if (have.binarize !== want.binarize || have.seed !== want.seed) out.push(`the binarization changed (${have.binarize}/${have.seed} -> ${want.binarize}/${want.seed})`);
  if (have.dim !== want.dim || have.learned !== want.learned || have.memory.count !== want.memory.count) out.push('the key shapes changed');
  return out;
}

export interface BuildOptions {
  fingerprint: IndexFingerprint;
  /** Keys of memory rows [start, end): [end - start, H], and the learned entries' keys [learned, H]. */
  embed: (start: number, end: number) => { keys: Float32Array; learned: Float32Array };
  batch: number;
  labels?: readonly string[];
  /** Called after each batch and at each phase. */
  progress?: (p: { phase: 'embed' | 'index'; done: number; total: number; note?: string }) => void;
  /** HNSW threads (0: all cores). */
  threads?: number;
}

export interface BuildResult {
  manifest: IndexManifest;
  /** Rows embedded by this call (0 when everything was already there). */
  embeddedNow: number;
  /** Why an existing folder was started again, if it was. */
  restarted?: string;
  resumedAt: number;
}

/** Embeds the memory into `dir` (resuming what is there) and builds the HNSW index over its keys. */
export async function buildMemoryIndex(dir: string, o: BuildOptions): Promise<BuildResult> {
  const f = o.fingerprint;
  if (!(o.batch >= 1)) throw new RunError(`--batch ${o.batch}: expected a positive number of entries`);
  mkdirSync(dir, { recursive: true });
  let restarted: string | undefined;
  let m = readManifest(dir);
  if (m) {
    const changes = fingerprintChanges(m, f);
    if (changes.length) {
      restarted = changes.join('; ');
      for (const file of ['keys.f32', 'learned.f32', 'labels.json', 'index.usearch']) rmSync(join(dir, file), { force: true });
      m = undefined;
    }
  } else if (existsSync(join(dir, 'keys.f32'))) {
    throw new RunError(`${dir} holds keys.f32 but no manifest.json: not a folder vmm index wrote; give an empty or new --out`);
  }
  const rowBytes = f.dim * 4;
  const keysPath = join(dir, 'keys.f32');
  const fd = openSync(keysPath, existsSync(keysPath) ? 'r+' : 'w+');
  let open = true;
  const close = () => {
    if (open) closeSync(fd);
    open = false;
  };
  let done: number;
  try {
    // Rows on disk past the manifest's count (a batch cut off mid-write) are dropped.
    done = Math.min(m?.embedded ?? 0, Math.floor(fstatSync(fd).size / rowBytes));
    ftruncateSync(fd, done * rowBytes);
    m = {
      format: INDEX_FORMAT,
      ...f,
      embedded: done,
      labels: o.labels !== undefined,
      ...(m?.index?.metric === 'mips-cos' && done === f.memory.count && existsSync(join(dir, 'index.usearch')) ? { index: m.index } : {}),
    };
    if (o.labels) writeFileSync(join(dir, 'labels.json'), JSON.stringify(o.labels));
    writeManifest(dir, m);
    const resumedAt = done;
    const total = f.memory.count;
    while (done < total) {
      const end = Math.min(total, done + o.batch);
      const { keys, learned } = o.embed(done, end);
      if (keys.length !== (end - done) * f.dim || learned.length !== f.learned * f.dim) {
        throw new RunError(`index: the keys of entries ${done}..${end - 1} have ${keys.length} values, not ${(end - done) * f.dim}`);
      }
      if (done === 0 || !existsSync(join(dir, 'learned.f32'))) writeFileSync(join(dir, 'learned.f32'), new Uint8Array(learned.buffer, learned.byteOffset, learned.byteLength));
      writeSync(fd, new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength), 0, keys.byteLength, done * rowBytes);
      done = end;
      m = { ...m, embedded: done };
      delete m.index;
      writeManifest(dir, m);
      o.progress?.({ phase: 'embed', done, total });
    }
    close();
    if (!m.index) {
      o.progress?.({ phase: 'index', done: 0, total: total + f.learned });
      const u = await loadUsearch();
      const all = readKeys(dir, m);
      const t0 = performance.now();
      const { rows, maxNorm } = augmentKeys(all, f.dim);
      const index = new u.Index({ dimensions: f.dim + 1, metric: u.MetricKind.Cos, quantization: u.ScalarKind.F32, connectivity: HNSW.connectivity, expansion_add: HNSW.expansionAdd, expansion_search: 64, multi: false });
      const n = total + f.learned;
      const ids = new BigUint64Array(n);
      for (let i = 0; i < n; i++) ids[i] = BigInt(i);
      index.add(ids, rows, o.threads ?? 0);
      const buildS = (performance.now() - t0) / 1000;
      index.save(join(dir, 'index.usearch.tmp'));
      renameSync(join(dir, 'index.usearch.tmp'), join(dir, 'index.usearch'));
      m = { ...m, index: { library: 'usearch', version: usearchVersion(), metric: 'mips-cos', maxNorm, connectivity: HNSW.connectivity, expansionAdd: HNSW.expansionAdd, buildS } };
      writeManifest(dir, m);
      o.progress?.({ phase: 'index', done: n, total: n });
    }
    return { manifest: m, embeddedNow: done - resumedAt, resumedAt, ...(restarted ? { restarted } : {}) };
  } finally {
    close();
  }
}

/**
 * Maximum inner product search as nearest-neighbour search (Bachrach et al. 2014, "Speeding up the
 * Xbox recommender system using a Euclidean transformation for inner-product spaces", RecSys): each
 * key k gets the coordinate sqrt(maxNorm^2 - |k|^2), so every key has norm maxNorm, and a query q
 * gets 0; then q·k is |q| maxNorm cos(q', k'), and the largest inner products are the smallest
 * angles. A graph index built on raw inner products links entries by a non-metric "distance" (long
 * keys are everyone's neighbours) and misses the best entry where this one does not.
 */
export function augmentKeys(keys: Float32Array, dim: number): { rows: Float32Array; maxNorm: number } {
  const n = keys.length / dim;
  const sq = new Float64Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += keys[i * dim + d]! ** 2;
    sq[i] = s;
    if (s > max) max = s;
  }
  const rows = new Float32Array(n * (dim + 1));
  for (let i = 0; i < n; i++) {
    rows.set(keys.subarray(i * dim, (i + 1) * dim), i * (dim + 1));
    rows[i * (dim + 1) + dim] = Math.sqrt(Math.max(0, max - sq[i]!));
  }
  return { rows, maxNorm: Math.sqrt(max) };
}

/** keys.f32 then learned.f32: [entries + learned, H]. */
function readKeys(dir: string, m: IndexManifest): Float32Array {
  const n = m.memory.count + m.learned;
  const out = new Float32Array(n * m.dim);
  const keys = readFileSync(join(dir, 'keys.f32'));
  if (keys.byteLength !== m.memory.count * m.dim * 4) throw new RunError(`${dir}/keys.f32: ${keys.byteLength} bytes, expected ${m.memory.count * m.dim * 4} (the build did not finish: run vmm index again)`);
  new Uint8Array(out.buffer).set(keys, 0);
  if (m.learned) {
    const l = readFileSync(join(dir, 'learned.f32'));
    if (l.byteLength !== m.learned * m.dim * 4) throw new RunError(`${dir}/learned.f32: ${l.byteLength} bytes, expected ${m.learned * m.dim * 4}`);
    new Uint8Array(out.buffer).set(l, keys.byteLength);
  }
  return out;
}

/** One query's answer: entries by decreasing score (exact scores), and log Z, the log-normalizer of q(a | x). */
export interface SearchHit {
  entries: number[];
  scores: number[];
  /** log sum_i exp(score_i) over all entries: exact for the scan, the log of an unbiased estimate of Z for the index. */
  logZ: number;
}

export interface OpenIndex {
  dir: string;
  manifest: IndexManifest;
  /** [entries + learned, H]. */
  keys: Float32Array;
  labels?: string[];
  /** Rows in the table (memory entries + learned ones). */
  size: number;
  /**
   * ANN: the `candidates` best entries of the index per query, rescored exactly from the stored
   * keys, `top` of them returned; Z estimated as the candidates' sum plus a uniform sample of
   * `tail` other entries scaled to the rest (an unbiased estimate of the rest's sum).
   */
  searchAnn(queries: Float32Array, o: { top: number; candidates: number; tail: number; seed: number; threads?: number }): SearchHit[];
  /** The exact scan: every entry's score (a matrix product on the tfjs backend, in chunks of entries). */
  searchExact(queries: Float32Array, o: { top: number }): SearchHit[];
  dispose(): void;
}

/** Opens a finished index folder. */
export async function openMemoryIndex(dir: string, o: { ann: boolean; candidates?: number; expansionSearch?: number }): Promise<OpenIndex> {
  const m = readManifest(dir);
  if (!m) throw new RunError(`${dir}: no manifest.json (build the index with: vmm index RUN --memory FILE --out ${dir})`);
  if (m.embedded !== m.memory.count || !m.index) {
    throw new RunError(`${dir}: the index is not finished (${m.embedded} of ${m.memory.count} entries embedded${m.embedded === m.memory.count ? ', the graph not built' : ''}); run vmm index again to finish it`);
  }
  if (o.ann && m.index.metric !== 'mips-cos') throw new RunError(`${dir}: a graph of an earlier format (${String(m.index.metric)}); run vmm index again to rebuild it`);
  const keys = readKeys(dir, m);
  const H = m.dim;
  const size = m.memory.count + m.learned;
  const labels = m.labels ? (JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as string[]) : undefined;
  const graphs = new Map<number, InstanceType<Usearch['Index']>>();
  const u = o.ann ? await loadUsearch() : undefined;
  const graph = (ef: number) => {
    // usearch fixes the search breadth when an index is made: one per breadth asked for, each a
    // memory-mapped view of the same file (the pages are shared, nothing is copied).
    let g = graphs.get(ef);
    if (g) return g;
    g = new u!.Index({ dimensions: H + 1, metric: u!.MetricKind.Cos, quantization: u!.ScalarKind.F32, connectivity: m.index!.connectivity, expansion_add: m.index!.expansionAdd, expansion_search: ef, multi: false });
    g.view(join(dir, 'index.usearch'));
    if (g.size() !== size) throw new RunError(`${dir}/index.usearch: ${g.size()} entries, the manifest says ${size}; run vmm index again`);
    graphs.set(ef, g);
    return g;
  };
  /** HNSW's search breadth for C candidates: at least 64, and twice the candidates. */
  const breadth = (C: number) => o.expansionSearch ?? Math.max(64, 2 * C);
  // The graph is loaded here, not in the first search (whose time `vmm classify` reports).
  if (o.ann) graph(breadth(Math.min(size, o.candidates ?? 32)));
  const dot = (q: Float32Array, qo: number, i: number) => {
    let s = 0;
    const r = i * H;
    for (let d = 0; d < H; d++) s += keys[r + d]! * q[qo + d]!;
    return s;
  };
  const logSumExp = (xs: number[]) => {
    let mx = -Infinity;
    for (const x of xs) if (x > mx) mx = x;
    let s = 0;
    for (const x of xs) s += Math.exp(x - mx);
    return mx + Math.log(s);
  };
  return {
    dir,
    manifest: m,
    keys,
    ...(labels ? { labels } : {}),
    size,
    searchAnn(queries, s) {
      const nq = queries.length / H;
      const C = Math.min(size, Math.max(s.candidates, s.top));
      const idx = graph(breadth(C));
      // A flat array of several queries is searched as a batch (BatchMatches, with a count per query).
      const padded = new Float32Array(nq * (H + 1)); // queries get 0 in the added coordinate (augmentKeys)
      for (let q = 0; q < nq; q++) padded.set(queries.subarray(q * H, (q + 1) * H), q * (H + 1));
      const found = idx.search(padded, C, s.threads ?? 0) as { keys: BigUint64Array; counts?: BigUint64Array };
      const rng = new Rng(s.seed);
      const hits: SearchHit[] = [];
      for (let q = 0; q < nq; q++) {
        const qo = q * H;
        const got = found.counts ? Number(found.counts[q]) : found.keys.length;
        const cand: number[] = [];
        for (let j = 0; j < got; j++) cand.push(Number(found.keys[q * C + j]));
        const scores = cand.map((i) => dot(queries, qo, i));
        const order = cand.map((_, j) => j).sort((a, b) => scores[b]! - scores[a]! || cand[a]! - cand[b]!);
        // Z = sum over the candidates + (rest / tail) * sum over a uniform sample of the rest.
        const rest = size - cand.length;
        const tailScores: number[] = [];
        if (rest > 0 && s.tail > 0) {
          const taken = new Set(cand);
          const want = Math.min(s.tail, rest);
          const seen = new Set<number>();
          while (tailScores.length < want) {
            const i = rng.int(size);
            if (taken.has(i) || seen.has(i)) continue;
            seen.add(i);
            tailScores.push(dot(queries, qo, i));
          }
        }
        const parts = [...scores];
        if (tailScores.length) parts.push(logSumExp(tailScores) + Math.log(rest / tailScores.length));
        hits.push({ entries: order.slice(0, s.top).map((j) => cand[j]!), scores: order.slice(0, s.top).map((j) => scores[j]!), logZ: logSumExp(parts) });
      }
      return hits;
    },
    searchExact(queries, s) {
      const nq = queries.length / H;
      const top = Math.min(size, s.top);
      const chunk = Math.max(top, Math.min(size, Math.floor(2 ** 24 / Math.max(1, nq))));
      const best: { e: number; s: number }[][] = Array.from({ length: nq }, () => []);
      const lse = new Float64Array(nq).fill(-Infinity);
      const qt = tf.tensor2d(queries, [nq, H]);
      try {
        for (let a = 0; a < size; a += chunk) {
          const n = Math.min(chunk, size - a);
          const [vals, ids, z] = tf.tidy(() => {
            const k = tf.tensor2d(keys.subarray(a * H, (a + n) * H), [n, H]);
            const sc = tf.matMul(qt, k, false, true);
            const t = tf.topk(sc, Math.min(top, n));
            return [t.values, t.indices, tf.logSumExp(sc, 1)];
          });
          const v = hostRead(vals, 'the exact top-k scan', 'run `vmm index` and `vmm classify --index` on cpu or wasm (--backend wasm)');
          const ix = hostRead(ids, 'the exact top-k scan');
          const zz = hostRead(z, 'the exact top-k scan');
          tf.dispose([vals, ids, z]);
          const kk = Math.min(top, n);
          for (let q = 0; q < nq; q++) {
            const l = lse[q]!;
            const c = zz[q]!;
            const mx = Math.max(l, c);
            lse[q] = mx + Math.log(Math.exp(l - mx) + Math.exp(c - mx));
            const list = best[q]!;
            for (let j = 0; j < kk; j++) list.push({ e: a + ix[q * kk + j]!, s: v[q * kk + j]! });
            list.sort((x, y) => y.s - x.s || x.e - y.e);
            list.length = Math.min(list.length, top);
          }
        }
      } finally {
        qt.dispose();
      }
      // The scores again from the stored keys in float64 sums, as the ANN path computes them.
      return best.map((list, q) => {
        const scores = list.map((x) => dot(queries, q * H, x.e));
        const order = list.map((_, j) => j).sort((a, b) => scores[b]! - scores[a]! || list[a]!.e - list[b]!.e);
        return { entries: order.map((j) => list[j]!.e), scores: order.map((j) => scores[j]!), logZ: lse[q]! };
      });
    },
    dispose() {
      graphs.clear();
    },
  };
}

/** SHA-256 of `extra` and the contents of files (in order, not their names), read in 16 MiB pieces. */
export function hashFiles(paths: readonly string[], extra = ''): string {
  const h = createHash('sha256');
  h.update(extra);
  const buf = new Uint8Array(16 << 20);
  for (const p of paths) {
    const fd = openSync(p, 'r');
    try {
      const size = statSync(p).size;
      h.update(`${size}:`);
      for (let off = 0; off < size; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - off), off);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
        off += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return h.digest('hex');
}
