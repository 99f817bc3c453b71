import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { areaDownsample, convertOmniglotZips, decodeOmniglotPng, type ConvertResult } from '../../src/data/convert_omniglot.ts';
import { clearOmniglotCache, loadOmniglot, type Omniglot } from '../../src/data/omniglot.ts';
import { DataError, resolveDataFile } from '../../src/data/paths.ts';
import { decodeGrayPng } from '../../src/data/png_gray.ts';
import { readZip } from '../../src/data/zip.ts';

const small1 = resolveDataFile('raw/images_background_small1.zip');
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

describe('Omniglot PNG decoding', () => {
  it('the fast grayscale decoder agrees with pngjs on the original 1-bit PNGs', () => {
    const entries = readZip(new Uint8Array(readFileSync(small1)), small1).filter((e) => e.name.endsWith('.png'));
    expect(entries.length).toBe(2720);
    for (const e of entries.slice(0, 2720).filter((_, i) => i % 97 === 0)) {
      const bytes = e.read();
      const ref = PNG.sync.read(Buffer.from(bytes));
      const g = decodeGrayPng(bytes)!;
      expect([g.width, g.height]).toEqual([105, 105]);
      const refGray = Uint8Array.from({ length: 105 * 105 }, (_, k) => ref.data[4 * k]!);
      expect(Buffer.from(g.gray).equals(Buffer.from(refGray))).toBe(true);
      const { ink } = decodeOmniglotPng(bytes);
      expect(ink.every((v, k) => v === (refGray[k]! < 128 ? 1 : 0))).toBe(true);
    }
  });

  it('falls back to pngjs for colour PNGs, and reports garbage as a DataError', () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data = Buffer.from([0, 0, 0, 255, 255, 255, 255, 255]);
    const bytes = PNG.sync.write(png); // RGBA
    expect(decodeGrayPng(bytes)).toBeNull();
    expect(Array.from(decodeOmniglotPng(bytes).ink)).toEqual([1, 0]);
    expect(() => decodeOmniglotPng(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))).toThrow(DataError);
  });
});

describe('convertOmniglotZips on images_background_small1.zip', () => {
  let result: ConvertResult;
  let shared: Omniglot;
  let converted: Omniglot;

  beforeAll(async () => {
    result = await convertOmniglotZips([small1], tmp, { gzipLevel: 1 });
    shared = loadOmniglot();
    converted = loadOmniglot({ dataDir: tmp });
  });

  it('writes a compact file set that loadOmniglot reads', () => {
    expect(result.numImages).toBe(2720);
    expect(result.numCharacters).toBe(136);
    expect(result.drawersPerCharacter).toBe(20);
    expect(result.alphabets.map((a) => a.name)).toEqual(['Balinese', 'Early_Aramaic', 'Greek', 'Korean', 'Latin']);
    expect(converted.count).toBe(2720);
    expect(converted.splits.background.length).toBe(2720);
    expect(converted.splits.evaluation.length).toBe(0);
    expect(Buffer.from(converted.images).equals(Buffer.from(result.images))).toBe(true);
  });

  it('equals omniglot28_u8.bin.gz pixel for pixel (alphabets by name, characters and drawers by order)', () => {
    let maxDiff = 0;
    let compared = 0;
    for (const a of converted.alphabets) {
      const ref = shared.alphabets.find((r) => r.name === a.name)!;
      expect(ref).toBeDefined();
      expect(a.count).toBe(ref.count);
      for (let k = 0; k < a.count; k++) {
        for (let d = 0; d < 20; d++) {
          const src = ((a.first - 1 + k) * 20 + d) * 784;
          const dst = ((ref.first - 1 + k) * 20 + d) * 784;
          for (let p = 0; p < 784; p++) {
            const diff = Math.abs(converted.images[src + p]! - shared.images[dst + p]!);
            if (diff > maxDiff) maxDiff = diff;
          }
          compared++;
        }
      }
    }
    expect(compared).toBe(2720);
    expect(maxDiff).toBe(0);
  });

  it('keeps the original character ids, which agree with the shared index', () => {
    const ids = result.index['sourceCharacterIds'] as number[];
    expect(ids.length).toBe(136);
    for (const a of converted.alphabets) {
      const ref = shared.alphabets.find((r) => r.name === a.name)!;
      for (let k = 0; k < a.count; k++) expect(ids[a.first - 1 + k]).toBe(ref.first + k);
    }
  });

  it('takes files present in two overlapping zips once', async () => {
    const small2 = resolveDataFile('raw/images_background_small2.zip');
    const out = join(tmp, 'both');
    const r = await convertOmniglotZips([small1, small2], out, { gzipLevel: 1 });
    // small1: 136 characters, small2: 156, Greek (24) and Latin (26) in both.
    expect(r.numCharacters).toBe(136 + 156 - 24 - 26);
    expect(r.alphabets.map((a) => a.name)).toEqual([
      'Balinese', 'Early_Aramaic', 'Greek', 'Japanese_(katakana)', 'Korean', 'Latin', 'Sanskrit', 'Tagalog',
    ]);
    clearOmniglotCache();
    const both = loadOmniglot({ dataDir: out });
    const ref = loadOmniglot();
    const tag = both.alphabets.find((a) => a.name === 'Tagalog')!;
    const refTag = ref.alphabets.find((a) => a.name === 'Tagalog')!;
    const n = tag.count * 20 * 784;
    expect(
      Buffer.from(both.images.subarray((tag.first - 1) * 20 * 784, (tag.first - 1) * 20 * 784 + n)).equals(
        Buffer.from(ref.images.subarray((refTag.first - 1) * 20 * 784, (refTag.first - 1) * 20 * 784 + n)),
      ),
    ).toBe(true);
  });

  it('reports unreadable input as a DataError', async () => {
    const bad = join(tmp, 'bad.zip');
    writeFileSync(bad, 'not a zip');
    await expect(convertOmniglotZips([bad], join(tmp, 'x'))).rejects.toThrow(DataError);
    await expect(convertOmniglotZips([join(tmp, 'missing.zip')], join(tmp, 'x'))).rejects.toThrow(/cannot read/);
    await expect(convertOmniglotZips([], join(tmp, 'x'))).rejects.toThrow(DataError);
  });
});
