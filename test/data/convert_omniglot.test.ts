import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { encode as encodePng } from 'fast-png';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { areaDownsample, convertOmniglotZips, decodeOmniglotPng } from '../../src/data/convert_omniglot.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { DataError } from '../../src/data/paths.ts';
import { readZip } from '../../src/data/zip.ts';
import { FIXTURE_DATA, fixtureData } from '../fixtures/data.ts';
import { convertChecks } from './suites/convert_omniglot.ts';

const small1 = join(FIXTURE_DATA, 'raw', 'images_background_small1.zip');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('areaDownsample (exact area average)', () => {
  it('maps all-ink to 255, no ink to 0, and averages exact fractional areas', () => {
    expect(areaDownsample(new Uint8Array(105 * 105).fill(1), 105, 105).every((v) => v === 255)).toBe(true);
    expect(areaDownsample(new Uint8Array(105 * 105), 105, 105).every((v) => v === 0)).toBe(true);
    // One ink pixel at (0, 0) covers 4x4 of the 15x15 units of output pixel (0, 0): 255*16/225.
    const one = new Uint8Array(105 * 105);
    one[0] = 1;
    const out = areaDownsample(one, 105, 105);
    expect(out[0]).toBe(Math.round((255 * 16) / 225));
    expect(out.slice(1).every((v) => v === 0)).toBe(true);
    // Source pixel (3, 3) straddles output pixels 0 and 1 in both axes: 3x3, 3x1, 1x3, 1x1 units.
    const mid = new Uint8Array(105 * 105);
    mid[3 * 105 + 3] = 1;
    const o2 = areaDownsample(mid, 105, 105);
    expect([o2[0], o2[1], o2[28], o2[29]]).toEqual([9, 3, 3, 1].map((u) => Math.round((255 * u) / 225)));
    // A 2x downsample of a 4x4 checkerboard is 50% gray.
    const cb = Uint8Array.from({ length: 16 }, (_, i) => ((i >> 2) + i) & 1);
    expect(Array.from(areaDownsample(cb, 4, 4, 2, 2))).toEqual([128, 128, 128, 128]);
  });
});

/** The ink mask pngjs gives (RGBA, 8 bits): opaque (alpha >= 128) and dark (mean of R, G, B < 128). */
function pngjsInk(bytes: Uint8Array): number[] {
  const { width, height, data } = PNG.sync.read(Buffer.from(bytes));
  return Array.from({ length: width * height }, (_, k) =>
    data[4 * k + 3]! >= 128 && (data[4 * k]! + data[4 * k + 1]! + data[4 * k + 2]!) / 3 < 128 ? 1 : 0,
  );
}

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/** A gray, Adam7-interlaced PNG with `depth`-bit samples s(x, y) (no encoder at hand writes these). */
function interlacedGrayPng(w: number, h: number, depth: number, s: (x: number, y: number) => number): Uint8Array {
  const raw: number[] = [];
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = Math.ceil((w - x0) / dx);
    const ph = Math.ceil((h - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    for (let j = 0; j < ph; j++) {
      const row = new Uint8Array(Math.ceil((pw * depth) / 8));
      for (let i = 0; i < pw; i++) {
        const bit = i * depth;
        row[bit >> 3]! |= s(x0 + i * dx, y0 + j * dy) << (8 - depth - (bit & 7));
      }
      raw.push(0, ...row);
    }
  }
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const b = Buffer.alloc(12 + data.length);
    b.writeUInt32BE(data.length, 0);
    b.write(type, 4, 'latin1');
    b.set(data, 8);
    b.writeUInt32BE(crc32(b.subarray(4, 8 + data.length)), 8 + data.length);
    return b;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[12] = 1; // Adam7
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(raw))),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

describe('Omniglot PNG decoding (fast-png)', () => {
  const entries = readZip(new Uint8Array(readFileSync(small1)), small1).filter((e) => e.name.endsWith('.png'));

  it('agrees with pngjs on the original 1-bit PNGs', () => {
    expect(entries.length).toBe(200);
    const sample = entries.filter((_, i) => i % 4 === 0);
    for (const e of sample) {
      const bytes = e.read();
      const { ink, width, height } = decodeOmniglotPng(bytes, e.name);
      expect([width, height]).toEqual([105, 105]);
      expect(Array.from(ink)).toEqual(pngjsInk(bytes));
    }
  });

  it('agrees with pngjs on other formats: gray, RGB, gray+alpha and RGBA at 8 and 16 bits', () => {
    const w = 7;
    const h = 5;
    const levels = [0, 40, 100, 127, 128, 160, 255];
    const png = new PNG({ width: w, height: h });
    for (let k = 0; k < w * h; k++) {
      png.data[4 * k] = levels[k % 7]!;
      png.data[4 * k + 1] = levels[(3 * k) % 7]!;
      png.data[4 * k + 2] = levels[(5 * k + 1) % 7]!;
      png.data[4 * k + 3] = levels[(2 * k + 3) % 7]!;
    }
    for (const colorType of [0, 2, 4, 6] as const) {
      for (const bitDepth of [8, 16] as const) {
        const bytes = PNG.sync.write(png, { colorType, bitDepth, inputHasAlpha: true });
        const { ink, width, height } = decodeOmniglotPng(bytes);
        expect([width, height]).toEqual([w, h]);
        expect(Array.from(ink), `colour type ${colorType}, ${bitDepth} bits`).toEqual(pngjsInk(bytes));
      }
    }
    // A dark transparent pixel is background; a dark opaque one is ink.
    const two = new PNG({ width: 2, height: 1 });
    two.data = Buffer.from([0, 0, 0, 0, 0, 0, 0, 255]);
    expect(Array.from(decodeOmniglotPng(PNG.sync.write(two)).ink)).toEqual([0, 1]);
  });

  it('reads 2- and 4-bit gray and palette images (with and without transparency)', () => {
    const w = 6;
    const h = 3;
    for (const depth of [2, 4] as const) {
      const max = (1 << depth) - 1;
      const values = Array.from({ length: w * h }, (_, k) => (k * 5) % (max + 1));
      const data = new Uint8Array(Math.ceil((w * depth) / 8) * h);
      values.forEach((v, k) => {
        const [x, y] = [k % w, Math.floor(k / w)];
        const bit = x * depth;
        data[y * Math.ceil((w * depth) / 8) + (bit >> 3)]! |= v << (8 - depth - (bit & 7));
      });
      const bytes = encodePng({ width: w, height: h, data, depth, channels: 1 });
      expect(Array.from(decodeOmniglotPng(bytes).ink)).toEqual(values.map((v) => (v * 255 < 128 * max ? 1 : 0)));
      expect(Array.from(decodeOmniglotPng(bytes).ink)).toEqual(pngjsInk(bytes));
    }
    const palette = [[0, 0, 0], [255, 255, 255], [250, 200, 100], [10, 10, 200]]; // means 0, 255, 183, 73
    const indices = Uint8Array.from({ length: w * h }, (_, k) => k % 4);
    const pal = encodePng({ width: w, height: h, data: indices, depth: 8, channels: 1, palette });
    expect(Array.from(decodeOmniglotPng(pal).ink)).toEqual(Array.from(indices, (i) => (i === 0 || i === 3 ? 1 : 0)));
    expect(Array.from(decodeOmniglotPng(pal).ink)).toEqual(pngjsInk(pal));
    // Black made transparent by tRNS is background.
    const alphaPalette = [[0, 0, 0, 0], [255, 255, 255, 255], [250, 200, 100, 255], [10, 10, 200, 255]];
    const palA = encodePng({ width: w, height: h, data: indices, depth: 8, channels: 1, palette: alphaPalette });
    expect(Array.from(decodeOmniglotPng(palA).ink)).toEqual(Array.from(indices, (i) => (i === 3 ? 1 : 0)));
    expect(Array.from(decodeOmniglotPng(palA).ink)).toEqual(pngjsInk(palA));
  });

  it('reads interlaced 8-bit PNGs and rejects interlaced 1-bit ones with a clear DataError', () => {
    const f = (x: number, y: number): number => ((x * 7 + y * 3) % 5 === 0 ? 0 : 1);
    const gray8 = interlacedGrayPng(13, 11, 8, (x, y) => 255 * f(x, y));
    const expected = Array.from({ length: 13 * 11 }, (_, k) => 1 - f(k % 13, Math.floor(k / 13)));
    expect(pngjsInk(gray8)).toEqual(expected);
    expect(Array.from(decodeOmniglotPng(gray8).ink)).toEqual(expected);
    const gray1 = interlacedGrayPng(13, 11, 1, f);
    expect(pngjsInk(gray1)).toEqual(expected);
    expect(() => decodeOmniglotPng(gray1, 'x.zip:a.png')).toThrow(DataError);
    expect(() => decodeOmniglotPng(gray1, 'x.zip:a.png')).toThrow(/x\.zip:a\.png: interlaced PNGs with 1-bit samples/);
  });

  it('reports garbage, truncated and corrupted PNGs as DataErrors naming the image', () => {
    expect(() => decodeOmniglotPng(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), 'g.png')).toThrow(DataError);
    const bytes = entries[0]!.read();
    expect(() => decodeOmniglotPng(bytes.subarray(0, 100), 't.png')).toThrow(/t\.png: cannot decode PNG/);
    // A corrupted byte in the compressed image data, and one in the chunk's CRC.
    const idat = Buffer.from(bytes).indexOf('IDAT');
    const length = Buffer.from(bytes).readUInt32BE(idat - 4);
    const flipped = bytes.slice();
    flipped[idat + 20]! ^= 0x10;
    expect(() => decodeOmniglotPng(flipped, 'c.png')).toThrow(/c\.png: cannot decode PNG/);
    const badCrc = bytes.slice();
    badCrc[idat + 4 + length]! ^= 0x01;
    expect(() => decodeOmniglotPng(badCrc, 'crc.png')).toThrow(/crc\.png: cannot decode PNG.*CRC/i);
  });
});

describe('convertOmniglotZips on the fixture zips (test/fixtures/data/raw)', () => {
  const ctx = convertChecks({
    small1,
    small2: join(FIXTURE_DATA, 'raw', 'images_background_small2.zip'),
    tmp,
    loadReference: () => loadOmniglot(fixtureData),
    referenceName: 'the fixture omniglot28_u8.bin.gz',
    small1Contents: { characters: 10, alphabets: ['Greek', 'Latin'] },
    // small1: Greek and Latin 1-5; small2: Latin 1-5 and Tagalog 1-3.
    bothContents: { characters: 5 + 5 + 3, alphabets: ['Greek', 'Latin', 'Tagalog'] },
    // The fixture index records the id each character has in the full set.
    sourceId: (reference, j) => (reference.index['sourceCharacterIds'] as number[])[j]!,
  });

  it('records the character ids of the full set, not of the fixture subset', () => {
    const ids = ctx.result.index['sourceCharacterIds'] as number[];
    expect(ids[0]).toBeGreaterThan(1); // Greek is not the first alphabet of the full set
  });

  it('reports unreadable input as a DataError', async () => {
    const bad = join(tmp, 'bad.zip');
    writeFileSync(bad, 'not a zip');
    await expect(convertOmniglotZips([bad], join(tmp, 'x'))).rejects.toThrow(DataError);
    await expect(convertOmniglotZips([join(tmp, 'missing.zip')], join(tmp, 'x'))).rejects.toThrow(/cannot read/);
    await expect(convertOmniglotZips([], join(tmp, 'x'))).rejects.toThrow(DataError);
  });
});
