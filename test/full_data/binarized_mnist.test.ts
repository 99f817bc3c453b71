// Full data (npm run test:data): the standard binarized MNIST files, 50,000 / 10,000 / 10,000.
import { describe, expect, it } from 'vitest';
import { BINARIZED_MNIST_SIZES, loadBinarizedMnist } from '../../src/data/binarized_mnist.ts';

describe('binarized MNIST', () => {
  it.each([
    ['train', 50000],
    ['valid', 10000],
    ['test', 10000],
  ] as const)('%s has %i images of 0/1 with about 13%% ink', (split, n) => {
    const s = loadBinarizedMnist(split);
    expect(s.count).toBe(n);
    expect(BINARIZED_MNIST_SIZES[split]).toBe(n);
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
});
