import { describe, expect, it } from 'vitest';
import { binarizeDynamic, binarizeFixed, renderPixels, toIntensity } from '../../src/data/binarize.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { Rng } from '../../src/random/rng.ts';
import { fixtureData } from '../fixtures/data.ts';

/** Exact equality of two typed arrays (fast, unlike a deep toEqual over 10^5 elements). */
const same = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
};

describe('binarization', () => {
  const o = loadOmniglot(fixtureData);
  const src = o.images.subarray(0, 400 * 784);

  it('dynamic: the mean of the binary pixels matches the mean intensity', () => {
    const b = binarizeDynamic(src, new Rng(1));
    const p = Array.from(src, (v) => v / 255);
    const m = mean(p);
    // Standard error of the mean of independent Bernoulli pixels.
    const se = Math.sqrt(p.reduce((s, q) => s + q * (1 - q), 0)) / p.length;
    expect(Math.abs(mean(b) - m)).toBeLessThan(5 * se);
    expect(b.every((v) => v === 0 || v === 1)).toBe(true);
  });

  it('dynamic: per-level frequencies match v/255', () => {
    const v = 64;
    const img = new Uint8Array(200_000).fill(v);
    const f = mean(binarizeDynamic(img, new Rng(2)));
    expect(Math.abs(f - v / 255)).toBeLessThan(5 * Math.sqrt(((v / 255) * (1 - v / 255)) / img.length));
  });

  it('dynamic: 0 is never ink and 255 always; each call draws anew; seeds reproduce', () => {
    const edge = new Uint8Array([0, 255, 0, 255]);
    expect(Array.from(binarizeDynamic(edge, new Rng(3)))).toEqual([0, 1, 0, 1]);
    const r = new Rng(4);
    const a = binarizeDynamic(src, r);
    const b = binarizeDynamic(src, r);
    expect(same(a, b)).toBe(false);
    expect(same(binarizeDynamic(src, new Rng(4)), a)).toBe(true);
  });

  it('fixed: the same for the same seed on every call, different for another seed', () => {
    const a = binarizeFixed(src, 7);
    expect(same(binarizeFixed(src, 7), a)).toBe(true);
    expect(same(binarizeFixed(src, 8), a)).toBe(false);
    expect(Math.abs(mean(a) - mean(toIntensity(src)))).toBeLessThan(0.01);
  });

  it('fixed: an image is binarized by its id, whatever else is in the batch', () => {
    const all = binarizeFixed(src, 9); // ids 0..399
    const ids = [17, 3, 399];
    const sub = new Uint8Array(ids.length * 784);
    ids.forEach((id, k) => sub.set(src.subarray(id * 784, (id + 1) * 784), k * 784));
    const b = binarizeFixed(sub, 9, { imageIds: ids });
    ids.forEach((id, k) => expect(same(b.subarray(k * 784, (k + 1) * 784), all.subarray(id * 784, (id + 1) * 784))).toBe(true));
  });

  it('0/1 data (maxValue 1) passes through unchanged', () => {
    const bits = Uint8Array.from({ length: 784 }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
    expect(Array.from(binarizeDynamic(bits, new Rng(1), { maxValue: 1 }))).toEqual(Array.from(bits));
    expect(Array.from(binarizeFixed(bits, 1, { maxValue: 1 }))).toEqual(Array.from(bits));
    expect(Array.from(toIntensity(bits, { maxValue: 1 }))).toEqual(Array.from(bits));
  });

  it('intensity mode is v/255; renderPixels dispatches on the mode', () => {
    const img = new Uint8Array([0, 51, 255]);
    expect(Array.from(toIntensity(img))).toEqual([0, Math.fround(0.2), 1]);
    const ctx = { rng: new Rng(0), imageIds: [5], pixelsPerImage: 3, maxValue: 255 };
    expect(renderPixels(img, { fixed: 1 }, ctx)).toEqual(binarizeFixed(img, 1, { imageIds: [5], pixelsPerImage: 3 }));
    expect(renderPixels(img, 'intensity', ctx)).toEqual(toIntensity(img));
    expect(() => binarizeDynamic(img, new Rng(0), { out: new Float32Array(2) })).toThrow(RangeError);
  });
});
