import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, encodeNpz } from '../../src/data/npy.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { loadBinarizedMnist } from '../../src/data/binarized_mnist.ts';
import { DataError } from '../../src/data/paths.ts';
import { loadUserDataset, resizeArea } from '../../src/data/user_data.ts';
import { isBuiltinDataset } from '../../src/data/registry.ts';
import { readZip } from '../../src/data/zip.ts';
import { FIXTURE_DATA, fixtureData } from '../fixtures/data.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-userdata-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const o = loadOmniglot(fixtureData);

/** Writes the fixture zip's PNGs as a folder tree `<dir>/<Alphabet>/<characterNN>/<file>.png`. */
function extractFixtureZip(dir: string): number {
  const zip = join(FIXTURE_DATA, 'raw', 'images_background_small1.zip');
  let n = 0;
  for (const e of readZip(new Uint8Array(readFileSync(zip)), zip)) {
    if (e.isDirectory || !e.name.endsWith('.png')) continue;
    const rel = e.name.split('/').slice(1).join('/'); // drop images_background_small1/
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), e.read());
    n++;
  }
  return n;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('expected a DataError');
}

describe('user data: .npz and .npy', () => {
  it('an .npz of uint8 images [N, 28, 28] with labels: intensities, classes, held-out images and classes', () => {
    const path = join(tmp, 'omni.npz');
    // Labels as the original character ids (not 0-based, not contiguous) to check the remapping.
    const ids = o.index['sourceCharacterIds'] as number[];
    writeFileSync(path, encodeNpz({ x: { data: o.images, shape: [400, 28, 28] }, y: { data: Int32Array.from(o.labels, (c) => ids[c]!), shape: [400] } }, true));
    const s = loadUserDataset(path);
    expect([s.count, s.height, s.width, s.maxValue, s.numClasses]).toEqual([400, 28, 28, 255, 20]);
    expect(s.name).toBe(path);
    expect(Buffer.from(s.images).equals(Buffer.from(o.images))).toBe(true);
    expect(Array.from(s.labels!)).toEqual(Array.from(o.labels)); // ids sorted = character order
    expect(s.validFrom).toBe('held-out');
    // Every 10th image held out; every 5th class held out, and class-disjoint.
    expect([s.splits['train']!.length, s.splits['valid']!.length]).toEqual([360, 40]);
    const trainClasses = new Set(Array.from(s.splits['train_classes']!, (i) => s.labels![i]));
    const validClasses = new Set(Array.from(s.splits['valid_classes']!, (i) => s.labels![i]));
    expect([trainClasses.size, validClasses.size]).toEqual([16, 4]);
    for (const c of validClasses) expect(trainClasses.has(c)).toBe(false);
  });

  it('takes the validation set from x_valid/y_valid, or from a second file', () => {
    const bits = loadBinarizedMnist('test', fixtureData).images; // 50 x 784 of 0/1
    const path = join(tmp, 'split.npz');
    writeFileSync(path, encodeNpz({ images: { data: bits.subarray(0, 30 * 784), shape: [30, 784] }, x_valid: { data: bits.subarray(30 * 784), shape: [20, 784] } }));
    const s = loadUserDataset(path);
    expect([s.count, s.height, s.width, s.maxValue, s.validFrom]).toEqual([50, 28, 28, 1, 'npz']);
    expect([s.splits['train']!.length, s.splits['valid']![0]]).toEqual([30, 30]);
    expect(s.labels).toBeUndefined();
    const npy = join(tmp, 'bits.npy');
    writeFileSync(npy, encodeNpy(bits.subarray(0, 40 * 784), [40, 28, 28]));
    const v = join(tmp, 'valid.npy');
    writeFileSync(v, encodeNpy(bits.subarray(40 * 784), [10, 28, 28]));
    const t = loadUserDataset(npy, { valid: v });
    expect([t.count, t.validFrom, t.splits['valid']!.length]).toEqual([50, 'file', 10]);
    expect(Buffer.from(t.images).equals(Buffer.from(bits))).toBe(true);
  });

  it('floats in [0, 1] are intensities; 0/1 floats are binary', () => {
    const path = join(tmp, 'f.npy');
    writeFileSync(path, encodeNpy(new Float32Array([0, 0.5, 1, 0.25]), [1, 2, 2]));
    const s = loadUserDataset(path);
    expect([s.maxValue, ...s.images]).toEqual([255, 0, 128, 255, 64]);
    writeFileSync(path, encodeNpy(new Float64Array([0, 1, 1, 0]), [2, 2]));
    expect(loadUserDataset(path).maxValue).toBe(1);
  });

  it('bad data: a DataError naming the file and what was expected', () => {
    const f = (name: string, bytes: Uint8Array) => {
      const p = join(tmp, name);
      writeFileSync(p, bytes);
      return p;
    };
    const real = f('real.npy', encodeNpy(new Float32Array([0, 3.5, -1, 2]), [1, 4]));
    expect(errorOf(() => loadUserDataset(real))).toMatch(new RegExp(`^${real}: pixel values must be binary \\(0/1\\), integers 0\\.\\.255 or floats in \\[0, 1\\].*values in \\[-1, 3\\.5\\]`));
    const colour = f('rgb.npy', encodeNpy(new Uint8Array(2 * 4 * 4 * 3), [2, 4, 4, 3]));
    expect(errorOf(() => loadUserDataset(colour))).toMatch(/rgb\.npy: images must be an array \[N, H, W\].*found uint8 \[2, 4, 4, 3\].*colour/);
    const lab = f('lab.npz', encodeNpz({ x: { data: new Uint8Array(8), shape: [2, 4] }, y: { data: new Int32Array(3), shape: [3] } }));
    expect(errorOf(() => loadUserDataset(lab))).toMatch(/lab\.npz\[y\]: labels must be an integer array \[2\] \(one per image\); found int32 \[3\]/);
    const none = f('none.npz', encodeNpz({ a: { data: new Uint8Array(4), shape: [1, 4] }, b: { data: new Uint8Array(4), shape: [1, 4] } }));
    expect(errorOf(() => loadUserDataset(none))).toMatch(/none\.npz: no images: expected an array named images, x, .*; the archive holds a, b/);
    const junk = f('junk.npz', new TextEncoder().encode('not a zip'));
    expect(errorOf(() => loadUserDataset(junk))).toMatch(/junk\.npz: not a readable \.npz \(ZIP\) archive/);
    const txt = f('data.csv', new TextEncoder().encode('1,2'));
    expect(errorOf(() => loadUserDataset(txt))).toMatch(/data\.csv: unknown data format '\.csv' \(expected \.npy, \.npz or a folder of PNG images\)/);
    expect(errorOf(() => loadUserDataset(join(tmp, 'omniglott')))).toMatch(/omniglott: no such file or folder \(a data set is mnist, omniglot, binarized_mnist, synthetic, recall, or a path/);
    const v = f('v.npy', encodeNpy(new Uint8Array(9), [1, 3, 3]));
    const t = f('t.npy', encodeNpy(new Uint8Array(8), [2, 2, 2]));
    expect(errorOf(() => loadUserDataset(t, { valid: v }))).toMatch(/v\.npy: validation images have 3x3 pixels, the training images 2x2/);
  });

  it('built-in names are not paths', () => {
    expect(['mnist', 'omniglot', 'binarized_mnist', 'synthetic'].every(isBuiltinDataset)).toBe(true);
    expect(isBuiltinDataset('./mnist.npz')).toBe(false);
  });
});

describe('user data: a folder of PNGs, one sub-folder per class', () => {
  it('reads the Omniglot originals layout: one class per character, inverted to 255 = ink, resized to 28x28', () => {
    const dir = join(tmp, 'omni-folder');
    expect(extractFixtureZip(dir)).toBe(200);
    const s = loadUserDataset(dir, { size: [28, 28] });
    expect([s.count, s.height, s.width, s.maxValue, s.numClasses]).toEqual([200, 28, 28, 255, 10]);
    expect(s.classNames!.slice(0, 2)).toEqual(['Greek/character01', 'Greek/character02']);
    expect(Array.from(s.labels!.subarray(18, 22))).toEqual([0, 0, 1, 1]);
    // The same pixels as the converter's exact integer area average, up to rounding.
    let maxDiff = 0;
    for (let p = 0; p < s.images.length; p++) maxDiff = Math.max(maxDiff, Math.abs(s.images[p]! - o.images[p]!));
    expect(maxDiff).toBeLessThanOrEqual(1);
    // Unresized, the 1-bit originals are binary data.
    const full = loadUserDataset(dir);
    expect([full.height, full.width, full.maxValue]).toEqual([105, 105, 1]);
  });

  it('gray PNGs with light ink on dark keep their values', () => {
    const dir = join(tmp, 'gray');
    for (const [cls, v] of [['a', 200], ['b', 100]] as const) {
      mkdirSync(join(dir, cls), { recursive: true });
      const data = new Uint8Array(16);
      data[5] = v;
      writeFileSync(join(dir, cls, '1.png'), encodePng({ width: 4, height: 4, data, channels: 1, depth: 8 }));
    }
    const s = loadUserDataset(dir);
    expect([s.count, s.maxValue, s.images[5], s.images[16 + 5], ...s.labels!]).toEqual([2, 255, 200, 100, 0, 1]);
  });

  it('bad folders: mixed sizes, loose images, no images, undecodable files', () => {
    const mk = (name: string, files: Record<string, Uint8Array>) => {
      const d = join(tmp, name);
      for (const [rel, bytes] of Object.entries(files)) {
        mkdirSync(dirname(join(d, rel)), { recursive: true });
        writeFileSync(join(d, rel), bytes);
      }
      return d;
    };
    const png = (w: number, h: number) => encodePng({ width: w, height: h, data: new Uint8Array(w * h), channels: 1, depth: 8 });
    const mixed = mk('mixed', { 'a/1.png': png(4, 4), 'b/2.png': png(5, 4) });
    expect(errorOf(() => loadUserDataset(mixed))).toMatch(/b\/2\.png: is 5x4 but the other images of .*mixed are 4x4: all images must have the same size/);
    const loose = mk('loose', { 'a/1.png': png(4, 4), '0.png': png(4, 4) });
    expect(errorOf(() => loadUserDataset(loose))).toMatch(/0\.png: is directly in .*loose; put every image in its class's sub-folder/);
    const empty = mk('empty', { 'a/readme.txt': new Uint8Array(1) });
    expect(errorOf(() => loadUserDataset(empty))).toMatch(/empty: no PNG images found/);
    const broken = mk('broken', { 'a/1.png': new TextEncoder().encode('not a png') });
    expect(errorOf(() => loadUserDataset(broken))).toMatch(/a\/1\.png: cannot decode PNG/);
  });

  it('resizeArea averages exact box overlaps', () => {
    expect(Array.from(resizeArea(Uint8Array.from([0, 255, 255, 0]), 2, 2, 1, 1))).toEqual([128]);
    expect(Array.from(resizeArea(Uint8Array.from([0, 90, 180]), 1, 3, 1, 2))).toEqual([30, 150]);
    expect(Array.from(resizeArea(Uint8Array.from([7, 9]), 1, 2, 1, 2))).toEqual([7, 9]);
  });
});
