/**
 * `readImageArray(path)`: images a user brings, from a NumPy `.npy` or `.npz` file, for
 * `vmm classify`. The one entry point through which classify reads arrays, so a fuller NumPy
 * reader (src/data/) can replace the minimal one below without touching classify.
 *
 * Minimal NPY reader (format versions 1-3, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * little-endian or byte-sized dtypes bool, uint8, int8, int16/uint16, int32/uint32, int64/uint64
 * (as doubles), float32, float64; C order only. NPZ: a ZIP of `.npy` files (stored or deflated);
 * the images are the array named `images`, else `x`, else the first array; an optional `labels`
 * array (one integer or string label per image) is returned too.
 *
 * Accepted shapes: [N, H, W], [N, H, W, 1], [N, 1, H, W], [N, D] (H = W = sqrt(D) when square).
 * Values: intensities in [0, 1] (floats) or [0, 255] (integers, or floats with a maximum above 1),
 * returned as uint8 in 0..255 so they binarize exactly as the data sets do (src/data/binarize.ts).
 */
import { readFileSync } from 'node:fs';
import { readZip } from './zip.ts';
import { RunError } from '../diagnostics/errors.ts';

export interface ImageArray {
  /** [count, height * width], 0..255 */
  pixels: Uint8Array;
  count: number;
  height: number;
  width: number;
  /** One label per image when the file has them (NPZ `labels`). */
  labels?: string[];
}

interface NpyArray {
  shape: number[];
  values: Float64Array | string[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses one `.npy` file's bytes. `label` names it in errors. */
export function parseNpy(buf: Uint8Array, label: string): NpyArray {
  const bad = (why: string): never => {
    throw new RunError(`${label}: not a NumPy .npy array I can read (${why})`);
  };
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) bad('missing \\x93NUMPY magic');
  const major = buf[6]!;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) bad('truncated header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1] ?? bad(`no descr in header ${header.trim()}`);
  if (/'fortran_order'\s*:\s*True/.test(header)) bad('Fortran order; save with np.ascontiguousarray');
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1] ?? bad('no shape in header');
  const shape = shapeText.split(',').map((t) => t.trim()).filter((t) => t !== '').map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr) ?? bad(`dtype ${descr}`);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  if (order === '>' && size > 1) bad(`big-endian dtype ${descr}`);
  if (off + n * (kind === 'U' ? 4 * size : size) > buf.length) bad(`data shorter than shape [${shape}] of ${descr}`);
  if (kind === 'U') {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let j = 0; j < size; j++) {
        const c = dv.getUint32(off + (i * size + j) * 4, true);
        if (c === 0) break;
        s += String.fromCodePoint(c);
      }
      out.push(s);
    }
    return { shape, values: out };
  }
  const values = new Float64Array(n);
  const read: ((o: number) => number) | undefined = (
    {
      b1: (o: number) => dv.getUint8(o),
      u1: (o: number) => dv.getUint8(o),
      i1: (o: number) => dv.getInt8(o),
      u2: (o: number) => dv.getUint16(o, true),
      i2: (o: number) => dv.getInt16(o, true),
      u4: (o: number) => dv.getUint32(o, true),
      i4: (o: number) => dv.getInt32(o, true),
      u8: (o: number) => Number(dv.getBigUint64(o, true)),
      i8: (o: number) => Number(dv.getBigInt64(o, true)),
      f4: (o: number) => dv.getFloat32(o, true),
      f8: (o: number) => dv.getFloat64(o, true),
    } as Record<string, (o: number) => number>
  )[`${kind}${size}`];
  if (!read) bad(`dtype ${descr}`);
  for (let i = 0; i < n; i++) values[i] = read!(off + i * size);
  return { shape, values };
}

/** The images (and labels, if any) of a `.npy` or `.npz` file; see the module comment. */
export function readImageArray(path: string): ImageArray {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new RunError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let images: NpyArray;
  let labels: NpyArray | undefined;
  if (buf[0] === 0x50 && buf[1] === 0x4b) {
    const arrays = new Map(readZip(buf, path).filter((e) => !e.isDirectory && e.name.endsWith('.npy')).map((e) => [e.name.slice(0, -4), e]));
    const key = ['images', 'x'].find((k) => arrays.has(k)) ?? [...arrays.keys()].find((k) => k !== 'labels');
    if (!key) throw new RunError(`${path}: the .npz holds no image array (expected 'images', 'x' or any array)`);
    images = parseNpy(arrays.get(key)!.read(), `${path}:${key}`);
    if (arrays.has('labels')) labels = parseNpy(arrays.get('labels')!.read(), `${path}:labels`);
  } else {
    images = parseNpy(buf, path);
  }
  if (Array.isArray(images.values)) throw new RunError(`${path}: images must be numbers, not strings`);
  const s = images.shape;
  let count: number;
  let height: number;
  let width: number;
  if (s.length === 3) [count, height, width] = s as [number, number, number];
  else if (s.length === 4 && s[3] === 1) [count, height, width] = s as [number, number, number];
  else if (s.length === 4 && s[1] === 1) [count, , height, width] = s as [number, number, number, number];
  else if (s.length === 2 && Number.isInteger(Math.sqrt(s[1]!))) [count, height, width] = [s[0]!, Math.sqrt(s[1]!), Math.sqrt(s[1]!)];
  else throw new RunError(`${path}: images of shape [${s}]; expected [N, H, W], [N, H, W, 1], [N, 1, H, W] or [N, H*W] with square images`);
  if (count === 0) throw new RunError(`${path}: no images`);
  const v = images.values as Float64Array;
  let max = 0;
  for (const x of v) {
    if (!Number.isFinite(x) || x < 0) throw new RunError(`${path}: pixel value ${x}; expected intensities >= 0`);
    if (x > max) max = x;
  }
  // [0, 1] floats (binary images included) or 0..255 intensities.
  const scale = max <= 1 ? 255 : 1;
  if (max > 255) throw new RunError(`${path}: pixel values up to ${max}; expected [0, 1] or 0..255`);
  const pixels = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) pixels[i] = Math.round(v[i]! * scale);
  const out: ImageArray = { pixels, count, height, width };
  if (labels) {
    if (labels.values.length !== count) throw new RunError(`${path}: ${labels.values.length} labels for ${count} images`);
    out.labels = Array.from(labels.values as ArrayLike<number | string>, String);
  }
  return out;
}
