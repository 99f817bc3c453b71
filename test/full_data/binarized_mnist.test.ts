// Full data (npm run test:data): the standard binarized MNIST files, 50,000 / 10,000 / 10,000.
import { describe, expect, it } from 'vitest';
import { BINARIZED_MNIST_SIZES, loadBinarizedMnist } from '../../src/data/binarized_mnist.ts';
import { binarizedMnistChecks } from '../data/suites/binarized_mnist.ts';

const STANDARD = { train: 50000, valid: 10000, test: 10000 } as const;

describe('binarized MNIST', () => {
  binarizedMnistChecks((split) => loadBinarizedMnist(split), { sizes: STANDARD, label: '' });

  it('BINARIZED_MNIST_SIZES are the standard split sizes', () => {
    expect(BINARIZED_MNIST_SIZES).toEqual(STANDARD);
  });
});
