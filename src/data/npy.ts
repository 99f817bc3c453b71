/**
 * NumPy's `.npy` and `.npz` formats (numpy.lib.format, "NEP 1: A simple file format for NumPy
 * arrays"): a magic string, a version, a Python-literal header `{'descr': '<f4',
 * 'fortran_order': False, 'shape': (N, 28, 28), }`, then the raw data. An `.npz` is a ZIP archive
 * (stored or deflated) of `.npy` files, one per array name.
 *
 * Reads numeric arrays (bool, signed and unsigned integers of 1-8 bytes, float16/32/64) of either
 * byte order into a typed array of the file's own type (64-bit integers and float16 as Float64),
 * C order. Fortran-ordered arrays are
 * transposed to C order. Object arrays (pickles) are refused: they would need a Python unpickler.
 * Writes C-ordered little-endian arrays (for tests and for exporting samples).
 */
import { strToU8, unzipSync, zipSync } from 'fflate';
import { DataError } from './paths.ts';

/** The element types this module reads and writes (NumPy `descr` without the byte-order mark). */
export type NpyDtype = 'b1' | 'u1' | 'i1' | 'u2' | 'i2' | 'u4' | 'i4' | 'u8' | 'i8' | 'f2' | 'f4' | 'f8';

export type NpyData = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** One array: its element type, shape and values in C order. 64-bit integers are read as Float64. */
export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const SIZES: Record<NpyDtype, number> = { b1: 1, u1: 1, i1: 1, u2: 2, i2: 2, u4: 4, i4: 4, u8: 8, i8: 8, f2: 2, f4: 4, f8: 8 };

function fail(file: string, why: string): never {
  throw new DataError(`${file}: ${why}`);
}

/** The header dictionary: `descr`, `fortran_order`, `shape` (a restricted Python literal parser). */
function parseHeader(text: string, file: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) fail(file, `not a readable .npy header: ${JSON.stringify(text.trim().slice(0, 120))}`);
  const dims = shape[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => Number(s.replace(/L$/, '')));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) fail(file, `bad shape (${shape[1]}) in the .npy header`);
  return { descr: descr[1]!, fortran: fortran[1] === 'True', shape: dims };
}

function dtypeOf(descr: string, file: string): { dtype: NpyDtype; little: boolean } {
  const m = /^([<>|=]?)([biuf])(\d+)$/.exec(descr);
  const kind = m ? `${m[2]}${m[3]}` : '';
  if (!m || !(kind in SIZES)) {
    fail(file, `unsupported array type '${descr}' (expected bool, integers or floats; object and string arrays cannot be read)`);
  }
  return { dtype: kind as NpyDtype, little: m[1] !== '>' };
}

/** IEEE half to number. */
function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(bytes: Uint8Array, dtype: NpyDtype, little: boolean, n: number): NpyData {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = SIZES[dtype];
  switch (dtype) {
    case 'b1':
    case 'u1':
      return bytes.slice(0, n);
    case 'i1':
      return new Int8Array(bytes.slice(0, n).buffer);
    default: {
      const out =
        dtype === 'u2' ? new Uint16Array(n)
        : dtype === 'i2' ? new Int16Array(n)
        : dtype === 'u4' ? new Uint32Array(n)
        : dtype === 'i4' ? new Int32Array(n)
        : dtype === 'f4' ? new Float32Array(n)
        : new Float64Array(n); // f2, f8, i8, u8
      for (let i = 0, o = 0; i < n; i++, o += size) {
        switch (dtype) {
          case 'u2': out[i] = view.getUint16(o, little); break;
          case 'i2': out[i] = view.getInt16(o, little); break;
          case 'u4': out[i] = view.getUint32(o, little); break;
          case 'i4': out[i] = view.getInt32(o, little); break;
          case 'f4': out[i] = view.getFloat32(o, little); break;
          case 'f8': out[i] = view.getFloat64(o, little); break;
          case 'f2': out[i] = halfToNumber(view.getUint16(o, little)); break;
          case 'i8': out[i] = Number(view.getBigInt64(o, little)); break;
          case 'u8': out[i] = Number(view.getBigUint64(o, little)); break;
        }
      }
      return out;
    }
  }
}

/** Fortran order -> C order. */
function toCOrder(data: NpyData, shape: readonly number[]): NpyData {
  const n = data.length;
  const out = new (data.constructor as new (n: number) => NpyData)(n);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  for (let f = 0; f < n; f++) {
    // f walks Fortran order (first axis fastest); compute its C offset.
    let c = 0;
    for (let a = 0; a < nd; a++) c = c * shape[a]! + idx[a]!;
    out[c] = data[f]!;
    for (let a = 0; a < nd; a++) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

/**
 * Parses one `.npy` file.
 * @param file named in errors.
 * @throws DataError for anything that is not a readable numeric `.npy` array.
 */
export function parseNpy(bytes: Uint8Array, file = 'array.npy'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail(file, 'not a NumPy .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail(file, 'truncated .npy header');
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    fail(file, `unsupported .npy format version ${major}.${bytes[7]}`);
  }
  if (start + headerLen > bytes.length) fail(file, 'truncated .npy header');
  const header = parseHeader(new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen)), file);
  const { dtype, little } = dtypeOf(header.descr, file);
  const n = header.shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(start + headerLen);
  const need = n * SIZES[dtype];
  if (body.length < need) fail(file, `truncated: the header promises shape (${header.shape.join(', ')}) of '${header.descr}' = ${need} bytes, but ${body.length} follow`);
  let data = decode(body.slice(0, need), dtype, little, n);
  if (header.fortran && header.shape.length > 1) data = toCOrder(data, header.shape);
  return { dtype, shape: header.shape, data };
}

/**
 * Parses an `.npz` archive: the arrays by name (without the `.npy` suffix).
 * @throws DataError when it is not a ZIP or a member is not a readable array.
 */
export function parseNpz(bytes: Uint8Array, file = 'arrays.npz'): Map<string, NpyArray> {
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes);
  } catch (e) {
    fail(file, `not a readable .npz (ZIP) archive (${(e as Error).message})`);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, data] of Object.entries(members)) {
    if (name.endsWith('/')) continue;
    out.set(name.replace(/\.npy$/, ''), parseNpy(data, `${file}[${name}]`));
  }
  if (out.size === 0) fail(file, 'the .npz archive holds no arrays');
  return out;
}

const CTOR_DTYPE: [new (n: number) => NpyData, NpyDtype][] = [
  [Uint8Array, 'u1'],
  [Int8Array, 'i1'],
  [Uint16Array, 'u2'],
  [Int16Array, 'i2'],
  [Uint32Array, 'u4'],
  [Int32Array, 'i4'],
  [Float32Array, 'f4'],
  [Float64Array, 'f8'],
];

/** Encodes a C-ordered little-endian `.npy` (version 1.0), as `numpy.save` writes it. */
export function encodeNpy(data: NpyData, shape: readonly number[], dtype?: NpyDtype): Uint8Array {
  const dt = dtype ?? CTOR_DTYPE.find(([c]) => data instanceof c)?.[1];
  if (!dt) throw new TypeError('encodeNpy: unsupported array type');
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new RangeError(`encodeNpy: shape (${shape.join(', ')}) has ${n} elements, data has ${data.length}`);
  const descr = dt === 'b1' || dt === 'u1' || dt === 'i1' ? `|${dt}` : `<${dt}`;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so that the data starts at a multiple of 64 bytes; end with a newline.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - 10 - header.length - 1) + '\n';
  const out = new Uint8Array(total + n * SIZES[dt]);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(strToU8(header), 10);
  const view = new DataView(out.buffer, total);
  for (let i = 0; i < n; i++) {
    const v = data[i]!;
    switch (dt) {
      case 'b1':
      case 'u1': view.setUint8(i, v); break;
      case 'i1': view.setInt8(i, v); break;
      case 'u2': view.setUint16(2 * i, v, true); break;
      case 'i2': view.setInt16(2 * i, v, true); break;
      case 'u4': view.setUint32(4 * i, v, true); break;
      case 'i4': view.setInt32(4 * i, v, true); break;
      case 'f4': view.setFloat32(4 * i, v, true); break;
      case 'f8': view.setFloat64(8 * i, v, true); break;
      case 'i8': view.setBigInt64(8 * i, BigInt(v), true); break;
      case 'u8': view.setBigUint64(8 * i, BigInt(v), true); break;
      case 'f2': throw new TypeError('encodeNpy: float16 is read-only here');
    }
  }
  return out;
}

/** Encodes an `.npz` of named arrays (`compressed` as `numpy.savez_compressed`). */
export function encodeNpz(arrays: Record<string, { data: NpyData; shape: readonly number[]; dtype?: NpyDtype }>, compressed = false): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const [name, a] of Object.entries(arrays)) files[`${name}.npy`] = [encodeNpy(a.data, a.shape, a.dtype), { level: compressed ? 6 : 0 }];
  return zipSync(files);
}

/** For messages: `uint8 [N, 28, 28]`. */
export function describeArray(a: NpyArray): string {
  const names: Record<NpyDtype, string> = { b1: 'bool', u1: 'uint8', i1: 'int8', u2: 'uint16', i2: 'int16', u4: 'uint32', i4: 'int32', u8: 'uint64', i8: 'int64', f2: 'float16', f4: 'float32', f8: 'float64' };
  return `${names[a.dtype]} [${a.shape.join(', ')}]`;
}
