import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadBinarizedMnist, packBits, unpackBits } from '../../src/data/binarized_mnist.ts';
import { DataError } from '../../src/data/paths.ts';
import { fixtureData } from '../fixtures/data.ts';
import { binarizedMnistChecks } from './suites/binarized_mnist.ts';

describe('binarized MNIST', () => {
  it('unpacks MSB-first bits and round-trips', () => {
    const packed = new Uint8Array([0b10000001, 0b01000000]);
    expect(Array.from(unpackBits(packed, 16))).toEqual([1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    const bits = unpackBits(Uint8Array.from({ length: 98 * 3 }, (_, i) => (i * 37) & 255));
    expect(packBits(bits)).toEqual(Uint8Array.from({ length: 98 * 3 }, (_, i) => (i * 37) & 255));
  });

  binarizedMnistChecks((split) => loadBinarizedMnist(split, fixtureData), {
    sizes: { train: 200, valid: 50, test: 50 },
    label: 'fixture ',
  });

  it('rejects an unknown split', () => {
    expect(() => loadBinarizedMnist('dev' as 'train')).toThrow(DataError);
  });

  it('rejects a file that is not a whole number of images, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmm-bmnist-'));
    try {
      writeFileSync(join(dir, 'binarized_mnist_test_bits.bin.gz'), gzipSync(new Uint8Array(98 * 2 + 5)));
      expect(() => loadBinarizedMnist('test', { dataDir: dir })).toThrow(/binarized_mnist_test_bits\.bin\.gz: decoded 201 bytes, expected a non-zero multiple of 98/);
      writeFileSync(join(dir, 'binarized_mnist_valid_bits.bin.gz'), 'not gzip');
      expect(() => loadBinarizedMnist('valid', { dataDir: dir })).toThrow(/binarized_mnist_valid_bits\.bin\.gz: cannot gunzip/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
