/**
 * The shapes shared by every data set: images as one flat `Uint8Array` [count, height*width]
 * (row-major), with an optional class label per image. Omniglot, the `mnist` package and
 * binarized MNIST all present themselves this way, so samplers are written once.
 */

/** A set of equally sized grayscale images. */
export interface ImageSet {
  /** A short name for messages and reports (`omniglot28`, `mnist-package`, ...). */
  readonly name: string;
  /** [count, height*width], row-major, values 0..maxValue. */
  readonly images: Uint8Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /**
   * The value meaning "full ink": 255 for intensities (binarize as Bernoulli(v/255)),
   * 1 for data that is already binary (binarized MNIST stores 0/1).
   */
  readonly maxValue: number;
  /** Named subsets of image indices (e.g. `background`/`evaluation`, `train`/`test`). */
  readonly splits: Readonly<Record<string, Int32Array>>;
}

/** An image set with a class per image (Omniglot characters, MNIST digits). */
export interface LabelledImageSet extends ImageSet {
  /** The 0-based class of each image: [count]. */
  readonly labels: Int32Array;
  /** Classes are 0..numClasses-1. */
  readonly numClasses: number;
}

/** Pixels per image. */
export function pixelsOf(set: ImageSet): number {
  return set.height * set.width;
}

/** The images of `set` at `indices`, copied into one [indices.length, height*width] array. */
export function gatherImages(set: ImageSet, indices: ArrayLike<number>): Uint8Array {
  const d = pixelsOf(set);
  const out = new Uint8Array(indices.length * d);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!(i >= 0 && i < set.count)) throw new RangeError(`gatherImages(${set.name}): index ${i} out of range [0, ${set.count})`);
    out.set(set.images.subarray(i * d, (i + 1) * d), k * d);
  }
  return out;
}

/** The integers [start, end) as an Int32Array. */
export function range(start: number, end: number): Int32Array {
  const out = new Int32Array(Math.max(0, end - start));
  for (let i = 0; i < out.length; i++) out[i] = start + i;
  return out;
}
