// Cuts the small data fixtures under test/fixtures/data/ from the full files in ../shared/data
// (docs/guide.md, "Tests and data"). Run once by a developer who has the full data:
//   node scripts/make_fixtures.mjs [SHARED_DATA_DIR]
// The output is committed; `npm test` reads only it. Omniglot: MIT, (c) 2015 Brenden Lake;
// binarized MNIST derives from MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { unzipSync, zipSync } from 'fflate';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(process.argv[2] ?? join(root, '..', 'shared', 'data'));
const out = join(root, 'test', 'fixtures', 'data');
mkdirSync(join(out, 'raw'), { recursive: true });

// Omniglot: the first characters of three background and two evaluation alphabets.
const PICK = [
  ['Greek', 5],
  ['Latin', 5],
  ['Tagalog', 3],
  ['Angelic', 4],
  ['ULOG', 3],
];
const index = JSON.parse(readFileSync(join(shared, 'omniglot28_index.json'), 'utf8'));
const all = gunzipSync(readFileSync(join(shared, 'omniglot28_u8.bin.gz')));
const D = 784;
const dpc = index.drawersPerCharacter;
const alphabets = [];
const sourceCharacterIds = [];
const chunks = [];
let first = 1;
let background = 0;
for (const [name, count] of PICK) {
  const a = index.alphabets.find((x) => x.name === name);
  if (!a) throw new Error(`no alphabet ${name}`);
  alphabets.push({ name, set: a.set, first, count });
  for (let k = 0; k < count; k++) {
    const id = a.first + k;
    sourceCharacterIds.push(id);
    chunks.push(all.subarray((id - 1) * dpc * D, id * dpc * D));
  }
  if (a.set === 'images_background') background += count * dpc;
  first += count;
}
const numCharacters = first - 1;
const numImages = numCharacters * dpc;
const fixtureIndex = {
  source: `cut from ../shared/data/omniglot28 by scripts/make_fixtures.mjs: ${PICK.map(([n, c]) => `${n} 1..${c}`).join(', ')}; ${index.source}`,
  order: index.order.replace('1..1623', `1..${numCharacters}`),
  numImages,
  numCharacters,
  drawersPerCharacter: dpc,
  u8: { ...index.u8, shape: [numImages, 28, 28] },
  alphabets,
  splits: { background: [0, background], evaluation: [background, numImages] },
  sourceCharacterIds,
};
writeFileSync(join(out, 'omniglot28_index.json'), JSON.stringify(fixtureIndex, null, 1) + '\n');
writeFileSync(join(out, 'omniglot28_u8.bin.gz'), gzipSync(Buffer.concat(chunks), { level: 9 }));
writeFileSync(join(out, 'LICENSE-omniglot.txt'), readFileSync(join(shared, 'LICENSE-omniglot.txt')));

// The original format: two small zips of 105x105 PNGs that overlap in Latin.
function cutZip(src, dst, keep) {
  const files = unzipSync(new Uint8Array(readFileSync(join(shared, 'raw', src))));
  const picked = {};
  for (const [name, data] of Object.entries(files)) {
    const m = /^[^/]+\/([^/]+)\/character(\d+)\/[^/]+\.png$/.exec(name);
    if (m && keep[m[1]] !== undefined && Number(m[2]) <= keep[m[1]]) picked[name] = [data, { level: 0 }];
  }
  writeFileSync(join(out, 'raw', dst), zipSync(picked));
  return Object.keys(picked).length;
}
console.log('small1:', cutZip('images_background_small1.zip', 'images_background_small1.zip', { Greek: 5, Latin: 5 }));
console.log('small2:', cutZip('images_background_small2.zip', 'images_background_small2.zip', { Latin: 5, Tagalog: 3 }));

// Binarized MNIST: the first images of each split, same packed format.
for (const [split, n] of [['train', 200], ['valid', 50], ['test', 50]]) {
  const f = `binarized_mnist_${split}_bits.bin.gz`;
  writeFileSync(join(out, f), gzipSync(gunzipSync(readFileSync(join(shared, f))).subarray(0, n * 98), { level: 9 }));
}
console.log(`wrote ${out}`);
