/**
 * The binarized MNIST file checks shared by test/data/binarized_mnist.test.ts (the fixture files,
 * `npm test`) and test/full_data/binarized_mnist.test.ts (the standard files, `npm run test:data`).
 */
import { expect, it } from 'vitest';
import type { BinarizedMnistSplit } from '../../../src/data/binarized_mnist.ts';
import type { ImageSet } from '../../../src/data/types.ts';

/** What the checks expect of the loaded files. */
export interface BinarizedMnistScale {
  /** Images per split: 200 / 50 / 50 in the fixtures, the standard 50,000 / 10,000 / 10,000 in full. */
  sizes: Record<BinarizedMnistSplit, number>;
  /** Prefix of the test names saying which files are read ('fixture ' for the fixtures, '' in full). */
  label: string;
}

/** Registers, for each split, the check of its count, 0/1 values, ink ratio and empty corner. */
export function binarizedMnistChecks(
  load: (split: BinarizedMnistSplit) => ImageSet,
  scale: BinarizedMnistScale,
): void {
  it.each([
    ['train', scale.sizes.train],
    ['valid', scale.sizes.valid],
    ['test', scale.sizes.test],
  ] as const)(`${scale.label}%s has %i images of 0/1 with about 13%% ink`, (split, n) => {
    const s = load(split);
    expect(s.count).toBe(n);
    expect(s.images.length).toBe(n * 784);
    expect(s.maxValue).toBe(1);
    let ones = 0;
    let above = 0;
    const im = s.images;
    for (let j = 0; j < im.length; j++) {
      const v = im[j]!;
      ones += v;
      above |= v & ~1;
    }
    expect(above).toBe(0);
    const mean = ones / s.images.length;
    expect(mean).toBeGreaterThan(0.1);
    expect(mean).toBeLessThan(0.16);
    // Border pixels of MNIST are almost always empty; the centre often has ink.
    let corner = 0;
    for (let i = 0; i < n; i++) corner += s.images[i * 784]!;
    expect(corner).toBe(0);
  });
}
