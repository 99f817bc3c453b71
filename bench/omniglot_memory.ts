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
import { zipSync } from 'fflate';
import { loadOmniglot } from '../src/data/omniglot.ts';

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

function npy(descr: string, shape: number[], body: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}

const order = [...set.splits.background, ...set.splits.evaluation];
const mem = new Uint8Array(entries * D);
const labels = new Int32Array(entries);
for (let i = 0; i < entries; i++) {
  const k = order[i % order.length]!;
  mem.set(set.images.subarray(k * D, (k + 1) * D), i * D);
  labels[i] = set.characterId(k);
}
writeFileSync(flag('out', 'mem.npz')!, zipSync({ 'images.npy': npy('|u1', [entries, set.height, set.width], mem), 'labels.npy': npy('<i4', [entries], new Uint8Array(labels.buffer)) }, { level: 0 }));
const ev = set.splits.evaluation;
const q = new Uint8Array(nq * D);
const step = Math.max(1, Math.floor(ev.length / nq));
for (let j = 0; j < nq; j++) {
  const k = ev[(j * step + 1) % ev.length]!;
  q.set(set.images.subarray(k * D, (k + 1) * D), j * D);
}
writeFileSync(flag('queries-out', 'q.npy')!, npy('|u1', [nq, set.height, set.width], q));
process.stderr.write(`memory: ${entries} entries of ${set.height}x${set.width}; queries: ${nq}\n`);
