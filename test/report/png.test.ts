import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { fixtureData } from '../fixtures/data.ts';
import { encodeImageGrid, imageGridLayout, writeImageGrid } from '../../src/report/png.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-png-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('writeImageGrid', () => {
  it('writes a grayscale PNG of the right size with each image at its cell, scaled', () => {
    const o = loadOmniglot(fixtureData);
    const n = 6;
    const imgs = o.images.subarray(0, n * 784);
    const path = join(tmp, 'grid.png');
    const layout = writeImageGrid(path, imgs, { rows: 2, cols: 3, scale: 2, gap: 2 });
    expect(layout).toEqual({ pngWidth: 3 * 56 + 4 * 2, pngHeight: 2 * 56 + 3 * 2, cellWidth: 56, cellHeight: 56, gap: 2 });
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]); // no temp file left behind
    const png = PNG.sync.read(readFileSync(path));
    expect([png.width, png.height]).toEqual([layout.pngWidth, layout.pngHeight]);
    const at = (x: number, y: number) => png.data[4 * (y * png.width + x)]!;
    for (let k = 0; k < n; k++) {
      const r = Math.floor(k / 3);
      const c = k % 3;
      const x0 = 2 + c * 58;
      const y0 = 2 + r * 58;
      for (let i = 0; i < 28; i++) {
        for (let j = 0; j < 28; j++) {
          const v = imgs[k * 784 + i * 28 + j]!;
          // Each source pixel becomes a 2x2 block.
          if (at(x0 + 2 * j, y0 + 2 * i) !== v || at(x0 + 2 * j + 1, y0 + 2 * i + 1) !== v) {
            throw new Error(`image ${k} pixel (${i}, ${j}) differs`);
          }
        }
      }
    }
    expect(at(0, 0)).toBe(128); // separator
    expect(at(1, 30)).toBe(128);
  });

  it('accepts floats in [0, 1], leaves missing cells blank, and can invert', () => {
    const imgs = new Float32Array(2 * 4).map((_, i) => (i % 4) / 3); // two 2x2 images: 0, 1/3, 2/3, 1
    const png = PNG.sync.read(encodeImageGrid(imgs, { rows: 1, cols: 3, height: 2, width: 2, scale: 1, gap: 1 }));
    expect([png.width, png.height]).toEqual([3 * 2 + 4, 2 + 2]);
    const row = (y: number) => Array.from({ length: png.width }, (_, x) => png.data[4 * (y * png.width + x)]!);
    expect(row(1)).toEqual([128, 0, 85, 128, 0, 85, 128, 0, 0, 128]);
    expect(row(2)).toEqual([128, 170, 255, 128, 170, 255, 128, 0, 0, 128]);
    const inv = PNG.sync.read(encodeImageGrid(imgs, { rows: 1, cols: 3, height: 2, width: 2, scale: 1, gap: 1, invert: true }));
    expect(inv.data[4 * (1 * inv.width + 1)]).toBe(255);
    expect(inv.data[4 * (1 * inv.width + 7)]).toBe(255); // blank cell is white when inverted
    // Floats above 1 are read as 0..255.
    const big = PNG.sync.read(encodeImageGrid(new Float32Array([0, 100, 200, 255]), { rows: 1, cols: 1, height: 2, width: 2, scale: 1, gap: 0 }));
    expect([0, 1, 2, 3].map((k) => big.data[4 * k])).toEqual([0, 100, 200, 255]);
  });

  it('rejects images that do not fit', () => {
    expect(() => encodeImageGrid(new Uint8Array(784 * 5), { rows: 2, cols: 2 })).toThrow(/do not fit/);
    expect(() => encodeImageGrid(new Uint8Array(100), { rows: 2, cols: 2 })).toThrow(/whole number/);
    expect(() => imageGridLayout({ rows: 0, cols: 2 })).toThrow(RangeError);
  });
});
