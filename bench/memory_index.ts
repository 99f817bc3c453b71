/**
 * `vmm classify --index` against the exact scan of the same stored keys (issue #26), in one
 * process, interleaved, median of `--repeats`: queries/s and top-1 agreement. The index folder comes
 * from `vmm index` (e.g. of bench/omniglot_memory.ts's memory):
 *
 *   node bin/run-ts.mjs bench/memory_index.ts --run pretrained/vma_omniglot --index DIR --queries q.npy [--repeats 5] [--backend wasm]
 *
 * The search only (as `search_ms` of classify): the queries are embedded first, the graph loaded
 * and one warm-up query run outside the timing. Results: bench/results/ann.md.
 */
import { selectBackend, type BackendName } from '../src/runtime/backend.ts';
import { addressKeys, embedQueries } from '../src/jobs/address_keys.ts';
import { openMemoryIndex, readManifest } from '../src/jobs/ann_index.ts';
import { binarizeImages } from '../src/jobs/classify_run.ts';
import { loadTrained } from '../src/jobs/evaluate_run.ts';
import { readImageArray } from '../src/data/image_array.ts';

const argv = process.argv.slice(2);
const flag = (name: string, dflt?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const runPath = flag('run', 'pretrained/vma_omniglot')!;
const dir = flag('index')!;
const repeats = Number(flag('repeats', '5'));
const backend = flag('backend') as BackendName | undefined;
const b = await selectBackend({ ...(backend ? { force: backend } : {}), log: (m) => process.stderr.write(m + '\n') });
const { ir, model } = loadTrained(runPath);
const a = addressKeys(ir);
const m = readManifest(dir)!;
const qs = readImageArray(flag('queries')!);
const q = embedQueries(ir, model, a, binarizeImages(qs, m.binarize, m.seed, m.memory.count));
const nq = qs.count;
const ix = await openMemoryIndex(dir, { ann: true, candidates: 32 });
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const settings = [
  { name: 'exact scan', run: () => ix.searchExact(q, { top: 1 }) },
  ...[8, 32, 128].map((c) => ({ name: `HNSW, ${c} candidates`, run: () => ix.searchAnn(q, { top: 1, candidates: c, tail: 64, seed: 1 }) })),
];
const times = settings.map(() => [] as number[]);
const firsts: number[][] = [];
for (const s of settings) {
  s.run(); // warm-up (and the graph with this breadth)
  firsts.push(s.run().map((h) => h.entries[0]!));
}
for (let r = 0; r < repeats; r++) {
  settings.forEach((s, i) => {
    const t0 = performance.now();
    s.run();
    times[i]!.push(performance.now() - t0);
  });
}
process.stdout.write(`${ix.size} entries, ${nq} queries, backend ${b.name}, median of ${repeats}\n\n| search | ms | queries/s | top-1 = exact |\n| --- | --- | --- | --- |\n`);
settings.forEach((s, i) => {
  const ms = median(times[i]!);
  const agree = firsts[i]!.filter((e, j) => e === firsts[0]![j]).length / nq;
  process.stdout.write(`| ${s.name} | ${ms.toFixed(1)} | ${Math.round((nq * 1000) / ms)} | ${agree.toFixed(3)} |\n`);
});
model.dispose();
