/**
 * Approximate nearest-neighbour (maximum inner product) index libraries compared for issue #26:
 * build time, memory, recall@10 against an exact scan and queries/s, at 10^5 and 10^6 entries of
 * 128-d float vectors. One library and one size per process, so each row's memory is its own:
 *
 *   node bin/run-ts.mjs bench/ann.ts --lib usearch --n 100000 [--data gauss|clustered]
 *       [--queries 1000] [--modules DIR] [--out rows.jsonl]
 *
 * `--lib`: usearch (HNSW, prebuilt N-API binary in the npm package), lancedb (IVF-PQ and HNSW-SQ
 * indexes of @lancedb/lancedb, an embedded on-disk vector database), exact (the plain JavaScript
 * scan `vmm classify --index DIR --exact` uses), soft (soft attention's read: every score, the
 * softmax and the weighted sum of every entry, the cost an index cannot remove). `--modules DIR`: a folder whose node_modules holds
 * the library (to measure candidates installed in a scratch folder, not in the project).
 *
 * Data (seeded, so every library sees the same vectors): `gauss`, i.i.d. N(0, 1) coordinates, the
 * hardest case for a graph index (no structure to exploit); `clustered`, N/100 centres N(0, 1) with
 * entries centre + N(0, 0.5^2) and queries drawn the same way: closer to learned embeddings of a
 * memory of classes. The score is the inner product (the guide's `h(mem) @ h(x)`), so the indexes
 * search by inner product. Recall@10: the fraction of the exact top 10 (ground truth from the
 * exact scan over the same queries) that the index returns among its 10.
 *
 * `--data keys:DIR --query-keys DIR2`: the keys of a real memory and of queries, from `vmm index`
 * folders (e.g. Omniglot through pretrained/vma_omniglot's h, bench/omniglot_memory.ts).
 *
 * Results: bench/results/ann.md.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
function flag(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}
const lib = flag('lib', 'usearch');
const N = Number(flag('n', '100000'));
const dataKind = flag('data', 'gauss');
const NQ = Number(flag('queries', '1000'));
const modules = resolve(flag('modules', '.'));
const out = flag('out', '');
/** usearch: `mips-cos`, the keys with one added coordinate searched by cosine (what vmm index builds, src/jobs/ann_index.ts augmentKeys), or `ip`, raw inner products. */
const metric = flag('metric', 'mips-cos');
/** lancedb: which of its indexes to build (comma separated). */
const lanceIndexes = flag('indexes', 'ivf_pq,hnsw_sq').split(',');
const DIM = 128;
const K = 10;

/** Seeded N(0, 1) draws (mulberry32 + Box-Muller): the same data in every process. */
function gaussians(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const a = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u() + 1e-12));
    const th = 2 * Math.PI * u();
    a[i] = r * Math.cos(th);
    if (i + 1 < count) a[i + 1] = r * Math.sin(th);
  }
  return a;
}

function makeData(n: number, seed: number, centres?: Float32Array): Float32Array {
  const x = gaussians(n * DIM, seed);
  if (dataKind === 'gauss' || !centres) return x;
  const C = centres.length / DIM;
  const pick = gaussians(n, seed + 7);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(Math.abs(pick[i]! * 1e4)) % C;
    for (let d = 0; d < DIM; d++) x[i * DIM + d] = centres[c * DIM + d]! + 0.5 * x[i * DIM + d]!;
  }
  return x;
}

/** `--data keys:DIR --query-keys DIR2`: real keys from `vmm index` folders (keys.f32), the first N of DIR and NQ of DIR2. */
function readKeys(dir: string, n: number): Float32Array {
  const b = readFileSync(join(dir, 'keys.f32'));
  const all = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  if (all.length < n * DIM) throw new Error(`${dir}/keys.f32 has ${all.length / DIM} keys of ${DIM}, fewer than ${n}`);
  return all.slice(0, n * DIM);
}
const centres = dataKind === 'clustered' ? gaussians(Math.max(1, Math.floor(N / 100)) * DIM, 99) : undefined;
const data = dataKind.startsWith('keys:') ? readKeys(dataKind.slice(5), N) : makeData(N, 1, centres);
const queries = dataKind.startsWith('keys:') ? readKeys(flag('query-keys', ''), NQ) : makeData(NQ, 2, centres);

/** Exact top-k by inner product: the plain JavaScript scan (one query at a time over all rows). */
function exactTopK(q: Float32Array, qi: number, k: number): Int32Array {
  const best = new Float32Array(k).fill(-Infinity);
  const ids = new Int32Array(k).fill(-1);
  const o = qi * DIM;
  for (let i = 0; i < N; i++) {
    let s = 0;
    const r = i * DIM;
    for (let d = 0; d < DIM; d++) s += data[r + d]! * q[o + d]!;
    if (s > best[k - 1]!) {
      let j = k - 1;
      while (j > 0 && best[j - 1]! < s) {
        best[j] = best[j - 1]!;
        ids[j] = ids[j - 1]!;
        j--;
      }
      best[j] = s;
      ids[j] = i;
    }
  }
  return ids;
}

const rss = () => process.memoryUsage().rss / 2 ** 20;
function dirSize(p: string): number {
  let s = 0;
  for (const f of readdirSync(p, { withFileTypes: true })) s += f.isDirectory() ? dirSize(join(p, f.name)) : statSync(join(p, f.name)).size;
  return s;
}

async function load(name: string): Promise<any> {
  const req = createRequire(join(modules, 'package.json'));
  return import(pathToFileURL(req.resolve(name)).href);
}

/** Ground truth for the queries: usearch's SIMD exact scan where usearch is at hand (checked against the JS scan on 20 queries), else the JS scan. */
async function groundTruth(): Promise<Int32Array[]> {
  const t0 = performance.now();
  let truth: Int32Array[];
  try {
    const u = (await load('usearch')).default;
    const m = u.exactSearch(data, queries, DIM, K, u.MetricKind.IP);
    truth = Array.from({ length: NQ }, (_, i) => Int32Array.from(m.keys.subarray(i * K, (i + 1) * K), (x: bigint) => Number(x)));
    for (let i = 0; i < Math.min(20, NQ); i++) {
      const js = exactTopK(queries, i, K);
      if (js[0] !== truth[i]![0]) throw new Error(`ground truth: usearch's exact scan and the JS scan disagree on query ${i}`);
    }
  } catch (e) {
    if ((e as Error).message.startsWith('ground truth')) throw e;
    truth = Array.from({ length: NQ }, (_, i) => exactTopK(queries, i, K));
  }
  process.stderr.write(`ground truth for ${NQ} queries: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return truth;
}

function recall(truth: Int32Array[], got: (i: number) => ArrayLike<number>): { recall10: number; top1: number } {
  let hit = 0;
  let top1 = 0;
  for (let i = 0; i < truth.length; i++) {
    const g = new Set(Array.from(got(i)));
    for (const t of truth[i]!) if (g.has(t)) hit++;
    if (got(i)[0] === truth[i]![0]) top1++;
  }
  return { recall10: hit / (truth.length * K), top1: top1 / truth.length };
}

interface Row {
  lib: string;
  variant: string;
  n: number;
  data: string;
  buildS: number;
  rssMB: number;
  diskMB?: number;
  recall10: number;
  top1: number;
  qps: number;
  threads: number;
}
const rows: Row[] = [];
function emit(r: Row): void {
  rows.push(r);
  const line = JSON.stringify(r);
  process.stdout.write(line + '\n');
  if (out) appendFileSync(out, line + '\n');
}

const base = rss();
if (lib === 'exact') {
  const nq = Math.min(NQ, N >= 1e6 ? 50 : 200);
  const t0 = performance.now();
  for (let i = 0; i < nq; i++) exactTopK(queries, i, K);
  const s = (performance.now() - t0) / 1000;
  emit({ lib: 'exact-js', variant: 'scan', n: N, data: dataKind, buildS: 0, rssMB: rss() - base, recall10: 1, top1: 1, qps: nq / s, threads: 1 });
  try {
    const u = (await load('usearch')).default;
    const t1 = performance.now();
    u.exactSearch(data, queries, DIM, K, u.MetricKind.IP, 1);
    emit({ lib: 'exact-usearch-simd', variant: 'exactSearch', n: N, data: dataKind, buildS: 0, rssMB: rss() - base, recall10: 1, top1: 1, qps: NQ / ((performance.now() - t1) / 1000), threads: 1 });
  } catch {
    /* usearch not at hand */
  }
} else if (lib === 'soft') {
  // Soft attention's read, the baseline an index cannot speed up: every entry's score, the softmax
  // over all of them, and the weighted sum of every entry's value (values: the same 128-d rows).
  // Same footing as the exact-js scan (plain JavaScript, one query at a time, one thread).
  const nq = Math.min(NQ, N >= 1e6 ? 20 : 100);
  const w = new Float32Array(N);
  const read = new Float32Array(DIM);
  const t0 = performance.now();
  for (let qi = 0; qi < nq; qi++) {
    const o = qi * DIM;
    let mx = -Infinity;
    for (let i = 0; i < N; i++) {
      let sc = 0;
      const r = i * DIM;
      for (let d = 0; d < DIM; d++) sc += data[r + d]! * queries[o + d]!;
      w[i] = sc;
      if (sc > mx) mx = sc;
    }
    let z = 0;
    for (let i = 0; i < N; i++) z += w[i] = Math.exp(w[i]! - mx);
    read.fill(0);
    for (let i = 0; i < N; i++) {
      const wi = w[i]! / z;
      const r = i * DIM;
      for (let d = 0; d < DIM; d++) read[d] += wi * data[r + d]!;
    }
  }
  const s = (performance.now() - t0) / 1000;
  emit({ lib: 'soft-read-js', variant: 'scores + softmax + weighted sum of all entries', n: N, data: dataKind, buildS: 0, rssMB: rss() - base, recall10: 1, top1: 1, qps: nq / s, threads: 1 });
} else if (lib === 'usearch') {
  const u = (await load('usearch')).default;
  const truth = await groundTruth();
  const before = rss();
  const mips = metric === 'mips-cos';
  const dims = mips ? DIM + 1 : DIM;
  const kind = mips ? u.MetricKind.Cos : u.MetricKind.IP;
  const pad = (x: Float32Array, extra: (i: number) => number) => {
    const n = x.length / DIM;
    const y = new Float32Array(n * (DIM + 1));
    for (let i = 0; i < n; i++) {
      y.set(x.subarray(i * DIM, (i + 1) * DIM), i * (DIM + 1));
      y[i * (DIM + 1) + DIM] = extra(i);
    }
    return y;
  };
  const t0 = performance.now();
  let rows = data;
  let qs = queries;
  if (mips) {
    const sq = Float64Array.from({ length: N }, (_, i) => {
      let s = 0;
      for (let d = 0; d < DIM; d++) s += data[i * DIM + d]! ** 2;
      return s;
    });
    let max = 0;
    for (const v of sq) if (v > max) max = v;
    rows = pad(data, (i) => Math.sqrt(max - sq[i]!));
    qs = pad(queries, () => 0);
  }
  const idx = new u.Index({ dimensions: dims, metric: kind, quantization: u.ScalarKind.F32, connectivity: 16, expansion_add: 128, expansion_search: 64, multi: false });
  const keys = new BigUint64Array(N);
  for (let i = 0; i < N; i++) keys[i] = BigInt(i);
  idx.add(keys, rows, 2);
  const buildS = (performance.now() - t0) / 1000;
  const mem = rss() - before;
  const dir = mkdtempSync(join(tmpdir(), 'ann-usearch-'));
  idx.save(join(dir, 'index.usearch'));
  const diskMB = dirSize(dir) / 2 ** 20;
  rmSync(dir, { recursive: true, force: true });
  for (const ef of [16, 64, 128, 256]) {
    const ix = new u.Index({ dimensions: dims, metric: kind, quantization: u.ScalarKind.F32, connectivity: 16, expansion_add: 128, expansion_search: ef, multi: false });
    // expansion_search is fixed at construction: a second index viewing the same file would do; re-adding is too slow, so search the one built with each ef by reloading.
    const d2 = mkdtempSync(join(tmpdir(), 'ann-usearch-'));
    idx.save(join(d2, 'i'));
    ix.load(join(d2, 'i'));
    rmSync(d2, { recursive: true, force: true });
    for (const threads of [1]) {
      const t1 = performance.now();
      const m = ix.search(qs, K, threads);
      const s = (performance.now() - t1) / 1000;
      const r = recall(truth, (i) => Array.from(m.keys.subarray(i * K, (i + 1) * K), (x: bigint) => Number(x)));
      emit({ lib: 'usearch', variant: `hnsw ${metric} M=16 efC=128 ef=${ef}`, n: N, data: dataKind, buildS, rssMB: mem, diskMB, ...r, qps: NQ / s, threads });
    }
  }
} else if (lib === 'lancedb') {
  const ldb = await load('@lancedb/lancedb');
  const arrow = await load('apache-arrow');
  const truth = await groundTruth();
  const dir = mkdtempSync(join(tmpdir(), 'ann-lance-'));
  try {
    const before = rss();
    const db = await ldb.connect(dir);
    // Rows through an Arrow table (a FixedSizeList<Float32> column), in batches of 10^5.
    const schema = new arrow.Schema([
      new arrow.Field('id', new arrow.Int32(), false),
      new arrow.Field('vector', new arrow.FixedSizeList(DIM, new arrow.Field('item', new arrow.Float32(), true)), false),
    ]);
    const batch = (a: number, b: number) => {
      const ids = Int32Array.from({ length: b - a }, (_, i) => a + i);
      const vec = arrow.makeData({ type: new arrow.FixedSizeList(DIM, new arrow.Field('item', new arrow.Float32(), true)), length: b - a, nullCount: 0, child: arrow.makeData({ type: new arrow.Float32(), data: data.subarray(a * DIM, b * DIM) }) });
      return new arrow.Table(schema, new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: b - a, nullCount: 0, children: [arrow.makeData({ type: new arrow.Int32(), data: ids }), vec] })));
    };
    const t0 = performance.now();
    const step = 100_000;
    const table = await db.createTable('m', batch(0, Math.min(step, N)));
    for (let a = step; a < N; a += step) await table.add(batch(a, Math.min(a + step, N)));
    const writeS = (performance.now() - t0) / 1000;
    for (const [name, config] of [
      ['ivf_pq', ldb.Index.ivfPq({ distanceType: 'dot', numPartitions: Math.round(Math.sqrt(N)), numSubVectors: 16 })],
      ['hnsw_sq', ldb.Index.hnswSq({ distanceType: 'dot', numPartitions: Math.max(1, Math.round(N / 100_000)) })],
    ] as const) {
      if (!lanceIndexes.includes(name)) continue;
      const t1 = performance.now();
      await table.createIndex('vector', { config, replace: true });
      const buildS = writeS + (performance.now() - t1) / 1000;
      const mem = rss() - before;
      const diskMB = dirSize(dir) / 2 ** 20;
      const settings: [string, (q: any) => any][] =
        name === 'ivf_pq'
          ? [
              ['nprobes=20 refine=10', (q) => q.nprobes(20).refineFactor(10)],
              ['nprobes=50 refine=10', (q) => q.nprobes(50).refineFactor(10)],
            ]
          : [['ef=64', (q) => q.ef(64)], ['ef=128', (q) => q.ef(128)]];
      for (const [label, set] of settings) {
        const got: number[][] = [];
        const t2 = performance.now();
        for (let i = 0; i < NQ; i++) {
          const r = await set(table.search(Array.from(queries.subarray(i * DIM, (i + 1) * DIM))).distanceType('dot').limit(K).select(['id'])).toArray();
          got.push(r.map((x: { id: number }) => x.id));
        }
        const s = (performance.now() - t2) / 1000;
        emit({ lib: 'lancedb', variant: `${name} ${label}`, n: N, data: dataKind, buildS, rssMB: mem, diskMB, ...recall(truth, (i) => got[i]!), qps: NQ / s, threads: 1 });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  throw new Error(`--lib ${lib}: expected usearch, lancedb, exact or soft`);
}
