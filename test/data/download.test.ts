/**
 * `vmm data get` against a local HTTP server on 127.0.0.1: a good archive, a corrupt one, a
 * transfer cut short (then resumed with a Range request), a server error, a local mirror folder.
 * The archives are built here from the fixtures, with their own checksums.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { lookupOrder } from '../../src/cli/data_commands.ts';
import { loadBinarizedMnist } from '../../src/data/binarized_mnist.ts';
import { DATA_SOURCES, getDataSet, listDataSets, parseAmat, type DataSetSource, type DownloadProgress } from '../../src/data/download.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { DataError } from '../../src/data/paths.ts';
import { FIXTURE_DATA, fixtureData } from '../fixtures/data.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-download-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A fixture zip with its root folder renamed (`images_background/...`), keeping some alphabets. */
function reroot(zip: string, root: string, keep: (alphabet: string) => boolean): Uint8Array {
  const files = unzipSync(new Uint8Array(readFileSync(join(FIXTURE_DATA, 'raw', zip))));
  const out: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [name, data] of Object.entries(files)) {
    const parts = name.split('/');
    if (name.endsWith('.png') && keep(parts[1]!)) out[[root, ...parts.slice(1)].join('/')] = [data, { level: 0 }];
  }
  return zipSync(out);
}

const background = reroot('images_background_small1.zip', 'images_background', () => true); // Greek, Latin 1-5
const evaluation = reroot('images_background_small2.zip', 'images_evaluation', (a) => a === 'Tagalog'); // Tagalog 1-3
const archives: Record<string, Uint8Array> = { 'images_background.zip': background, 'images_evaluation.zip': evaluation };
const omniglotSpec: DataSetSource = {
  ...DATA_SOURCES['omniglot']!,
  files: Object.entries(archives).map(([name, b]) => ({ name, size: b.length, sha256: sha(b) })),
};

interface Seen {
  url: string;
  range?: string;
}
const seen: Seen[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  // Binarized MNIST as .amat text: the fixture images, one line of 784 values per image.
  for (const split of ['train', 'valid', 'test'] as const) {
    const bits = loadBinarizedMnist(split, fixtureData).images;
    const lines: string[] = [];
    for (let i = 0; i < bits.length / 784; i++) lines.push(Array.from(bits.subarray(i * 784, (i + 1) * 784)).join(' '));
    archives[`binarized_mnist_${split}.amat`] = new TextEncoder().encode(lines.join('\n') + '\n');
  }
  server = createServer((req, res) => {
    const [, mode, name] = (req.url ?? '').split('/');
    seen.push({ url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
    const body = archives[name ?? ''];
    if (mode === 'error' || !body) {
      res.writeHead(mode === 'error' ? 500 : 404).end('no');
      return;
    }
    if (mode === 'corrupt') {
      const bad = body.slice();
      bad[bad.length >> 1]! ^= 0xff;
      res.writeHead(200, { 'Content-Length': bad.length }).end(bad);
      return;
    }
    if (mode === 'trunc') {
      // Promise everything, send the first half, then drop the connection.
      res.writeHead(200, { 'Content-Length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      const from = Number(m[1]);
      res.writeHead(206, { 'Content-Length': body.length - from, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` }).end(body.subarray(from));
      return;
    }
    res.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

/** Every file under `dir`, relative. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1)) // parentPath: Node >= 20.12
    .sort();
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('vmm data get (loopback HTTP)', () => {
  it('downloads, verifies and converts Omniglot; the loaders read it; a second get does nothing', async () => {
    const dir = join(tmp, 'good');
    const progress: DownloadProgress[] = [];
    const r = await getDataSet(omniglotSpec, { mirror: `${base}/good`, dir, onProgress: (p) => progress.push(p) });
    expect(r.downloaded).toBe(true);
    expect(tree(dir)).toEqual(['omniglot28_index.json', 'omniglot28_u8.bin.gz']); // archives removed after converting
    const o = loadOmniglot({ dataDir: dir });
    expect([o.count, o.splits.background.length, o.splits.evaluation.length]).toEqual([260, 200, 60]);
    // Tagalog, converted from the served originals, equals the fixture's Tagalog pixel for pixel.
    const fx = loadOmniglot(fixtureData);
    const at = (s: typeof o) => s.alphabets.find((a) => a.name === 'Tagalog')!;
    const slice = (s: typeof o) => s.images.subarray((at(s).first - 1) * 20 * 784, (at(s).first - 1 + 3) * 20 * 784);
    expect(Buffer.from(slice(o)).equals(Buffer.from(slice(fx)))).toBe(true);
    expect(progress.at(-1)).toMatchObject({ file: 'images_evaluation.zip', received: evaluation.length, total: evaluation.length });
    const before = seen.length;
    const again = await getDataSet(omniglotSpec, { mirror: `${base}/good`, dir });
    expect([again.downloaded, seen.length]).toEqual([false, before]);
    expect(listDataSets([join(tmp, 'nothing'), dir]).find((s) => s.name === 'omniglot')).toMatchObject({ present: true, dir });
    expect(listDataSets([dir]).find((s) => s.name === 'binarized_mnist')!.present).toBe(false);
  });

  it('a corrupt archive is a checksum error and leaves nothing behind', async () => {
    const dir = join(tmp, 'corrupt');
    const e = await rejection(getDataSet(omniglotSpec, { mirror: `${base}/corrupt`, dir }));
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toMatch(new RegExp(`^${base}/corrupt/images_background\\.zip: checksum mismatch: SHA-256 [0-9a-f]{64}, expected ${omniglotSpec.files[0]!.sha256}`));
    expect(tree(dir)).toEqual([]);
  });

  it('a server error names the URL and the status, and writes nothing', async () => {
    const dir = join(tmp, 'error');
    const e = await rejection(getDataSet(omniglotSpec, { mirror: `${base}/error`, dir }));
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toBe(`${base}/error/images_background.zip: the server answered 500 Internal Server Error`);
    expect(tree(dir)).toEqual([]);
  });

  it('a transfer cut short keeps only a .part, and the next run resumes it with a Range request', async () => {
    const dir = join(tmp, 'trunc');
    const e = await rejection(getDataSet(omniglotSpec, { mirror: `${base}/trunc`, dir }));
    expect(e).toBeInstanceOf(DataError);
    expect(e.message).toMatch(/images_background\.zip: the transfer was interrupted after \d+ of \d+ bytes.*run the command again to resume/);
    expect(tree(dir)).toEqual(['.downloads/images_background.zip.part']); // no data file, no archive under its final name
    const partSize = statSync(join(dir, '.downloads', 'images_background.zip.part')).size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThan(background.length);
    const r = await getDataSet(omniglotSpec, { mirror: `${base}/good`, dir });
    expect(r.downloaded).toBe(true);
    expect(seen).toContainEqual({ url: '/good/images_background.zip', range: `bytes=${partSize}-` });
    expect(loadOmniglot({ dataDir: dir }).count).toBe(260);
    expect(tree(dir)).toEqual(['omniglot28_index.json', 'omniglot28_u8.bin.gz']);
  });

  it('a local mirror folder (offline copy) works the same way', async () => {
    const mirror = join(tmp, 'mirror');
    mkdirSync(mirror);
    for (const [name, b] of Object.entries(archives)) writeFileSync(join(mirror, name), b);
    const dir = join(tmp, 'local');
    await getDataSet(omniglotSpec, { mirror, dir, keepArchives: true });
    expect(tree(dir)).toEqual(['.downloads/images_background.zip', '.downloads/images_evaluation.zip', 'omniglot28_index.json', 'omniglot28_u8.bin.gz']);
  });

  it('binarized MNIST: the .amat originals become the packed files, equal to the fixtures', async () => {
    const spec: DataSetSource = {
      ...DATA_SOURCES['binarized_mnist']!,
      files: DATA_SOURCES['binarized_mnist']!.files.map((f) => ({ name: f.name, size: archives[f.name]!.length, sha256: sha(archives[f.name]!) })),
    };
    const dir = join(tmp, 'bmnist');
    await getDataSet(spec, { mirror: `${base}/good`, dir });
    for (const split of ['train', 'valid', 'test'] as const) {
      expect(Buffer.from(loadBinarizedMnist(split, { dataDir: dir }).images).equals(Buffer.from(loadBinarizedMnist(split, fixtureData).images))).toBe(true);
    }
    expect(() => parseAmat('0 1\n0 2\n', 'x.amat', 2)).toThrow(/x\.amat: line 2: value '2' is not 0 or 1/);
    expect(() => parseAmat('0 1 1\n', 'x.amat', 2)).toThrow(/x\.amat: line 1 has 3 values, expected 2/);
  });

  it('records the original URLs and a SHA-256 and size for every original file', () => {
    expect(DATA_SOURCES['omniglot']!.baseUrl).toBe('https://github.com/brendenlake/omniglot/raw/master/python');
    expect(DATA_SOURCES['binarized_mnist']!.baseUrl).toBe('http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist');
    for (const s of Object.values(DATA_SOURCES)) {
      for (const f of s.files) {
        expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(f.size).toBeGreaterThan(1e6);
      }
    }
    expect(DATA_SOURCES['omniglot']!.files.map((f) => f.name)).toEqual(['images_background.zip', 'images_evaluation.zip']);
  });
});

describe('the vmm data command', () => {
  it('get: a file that differs from the recorded one is one line on stderr and exit code 1; list shows what is present and where', async () => {
    const err: string[] = [];
    const out: string[] = [];
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      // The real checksum table against the test archives: a mismatch.
      const dir = join(tmp, 'cli');
      expect(await main(['data', 'get', 'omniglot', '--mirror', `${base}/good`, '--dir', dir, '--quiet'])).toBe(1);
      expect(err.join('')).toMatch(new RegExp(`^vmm: ${base}/good/images_background\\.zip: size mismatch: ${background.length} bytes, expected 9464212\\. .*\\n$`));
      expect(err.join('').split('\n').length).toBe(2);
      expect(tree(dir)).toEqual([]);
      expect(await main(['data', 'get', 'imagenet'])).toBe(2); // misuse of the command
      expect(err.join('')).toContain("unknown data set 'imagenet' (vmm data get knows omniglot, binarized_mnist)");
      expect(await main(['data', 'list', '--data', join(tmp, 'good'), '--json'])).toBe(0);
      const listed = JSON.parse(out.join('')) as { sets: { name: string; present: boolean; dir?: string }[] };
      expect(listed.sets.find((s) => s.name === 'omniglot')).toMatchObject({ present: true, dir: join(tmp, 'good') });
      // VMM_DATA set: the rest of the lookup order is still listed, as not searched.
      const order = lookupOrder(undefined, { VMM_DATA: join(tmp, 'good'), HOME: tmp });
      expect(order[2]).toMatch(/VMM_DATA .*good .*\(used; the places below are not searched\)/);
      expect(order.slice(3).every((l) => l.includes('(not searched: VMM_DATA is set)'))).toBe(true);
      expect(order.some((l) => /^ {2}cache /.test(l))).toBe(true);
      expect(lookupOrder(undefined, { HOME: tmp }).slice(3).every((l) => l.endsWith('(searched)'))).toBe(true);
    } finally {
      e.mockRestore();
      o.mockRestore();
    }
  });
});
