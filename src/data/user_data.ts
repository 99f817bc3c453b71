/**
 * A user's own data set, named by a path instead of a built-in name (`--dataset path`):
 *
 * - a NumPy `.npy` file: images `[N, H, W]`, `[N, H, W, 1]` or `[N, D]`, no labels;
 * - a NumPy `.npz` archive: images under `images`, `x` or `x_train` (or its only array), optional
 *   integer labels `[N]` under `labels`, `y` or `y_train`, and optionally a validation set under
 *   `x_valid`/`images_valid`/`x_test`/`images_test` (labels `y_valid`/`labels_valid`/`y_test`/`labels_test`);
 * - a folder of PNG images with one sub-folder per class, at any depth: the class of an image is
 *   the folder that holds it (so the Omniglot originals, `Alphabet/characterNN/*.png`, have one
 *   class per character).
 *
 * Pixel values: 0/1 (or bool) are binary data (`maxValue` 1); `uint8` 0..255 and floats in
 * [0, 1] are ink intensities (stored as uint8, 255 = ink; binarized as Bernoulli(v) when a
 * `binary[...]` input reads them). Anything else is a {@link DataError} naming the file.
 * PNG folders: gray levels with dark ink on a light background (detected from the image border)
 * are inverted so that 255 = ink, as in the built-in sets.
 *
 * Validation: a second file (`valid`), the validation arrays of an `.npz`, or else a held-out part:
 * every 10th image (split `valid`, the rest `train`) and every 5th class (splits
 * `valid_classes`/`train_classes`, for few-shot episodes on classes never seen in training).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { convertIndexedToRgb, decode as decodePng, type DecodedPng } from 'fast-png';
import { describeArray, parseNpy, parseNpz, type NpyArray } from './npy.ts';
import { DataError } from './paths.ts';
import type { ImageSet } from './types.ts';

import { datasetNames } from './registry.ts';

/** A user's data set: images, labels when the source has them, and train/valid splits. */
export interface UserDataset extends ImageSet {
  /** The file or folder it was read from (also its `name`, so errors name it). */
  readonly path: string;
  /** 0-based classes [count] (labels remapped to 0..numClasses-1 in sorted order), if labelled. */
  readonly labels?: Int32Array;
  readonly numClasses?: number;
  /** The original label (npz) or folder (PNG folder) of each class. */
  readonly classNames?: readonly string[];
  /** Where the validation images came from, for run descriptions. */
  readonly validFrom: 'file' | 'npz' | 'held-out';
}

export interface UserDataOptions {
  /** A second file or folder with the validation images. */
  readonly valid?: string;
  /** Resize images to this [height, width] by area averaging (PNG folders only). */
  readonly size?: readonly [number, number];
}

interface Raw {
  images: Uint8Array;
  count: number;
  height: number;
  width: number;
  maxValue: number;
  labels?: (number | string)[];
}

function fail(file: string, why: string): never {
  throw new DataError(`${file}: ${why}`);
}

function readBytes(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    fail(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Images from an array [N, H, W], [N, H, W, 1] or [N, D]: checked values as uint8. */
function imagesFromArray(a: NpyArray, file: string): Raw {
  const s = a.shape;
  let height: number;
  let width: number;
  if (s.length === 3 || (s.length === 4 && s[3] === 1)) [height, width] = [s[1]!, s[2]!];
  else if (s.length === 2) {
    const r = Math.round(Math.sqrt(s[1]!));
    [height, width] = r * r === s[1] ? [r, r] : [1, s[1]!];
  } else {
    fail(file, `images must be an array [N, H, W], [N, H, W, 1] or [N, D] of gray values; found ${describeArray(a)}${s.length === 4 ? ' (colour images are not supported: convert to gray)' : ''}`);
  }
  const count = s[0]!;
  if (count === 0 || height * width === 0) fail(file, `no images in ${describeArray(a)}`);
  const d = a.data;
  let min = Infinity;
  let max = -Infinity;
  let binary = true;
  let integral = true;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v !== 0 && v !== 1) binary = false;
    if (!Number.isInteger(v)) integral = false;
  }
  const images = new Uint8Array(d.length);
  if (binary) {
    images.set(d as ArrayLike<number>);
    return { images, count, height, width, maxValue: 1 };
  }
  const isFloat = a.dtype.startsWith('f');
  if (!isFloat && integral && min >= 0 && max <= 255) {
    images.set(d as ArrayLike<number>);
    return { images, count, height, width, maxValue: 255 };
  }
  if (isFloat && min >= 0 && max <= 1) {
    for (let i = 0; i < d.length; i++) images[i] = Math.round(d[i]! * 255);
    return { images, count, height, width, maxValue: 255 };
  }
  fail(
    file,
    `pixel values must be binary (0/1), integers 0..255 or floats in [0, 1] (ink intensities); found ${describeArray(a)} with values in [${min}, ${max}]`,
  );
}

function labelsFromArray(a: NpyArray, n: number, file: string): number[] {
  if (a.shape.length !== 1 || a.shape[0] !== n) fail(file, `labels must be an integer array [${n}] (one per image); found ${describeArray(a)}`);
  const out = Array.from(a.data as ArrayLike<number>);
  if (out.some((v) => !Number.isInteger(v))) fail(file, `labels must be integers; found ${describeArray(a)} with fractional values`);
  return out;
}

const IMAGE_KEYS = ['images', 'x', 'x_train', 'train_images', 'data'];
const LABEL_KEYS = ['labels', 'y', 'y_train', 'train_labels', 'targets'];
const VALID_IMAGE_KEYS = ['x_valid', 'images_valid', 'valid_images', 'x_test', 'images_test', 'test_images'];
const VALID_LABEL_KEYS = ['y_valid', 'labels_valid', 'valid_labels', 'y_test', 'labels_test', 'test_labels'];

function pick(z: Map<string, NpyArray>, keys: string[]): [string, NpyArray] | undefined {
  for (const k of keys) {
    const a = z.get(k);
    if (a) return [k, a];
  }
  return undefined;
}

function readNpz(path: string): { train: Raw; valid?: Raw } {
  const z = parseNpz(readBytes(path), path);
  const imgs = pick(z, IMAGE_KEYS) ?? (z.size === 1 ? [...z.entries()][0] : undefined);
  if (!imgs) fail(path, `no images: expected an array named ${IMAGE_KEYS.join(', ')}; the archive holds ${[...z.keys()].join(', ')}`);
  const train = imagesFromArray(imgs[1], `${path}[${imgs[0]}]`);
  const lab = pick(z, LABEL_KEYS);
  if (lab) train.labels = labelsFromArray(lab[1], train.count, `${path}[${lab[0]}]`);
  const vImgs = pick(z, VALID_IMAGE_KEYS);
  if (!vImgs) return { train };
  const valid = imagesFromArray(vImgs[1], `${path}[${vImgs[0]}]`);
  const vLab = pick(z, VALID_LABEL_KEYS);
  if (vLab) valid.labels = labelsFromArray(vLab[1], valid.count, `${path}[${vLab[0]}]`);
  return { train, valid };
}

/** Gray 0..255 (255 = white) of a decoded PNG, transparent pixels as white. */
function grayOf(png: DecodedPng): Uint8Array {
  const { width, height } = png;
  const out = new Uint8Array(width * height);
  if (png.depth < 8 && !png.palette) {
    const bits = png.depth;
    const max = (1 << bits) - 1;
    const rowBytes = Math.ceil((width * bits) / 8);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * bits;
        const v = (png.data[y * rowBytes + (bit >> 3)]! >> (8 - bits - (bit & 7))) & max;
        out[y * width + x] = Math.round((255 * v) / max);
      }
    }
    return out;
  }
  const data = png.palette ? convertIndexedToRgb(png) : png.data;
  const channels = png.palette ? png.palette[0]!.length : png.channels;
  const max = png.palette || png.depth === 8 ? 255 : 65535;
  const colour = channels >= 3;
  const alpha = channels === 2 || channels === 4;
  for (let k = 0; k < out.length; k++) {
    const o = k * channels;
    const lum = colour ? (data[o]! + data[o + 1]! + data[o + 2]!) / 3 : data[o]!;
    const a = alpha ? data[o + channels - 1]! / max : 1;
    out[k] = Math.round((255 * (lum * a + max * (1 - a))) / max);
  }
  return out;
}

/** Area-average resampling of a gray image [h, w] to [H, W] (exact box overlaps, in floats). */
export function resizeArea(src: Uint8Array, h: number, w: number, H: number, W: number): Uint8Array {
  const axis = (n: number, m: number) => {
    // For each target cell j: the source cells it overlaps and the overlap lengths (cell = n/m).
    const cells: [number, number][][] = [];
    for (let j = 0; j < m; j++) {
      const lo = (j * n) / m;
      const hi = ((j + 1) * n) / m;
      const row: [number, number][] = [];
      for (let c = Math.floor(lo); c < Math.min(n, Math.ceil(hi)); c++) row.push([c, Math.min(hi, c + 1) - Math.max(lo, c)]);
      cells.push(row);
    }
    return cells;
  };
  const ay = axis(h, H);
  const ax = axis(w, W);
  const area = (h / H) * (w / W);
  const out = new Uint8Array(H * W);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      let s = 0;
      for (const [r, wr] of ay[i]!) for (const [c, wc] of ax[j]!) s += src[r * w + c]! * wr * wc;
      out[i * W + j] = Math.min(255, Math.round(s / area));
    }
  }
  return out;
}

function listPngs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (extname(e.name).toLowerCase() === '.png') out.push(p);
    }
  };
  walk(dir);
  return out;
}

function readFolder(dir: string, size?: readonly [number, number]): Raw {
  const files = listPngs(dir);
  if (files.length === 0) fail(dir, 'no PNG images found (expected one sub-folder of .png images per class)');
  let h = 0;
  let w = 0;
  const chunks: Uint8Array[] = [];
  const labels: string[] = [];
  for (const f of files) {
    let png: DecodedPng;
    try {
      png = decodePng(readBytes(f), { checkCrc: true });
    } catch (e) {
      if (e instanceof DataError) throw e;
      fail(f, `cannot decode PNG (${(e as Error).message})`);
    }
    if (chunks.length === 0) [h, w] = [png.height, png.width];
    else if (png.height !== h || png.width !== w) {
      fail(f, `is ${png.width}x${png.height} but the other images of ${dir} are ${w}x${h}: all images must have the same size`);
    }
    let gray = grayOf(png);
    // Dark ink on a light background (mean of the border > half): invert so that 255 = ink.
    let border = 0;
    for (let x = 0; x < w; x++) border += gray[x]! + gray[(h - 1) * w + x]!;
    for (let y = 0; y < h; y++) border += gray[y * w]! + gray[y * w + w - 1]!;
    if (border / (2 * (w + h)) > 127.5) gray = gray.map((v) => 255 - v);
    if (size && (size[0] !== h || size[1] !== w)) gray = resizeArea(gray, h, w, size[0], size[1]);
    chunks.push(gray);
    const cls = relative(dir, resolve(f, '..'));
    labels.push(cls === '' ? '' : cls.split(sep).join('/'));
  }
  const [H, W] = size ?? [h, w];
  const images = new Uint8Array(files.length * H * W);
  chunks.forEach((c, k) => images.set(c, k * H * W));
  const binary = images.every((v) => v === 0 || v === 255);
  if (binary) for (let i = 0; i < images.length; i++) images[i] = images[i]! ? 1 : 0;
  const raw: Raw = { images, count: files.length, height: H, width: W, maxValue: binary ? 1 : 255 };
  if (labels.some((l) => l !== '')) {
    const loose = files.find((_, k) => labels[k] === '');
    if (loose) fail(loose, `is directly in ${dir}; put every image in its class's sub-folder`);
    raw.labels = labels;
  }
  return raw;
}

function readAny(path: string, size?: readonly [number, number]): { train: Raw; valid?: Raw; from: 'npz' | undefined } {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    fail(
      path,
      `no such file or folder (a data set is ${datasetNames().join(', ')}, or a path: a .npy or .npz file, or a folder of PNG images with one sub-folder per class)`,
    );
  }
  if (isDir) return { train: readFolder(path, size), from: undefined };
  const ext = extname(path).toLowerCase();
  if (ext === '.npz') {
    const r = readNpz(path);
    return { ...r, from: r.valid ? 'npz' : undefined };
  }
  if (ext === '.npy') return { train: imagesFromArray(parseNpy(readBytes(path), path), path), from: undefined };
  fail(path, `unknown data format '${ext || basename(path)}' (expected .npy, .npz or a folder of PNG images)`);
}

/** Every k-th element (k-1, 2k-1, ...) vs the rest. */
function everyKth(n: number, k: number): [Int32Array, Int32Array] {
  const keep: number[] = [];
  const held: number[] = [];
  for (let i = 0; i < n; i++) (i % k === k - 1 ? held : keep).push(i);
  return [Int32Array.from(keep), Int32Array.from(held)];
}

/**
 * Loads a user's data set (see the module comment for the formats).
 * @throws DataError naming the file and what was expected.
 */
export function loadUserDataset(path: string, opts: UserDataOptions = {}): UserDataset {
  const file = resolve(path);
  const main = readAny(file, opts.size);
  let valid = main.valid;
  let validFrom: UserDataset['validFrom'] = main.from === 'npz' ? 'npz' : 'held-out';
  if (opts.valid !== undefined) {
    const v = readAny(resolve(opts.valid), opts.size ?? [main.train.height, main.train.width]);
    valid = v.train;
    validFrom = 'file';
  }
  const t = main.train;
  if (valid) {
    if (valid.height * valid.width !== t.height * t.width) {
      fail(opts.valid ? resolve(opts.valid) : file, `validation images have ${valid.height}x${valid.width} pixels, the training images ${t.height}x${t.width}`);
    }
    if (!!valid.labels !== !!t.labels) fail(opts.valid ? resolve(opts.valid) : file, 'the training and validation images must both have labels or both have none');
  }
  const count = t.count + (valid?.count ?? 0);
  const images = new Uint8Array(count * t.height * t.width);
  images.set(t.images, 0);
  if (valid) images.set(valid.images, t.images.length);
  // Binary only if both parts are; else 0/1 data is scaled to 0/255.
  const maxValue = valid && valid.maxValue !== t.maxValue ? 255 : t.maxValue;
  if (maxValue === 255) {
    if (t.maxValue === 1) for (let i = 0; i < t.images.length; i++) images[i] = images[i]! * 255;
    if (valid && valid.maxValue === 1) for (let i = t.images.length; i < images.length; i++) images[i] = images[i]! * 255;
  }

  let labels: Int32Array | undefined;
  let classNames: string[] | undefined;
  if (t.labels) {
    const all = [...t.labels, ...(valid?.labels ?? [])];
    const uniq = [...new Set(all)].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
    const id = new Map(uniq.map((u, k) => [u, k]));
    labels = Int32Array.from(all, (u) => id.get(u)!);
    classNames = uniq.map(String);
  }

  const splits: Record<string, Int32Array> = {};
  if (valid) {
    splits['train'] = Int32Array.from({ length: t.count }, (_, i) => i);
    splits['valid'] = Int32Array.from({ length: valid.count }, (_, i) => t.count + i);
  } else {
    [splits['train'], splits['valid']] = everyKth(count, 10);
  }
  if (labels) {
    if (valid) {
      // Classes by where their images are: the second file's classes are its own split.
      const validClasses = new Set(Array.from(splits['valid']!, (i) => labels![i]!));
      splits['train_classes'] = splits['train']!.filter((i) => !validClasses.has(labels![i]!));
      splits['valid_classes'] = splits['valid']!;
      if (splits['train_classes']!.length === 0) splits['train_classes'] = splits['train']!;
    } else {
      const [, heldClasses] = everyKth(classNames!.length, 5);
      const held = new Set(heldClasses);
      const tr: number[] = [];
      const va: number[] = [];
      for (let i = 0; i < count; i++) (held.has(labels[i]!) ? va : tr).push(i);
      splits['train_classes'] = Int32Array.from(tr);
      splits['valid_classes'] = Int32Array.from(va);
    }
  }
  return {
    name: file,
    path: file,
    images,
    count,
    height: t.height,
    width: t.width,
    maxValue,
    splits,
    ...(labels ? { labels, numClasses: classNames!.length, classNames } : {}),
    validFrom,
  };
}
