/**
 * Binarized MNIST: the standard fixed binarization of Larochelle & Murray (2011),
 * 50,000 / 10,000 / 10,000 images, derived from MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0).
 *
 * Files `binarized_mnist_{train,valid,test}_bits.bin.gz`: gzip of N x 98 bytes, one 28x28
 * image per 98 bytes, bit-packed MSB-first, row-major, bit 1 = ink. No labels.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError, resolveDataFile, type ResolveOptions } from './paths.ts';
import type { ImageSet } from './types.ts';
import { range } from './types.ts';

export type BinarizedMnistSplit = 'train' | 'valid' | 'test';

export const BINARIZED_MNIST_SIZES: Readonly<Record<BinarizedMnistSplit, number>> = {
  train: 50000,
  valid: 10000,
  test: 10000,
};

const PIXELS = 784;
const BYTES_PER_IMAGE = PIXELS / 8;

export function binarizedMnistFile(split: BinarizedMnistSplit): string {
  return `binarized_mnist_${split}_bits.bin.gz`;
}

/** Unpacks MSB-first bit-packed images: [n, bytesPerImage] -> [n, pixels] of 0/1. */
export function unpackBits(packed: Uint8Array, pixelsPerImage = PIXELS): Uint8Array {
  const bytesPer = Math.ceil(pixelsPerImage / 8);
  if (packed.length % bytesPer !== 0) {
    throw new RangeError(`unpackBits: ${packed.length} bytes is not a multiple of ${bytesPer}`);
  }
  const n = packed.length / bytesPer;
  const out = new Uint8Array(n * pixelsPerImage);
  if (pixelsPerImage % 8 === 0) {
    // No padding bits: unpack the whole buffer byte by byte.
    for (let k = 0, o = 0; k < packed.length; k++, o += 8) {
      const b = packed[k]!;
      if (b === 0) continue;
      out[o] = b >> 7;
      out[o + 1] = (b >> 6) & 1;
      out[o + 2] = (b >> 5) & 1;
      out[o + 3] = (b >> 4) & 1;
      out[o + 4] = (b >> 3) & 1;
      out[o + 5] = (b >> 2) & 1;
      out[o + 6] = (b >> 1) & 1;
      out[o + 7] = b & 1;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const src = i * bytesPer;
    const dst = i * pixelsPerImage;
    for (let p = 0; p < pixelsPerImage; p++) {
      out[dst + p] = (packed[src + (p >> 3)]! >> (7 - (p & 7))) & 1;
    }
  }
  return out;
}

/** Packs 0/1 images MSB-first (the inverse of {@link unpackBits}). */
export function packBits(bits: Uint8Array, pixelsPerImage = PIXELS): Uint8Array {
  const bytesPer = Math.ceil(pixelsPerImage / 8);
  const n = bits.length / pixelsPerImage;
  const out = new Uint8Array(n * bytesPer);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < pixelsPerImage; p++) {
      if (bits[i * pixelsPerImage + p]) out[i * bytesPer + (p >> 3)]! |= 0x80 >> (p & 7);
    }
  }
  return out;
}

const cache = new Map<string, ImageSet>();

/**
 * Loads one split of binarized MNIST as images of 0/1 (`maxValue` 1), cached per process.
 * @throws DataError when the file is missing or has the wrong size.
 */
export function loadBinarizedMnist(split: BinarizedMnistSplit, opts: ResolveOptions = {}): ImageSet {
  if (!(split in BINARIZED_MNIST_SIZES)) {
    throw new DataError(`unknown binarized MNIST split '${split}' (expected train, valid or test)`);
  }
  const path = resolveDataFile(binarizedMnistFile(split), opts);
  const hit = cache.get(path);
  if (hit) return hit;
  let packed: Buffer;
  try {
    packed = gunzipSync(readFileSync(path));
  } catch (e) {
    throw new DataError(`${path}: cannot gunzip (${(e as Error).message})`);
  }
  // The standard files hold BINARIZED_MNIST_SIZES[split] images; any whole number of images is
  // accepted so that subsets (test fixtures, a user's cut) load the same way.
  if (packed.length === 0 || packed.length % BYTES_PER_IMAGE !== 0) {
    throw new DataError(
      `${path}: decoded ${packed.length} bytes, expected a non-zero multiple of ${BYTES_PER_IMAGE} bytes (one 28x28 image per ${BYTES_PER_IMAGE} bytes; the full ${split} split is ${BINARIZED_MNIST_SIZES[split]} images)`,
    );
  }
  const expected = packed.length / BYTES_PER_IMAGE;
  const images = unpackBits(new Uint8Array(packed.buffer, packed.byteOffset, packed.length));
  const set: ImageSet = {
    name: `binarized-mnist-${split}`,
    images,
    count: expected,
    height: 28,
    width: 28,
    maxValue: 1,
    splits: { all: range(0, expected) },
  };
  cache.set(path, set);
  return set;
}
