/**
 * Binarization of grayscale images for Bernoulli-likelihood models.
 *
 * - Dynamic binarization (training): each pixel ~ Bernoulli(v / maxValue), a fresh draw every
 *   time the image is used (Salakhutdinov & Murray 2008 practice; used by the IWAE and VMA papers).
 * - Fixed binarization (evaluation): the same Bernoulli draw, but from a stream determined by
 *   (seed, image id) only, so an image is binarized identically whatever batch, episode or
 *   memory slot it appears in, and on every call.
 *
 * The test `u < v/maxValue` is done exactly in integers: with u32 uniform in [0, 2^32), the pixel
 * is ink iff u32 < v * 2^32 / maxValue, so v = maxValue is always ink and v = 0 never.
 */
import { hashSeed, Rng, type Seed } from '../random/rng.ts';

const TWO_POW_32 = 4294967296;

const thresholdCache = new Map<number, Float64Array>();

/** thresholds[v] = v * 2^32 / maxValue for v in 0..255. */
function thresholds(maxValue: number): Float64Array {
  let t = thresholdCache.get(maxValue);
  if (!t) {
    if (!(maxValue >= 1 && maxValue <= 255) || !Number.isInteger(maxValue)) {
      throw new RangeError(`binarize: maxValue must be an integer in [1, 255], got ${maxValue}`);
    }
    t = new Float64Array(256);
    for (let v = 0; v < 256; v++) t[v] = v >= maxValue ? TWO_POW_32 : (v * TWO_POW_32) / maxValue;
    thresholdCache.set(maxValue, t);
  }
  return t;
}

function output(n: number, out: Float32Array | undefined, who: string): Float32Array {
  if (out === undefined) return new Float32Array(n);
  if (out.length !== n) throw new RangeError(`${who}: out has length ${out.length}, expected ${n}`);
  return out;
}

export interface BinarizeOptions {
  /** The value meaning "full ink" (255 for intensities; 1 for 0/1 data). Default 255. */
  readonly maxValue?: number;
  /** Where to write (length = src.length); a new array if omitted. */
  readonly out?: Float32Array;
}

/**
 * Dynamic binarization: out[j] = 1 with probability src[j] / maxValue, drawing from `rng`
 * (which advances, so the next call gives a new draw).
 */
export function binarizeDynamic(src: Uint8Array, rng: Rng, opts: BinarizeOptions = {}): Float32Array {
  const thr = thresholds(opts.maxValue ?? 255);
  const out = output(src.length, opts.out, 'binarizeDynamic');
  for (let j = 0; j < src.length; j++) out[j] = rng.nextUint32() < thr[src[j]!]! ? 1 : 0;
  return out;
}

export interface FixedBinarizeOptions extends BinarizeOptions {
  /** Pixels per image. Default 784. */
  readonly pixelsPerImage?: number;
  /**
   * The id of each image in `src` (normally its index in the data set), which selects its
   * random stream. Default 0, 1, 2, ... (the position in `src`).
   */
  readonly imageIds?: ArrayLike<number>;
}

/**
 * Fixed binarization: like {@link binarizeDynamic}, but image k is binarized from the stream
 * `(seed, imageIds[k])`, so the result depends only on the seed and the image's id.
 */
export function binarizeFixed(src: Uint8Array, seed: Seed, opts: FixedBinarizeOptions = {}): Float32Array {
  const d = opts.pixelsPerImage ?? 784;
  if (src.length % d !== 0) throw new RangeError(`binarizeFixed: ${src.length} values is not a multiple of ${d} pixels`);
  const n = src.length / d;
  const ids = opts.imageIds;
  if (ids !== undefined && ids.length !== n) {
    throw new RangeError(`binarizeFixed: ${ids.length} image ids for ${n} images`);
  }
  const thr = thresholds(opts.maxValue ?? 255);
  const out = output(src.length, opts.out, 'binarizeFixed');
  const base = hashSeed(seed, 'fixed-binarization');
  for (let k = 0; k < n; k++) {
    const rng = new Rng(base, ids === undefined ? k : ids[k]!);
    for (let j = k * d, end = j + d; j < end; j++) out[j] = rng.nextUint32() < thr[src[j]!]! ? 1 : 0;
  }
  return out;
}

/** Intensities as floats in [0, 1]: out[j] = src[j] / maxValue. */
export function toIntensity(src: Uint8Array, opts: BinarizeOptions = {}): Float32Array {
  const maxValue = opts.maxValue ?? 255;
  const out = output(src.length, opts.out, 'toIntensity');
  const inv = 1 / maxValue;
  for (let j = 0; j < src.length; j++) out[j] = Math.min(1, src[j]! * inv);
  return out;
}

/**
 * How a sampler turns stored pixels into model input:
 * - `'dynamic'`: fresh Bernoulli draws from the sampler's pixel stream (training);
 * - `{ fixed: seed }`: the fixed binarization of {@link binarizeFixed} by image index (evaluation);
 * - `'intensity'`: v / maxValue, no sampling (pictures, Gaussian/continuous models).
 */
export type PixelMode = 'dynamic' | 'intensity' | { readonly fixed: Seed };

/** Applies a {@link PixelMode} to images whose data-set indices are `imageIds`. */
export function renderPixels(
  src: Uint8Array,
  mode: PixelMode,
  ctx: { readonly rng: Rng; readonly imageIds: ArrayLike<number>; readonly pixelsPerImage: number; readonly maxValue: number },
  out?: Float32Array,
): Float32Array {
  if (mode === 'dynamic') return binarizeDynamic(src, ctx.rng, { maxValue: ctx.maxValue, out });
  if (mode === 'intensity') return toIntensity(src, { maxValue: ctx.maxValue, out });
  return binarizeFixed(src, mode.fixed, {
    maxValue: ctx.maxValue,
    out,
    imageIds: ctx.imageIds,
    pixelsPerImage: ctx.pixelsPerImage,
  });
}
