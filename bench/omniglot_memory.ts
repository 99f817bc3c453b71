/**
 * Omniglot memories and queries as .npz files for `vmm index` / `vmm classify --index` (issue #26;
 * results in bench/results/ann.md):
 *
 *   node bin/run-ts.mjs bench/omniglot_memory.ts --entries 100000 --out mem.npz --queries 1000 --queries-out q.npy [--data DIR]
 *
 * The memory: the background split's images in order, then the evaluation split's, repeated
 * until `--entries` (each copy gets its own binarization in `vmm index`, whose seeded draw is by
 * entry number, so repeated images are distinct binary entries); labels are the character ids.
 * The queries: evaluation images taken every few images (the first drawer of a character is
 * often in memory, the query is another drawing of it, or the same one when the memory is large).
 */
import { writeFileSync } from 'node:fs';
import { loadOmniglot } from '../src/data/omniglot.ts';
import { encodeNpy, encodeNpz } from '../src/data/npy.ts';

const argv = process.argv.slice(2);
const flag = (name: string, dflt?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const entries = Number(flag('entries', '20000'));
const nq = Number(flag('queries', '1000'));
const dataDir = flag('data');
const set = loadOmniglot(dataDir ? { dataDir } : {});
const D = set.height * set.width;

const order = [...set.splits.background, ...set.splits.evaluation];
const mem = new Uint8Array(entries * D);
const labels = new Int32Array(entries);
for (let i = 0; i < entries; i++) {
  const k = order[i % order.length]!;
  mem.set(set.images.subarray(k * D, (k + 1) * D), i * D);
  labels[i] = set.characterId(k);
}
writeFileSync(flag('out', 'mem.npz')!, encodeNpz({ images: { data: mem, shape: [entries, set.height, set.width] }, labels: { data: labels, shape: [entries] } }));
const ev = set.splits.evaluation;
const q = new Uint8Array(nq * D);
const step = Math.max(1, Math.floor(ev.length / nq));
for (let j = 0; j < nq; j++) {
  const k = ev[(j * step + 1) % ev.length]!;
  q.set(set.images.subarray(k * D, (k + 1) * D), j * D);
}
writeFileSync(flag('queries-out', 'q.npy')!, encodeNpy(q, [nq, set.height, set.width]));
process.stderr.write(`memory: ${entries} entries of ${set.height}x${set.width}; queries: ${nq}\n`);
