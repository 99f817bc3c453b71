/**
 * Converter from the original Omniglot distribution (Lake et al. 2015;
 * github.com/brendenlake/omniglot: `images_background.zip`, `images_evaluation.zip`, zips of
 * `Alphabet/characterNN/XXXX_YY.png`, 105x105 1-bit PNGs with ink black = 0) to the compact
 * form read by {@link loadOmniglot}: `omniglot28_u8.bin.gz` (uint8 28x28, 255 = ink, the exact
 * area average of the original) and `omniglot28_index.json`.
 *
 * Order of the output: characters by the global character id XXXX in the file names (this is
 * the order of the shared data files: background ids 1..964, then evaluation 965..1623), drawers
 * by YY. Converting the two complete zips therefore reproduces `omniglot28_u8.bin.gz` exactly.
 * When file names do not carry ids, the order is background before evaluation, alphabets by
 * name, characters by their directory number, drawers by file name. Character ids in the output
 * are renumbered 1..n (the original ids are kept in `sourceCharacterIds`).
 *
 * Downsampling: each output pixel covers 3.75 x 3.75 source pixels; its value is
 * round(255 * inkArea / 3.75^2), computed exactly in integers (see {@link areaDownsample}).
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { convertIndexedToRgb, decode as decodePng, hasPngSignature, type DecodedPng, type PngDataArray } from 'fast-png';
import { writeFileAtomic } from '../report/atomic.ts';
import { OMNIGLOT_IMAGES_FILE, OMNIGLOT_INDEX_FILE, type OmniglotAlphabet, type OmniglotIndex, type OmniglotSetName } from './omniglot.ts';
import { DataError } from './paths.ts';
import { readZip } from './zip.ts';

export const OMNIGLOT_SOURCE_SIZE = 105;
export const OMNIGLOT_TARGET_SIZE = 28;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Overlap weights of a 1-D area resampling from n source cells to m target cells, in units
 * where a source cell has length m/g and a target cell n/g (g = gcd(n, m)), so all are integers.
 * Flat form: target j takes source cells start[j] .. start[j]+len[j]-1 with weights
 * w[off[j] ..].
 */
interface Weights1D {
  readonly start: Int32Array;
  readonly len: Int32Array;
  readonly off: Int32Array;
  readonly w: Int32Array;
  /** The length of a target cell in these units. */
  readonly cell: number;
}

function overlapWeights(n: number, m: number): Weights1D {
  const g = gcd(n, m);
  const src = m / g;
  const dst = n / g;
  const start = new Int32Array(m);
  const len = new Int32Array(m);
  const off = new Int32Array(m);
  const ws: number[] = [];
  for (let j = 0; j < m; j++) {
    const lo = j * dst;
    const hi = lo + dst;
    start[j] = Math.floor(lo / src);
    off[j] = ws.length;
    for (let c = start[j]!; c < n && c * src < hi; c++) {
      ws.push(Math.min(hi, (c + 1) * src) - Math.max(lo, c * src));
    }
    len[j] = ws.length - off[j]!;
  }
  return { start, len, off, w: Int32Array.from(ws), cell: dst };
}

const weightCache = new Map<string, Weights1D>();
function weights(n: number, m: number): Weights1D {
  const key = `${n}>${m}`;
  let w = weightCache.get(key);
  if (!w) weightCache.set(key, (w = overlapWeights(n, m)));
  return w;
}

/**
 * Exact area-average downsampling of a 0/1 ink image [srcH, srcW] to uint8 [dstH, dstW]:
 * each output pixel is round(255 * (ink area inside it) / (its area)), with the areas computed
 * in integer units (for 105 -> 28 an output pixel is 15x15 units and a source pixel 4x4).
 * Separable: a horizontal pass, then a vertical one, all in integers.
 */
export function areaDownsample(
  ink: Uint8Array,
  srcH: number,
  srcW: number,
  dstH = OMNIGLOT_TARGET_SIZE,
  dstW = OMNIGLOT_TARGET_SIZE,
  out: Uint8Array = new Uint8Array(dstH * dstW),
  outOffset = 0,
): Uint8Array {
  if (ink.length !== srcH * srcW) throw new RangeError(`areaDownsample: ${ink.length} pixels, expected ${srcH}x${srcW}`);
  const wy = weights(srcH, dstH);
  const wx = weights(srcW, dstW);
  const area = wy.cell * wx.cell;
  // Horizontal pass: rows[r * dstW + j] = sum_c ink[r, c] * wx(j, c).
  const rows = new Int32Array(srcH * dstW);
  for (let r = 0; r < srcH; r++) {
    const base = r * srcW;
    for (let j = 0; j < dstW; j++) {
      let s = 0;
      const c0 = wx.start[j]!;
      const o = wx.off[j]!;
      for (let k = 0, n = wx.len[j]!; k < n; k++) s += ink[base + c0 + k]! * wx.w[o + k]!;
      rows[r * dstW + j] = s;
    }
  }
  // Vertical pass.
  for (let i = 0; i < dstH; i++) {
    const r0 = wy.start[i]!;
    const o = wy.off[i]!;
    const n = wy.len[i]!;
    for (let j = 0; j < dstW; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += rows[(r0 + k) * dstW + j]! * wy.w[o + k]!;
      out[outOffset + i * dstW + j] = Math.round((255 * s) / area);
    }
  }
  return out;
}

/**
 * Decodes an Omniglot PNG to a 0/1 ink mask: a pixel is ink if it is dark (gray, or the mean of
 * R, G, B, in the lower half of the sample range: < 128 of 256) and opaque (alpha in the upper
 * half, and not the tRNS colour).
 * The originals are 1-bit gray with ink black = 0; other PNG formats are accepted too, except
 * interlaced ones with samples smaller than a byte (a DataError; see below).
 * Decoding is by fast-png with chunk CRCs checked (the zip reader does not check its CRC-32s,
 * so this is what catches corrupted image data).
 */
export function decodeOmniglotPng(bytes: Uint8Array, label = 'png'): { ink: Uint8Array; height: number; width: number } {
  // fast-png 8 cannot de-interlace samples smaller than a byte (it fails or returns garbage):
  // IHDR, the first chunk, has the bit depth at byte 24 of the file and the interlace method at 28.
  if (bytes.length > 28 && hasPngSignature(bytes) && bytes[28] === 1 && bytes[24]! < 8) {
    throw new DataError(`${label}: interlaced PNGs with ${bytes[24]}-bit samples are not supported`);
  }
  let png: DecodedPng;
  let data: PngDataArray;
  try {
    png = decodePng(bytes, { checkCrc: true });
    data = png.palette ? convertIndexedToRgb(png) : png.data;
  } catch (e) {
    // fast-png wraps inflate errors: 'Error while decompressing the data:' with the reason as cause.
    const { message, cause } = e as Error;
    const reason = cause instanceof Error ? `${message.replace(/:$/, '')}: ${cause.message}` : message;
    throw new DataError(`${label}: cannot decode PNG (${reason})`);
  }
  const { width, height } = png;
  const ink = new Uint8Array(width * height);
  if (png.depth < 8 && !png.palette) {
    // Gray, 1/2/4 bits per sample, rows padded to whole bytes (the original Omniglot format).
    const bits = png.depth;
    const max = (1 << bits) - 1;
    const rowBytes = Math.ceil((width * bits) / 8);
    const clear = png.transparency?.length === 1 ? png.transparency[0]! : -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * bits;
        const v = (data[y * rowBytes + (bit >> 3)]! >> (8 - bits - (bit & 7))) & max;
        ink[y * width + x] = 2 * v <= max && v !== clear ? 1 : 0;
      }
    }
    return { ink, height, width };
  }
  // 8 or 16 bits per sample (palette images expanded to RGB or RGBA above).
  const channels = png.palette ? png.palette[0]!.length : png.channels;
  const max = png.palette || png.depth === 8 ? 255 : 65535;
  const colour = channels >= 3;
  const alpha = channels === 2 || channels === 4;
  const clear = !png.palette && png.transparency ? png.transparency : null;
  for (let k = 0; k < ink.length; k++) {
    const o = k * channels;
    const dark = colour ? 2 * (data[o]! + data[o + 1]! + data[o + 2]!) < 3 * (max + 1) : 2 * data[o]! <= max;
    const opaque = alpha
      ? 2 * data[o + channels - 1]! > max
      : !(clear && clear.every((c, i) => data[o + i] === c));
    ink[k] = dark && opaque ? 1 : 0;
  }
  return { ink, height, width };
}

/** One PNG found in a zip. */
interface SourceImage {
  readonly set: OmniglotSetName;
  readonly alphabet: string;
  readonly characterDir: string;
  readonly file: string;
  readonly zip: string;
  readonly sourceId: number | null;
  readonly sourceDrawer: number | null;
  readonly bytes: () => Uint8Array;
}

const FILE_RE = /^(\d+)_(\d+)\.png$/i;

function collect(zipPath: string, buf: Uint8Array): SourceImage[] {
  const zipName = basename(zipPath);
  const out: SourceImage[] = [];
  for (const e of readZip(buf, zipPath)) {
    if (e.isDirectory || !e.name.toLowerCase().endsWith('.png')) continue;
    const parts = e.name.split('/').filter((p) => p !== '');
    if (parts.length < 3 || parts.some((p) => p === '__MACOSX' || p.startsWith('._'))) continue;
    const [alphabet, characterDir, file] = parts.slice(-3) as [string, string, string];
    const where = [...parts.slice(0, -3), zipName].join('/');
    const set: OmniglotSetName = /images_evaluation/i.test(where) ? 'images_evaluation' : 'images_background';
    const m = FILE_RE.exec(file);
    out.push({
      set,
      alphabet,
      characterDir,
      file,
      zip: zipPath,
      sourceId: m ? Number(m[1]) : null,
      sourceDrawer: m ? Number(m[2]) : null,
      bytes: () => e.read(),
    });
  }
  return out;
}

function dirNumber(name: string): number {
  const m = /(\d+)$/.exec(name);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

interface Character {
  readonly set: OmniglotSetName;
  readonly alphabet: string;
  readonly dir: string;
  readonly sourceId: number | null;
  readonly drawers: SourceImage[];
}

/** Groups images into characters and orders characters and drawers (see the module comment). */
function organize(images: SourceImage[]): Character[] {
  const byChar = new Map<string, Map<string, SourceImage>>();
  for (const im of images) {
    const key = `${im.set}/${im.alphabet}/${im.characterDir}`;
    let m = byChar.get(key);
    if (!m) byChar.set(key, (m = new Map()));
    const prev = m.get(im.file);
    // The same file may come from two overlapping zips: keep one copy if the bytes agree.
    if (prev) {
      const a = prev.bytes();
      const b = im.bytes();
      if (a.length !== b.length || !a.every((v, i) => v === b[i])) {
        throw new DataError(`${key}/${im.file} differs between ${prev.zip} and ${im.zip}`);
      }
      continue;
    }
    m.set(im.file, im);
  }
  const chars: Character[] = [];
  for (const m of byChar.values()) {
    const drawers = [...m.values()];
    const first = drawers[0]!;
    const ids = new Set(drawers.map((d) => d.sourceId));
    const sourceId = ids.size === 1 && first.sourceId !== null ? first.sourceId : null;
    drawers.sort((a, b) =>
      a.sourceDrawer !== null && b.sourceDrawer !== null ? a.sourceDrawer - b.sourceDrawer : cmpStr(a.file, b.file),
    );
    chars.push({ set: first.set, alphabet: first.alphabet, dir: first.characterDir, sourceId, drawers });
  }
  const allIds = chars.every((c) => c.sourceId !== null) && new Set(chars.map((c) => c.sourceId)).size === chars.length;
  const setRank = (s: OmniglotSetName): number => (s === 'images_background' ? 0 : 1);
  chars.sort((a, b) => {
    if (setRank(a.set) !== setRank(b.set)) return setRank(a.set) - setRank(b.set);
    if (allIds) return a.sourceId! - b.sourceId!;
    return cmpStr(a.alphabet, b.alphabet) || dirNumber(a.dir) - dirNumber(b.dir) || cmpStr(a.dir, b.dir);
  });
  return chars;
}

export interface ConvertOptions {
  /** gzip level for the image file (default 9). */
  readonly gzipLevel?: number;
  /** Called after each character is converted. */
  readonly onProgress?: (doneCharacters: number, totalCharacters: number) => void;
}

export interface ConvertResult {
  readonly imagesPath: string;
  readonly indexPath: string;
  readonly numImages: number;
  readonly numCharacters: number;
  readonly drawersPerCharacter: number;
  readonly alphabets: readonly OmniglotAlphabet[];
  /** The index written to `indexPath`. */
  readonly index: OmniglotIndex;
  /** The converted images [numImages, 28*28] (also written, gzipped, to `imagesPath`). */
  readonly images: Uint8Array;
}

/**
 * Converts Omniglot zips in memory: returns the index and the images without writing.
 * @throws DataError on unreadable zips, PNGs of unexpected size, or characters with differing
 *   numbers of drawers.
 */
export async function convertOmniglotZipsInMemory(
  zipPaths: readonly string[],
  opts: ConvertOptions = {},
): Promise<{ index: OmniglotIndex; images: Uint8Array }> {
  if (zipPaths.length === 0) throw new DataError('convertOmniglotZips: no zip files given');
  const images: SourceImage[] = [];
  for (const p of zipPaths) {
    let buf: Buffer;
    try {
      buf = await readFile(p);
    } catch (e) {
      throw new DataError(`cannot read ${p}: ${(e as Error).message}`);
    }
    images.push(...collect(p, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)));
  }
  if (images.length === 0) {
    throw new DataError(`no Omniglot PNGs (Alphabet/characterNN/XXXX_YY.png) found in ${zipPaths.join(', ')}`);
  }
  const chars = organize(images);
  const dpc = chars[0]!.drawers.length;
  for (const c of chars) {
    if (c.drawers.length !== dpc) {
      throw new DataError(
        `${c.alphabet}/${c.dir} has ${c.drawers.length} drawers but ${chars[0]!.alphabet}/${chars[0]!.dir} has ${dpc}; ` +
          `the compact format needs the same number for every character`,
      );
    }
  }
  const T = OMNIGLOT_TARGET_SIZE;
  const D = T * T;
  const out = new Uint8Array(chars.length * dpc * D);
  const alphabets: OmniglotAlphabet[] = [];
  chars.forEach((c, ci) => {
    const last = alphabets[alphabets.length - 1];
    if (last && last.name === c.alphabet && last.set === c.set) {
      alphabets[alphabets.length - 1] = { ...last, count: last.count + 1 };
    } else {
      if (alphabets.some((a) => a.name === c.alphabet && a.set === c.set)) {
        throw new DataError(`alphabet ${c.alphabet}: its characters' ids are not contiguous`);
      }
      alphabets.push({ name: c.alphabet, set: c.set, first: ci + 1, count: 1 });
    }
    c.drawers.forEach((d, di) => {
      const label = `${d.zip}:${c.alphabet}/${c.dir}/${d.file}`;
      const { ink, height, width } = decodeOmniglotPng(d.bytes(), label);
      if (height !== OMNIGLOT_SOURCE_SIZE || width !== OMNIGLOT_SOURCE_SIZE) {
        throw new DataError(`${label}: ${width}x${height} pixels, expected ${OMNIGLOT_SOURCE_SIZE}x${OMNIGLOT_SOURCE_SIZE}`);
      }
      areaDownsample(ink, height, width, T, T, out, (ci * dpc + di) * D);
    });
    opts.onProgress?.(ci + 1, chars.length);
  });
  const numBackground = chars.filter((c) => c.set === 'images_background').length * dpc;
  const numImages = chars.length * dpc;
  const sourceIds = chars.map((c) => c.sourceId);
  const index: OmniglotIndex = {
    source: `converted from ${zipPaths.map((p) => basename(p)).join(', ')} (brendenlake/omniglot, MIT, (c) 2015 Brenden Lake)`,
    order: `image i: characterId = floor(i/${dpc})+1 (1..${chars.length}), drawer = i%${dpc}+1 (1..${dpc})`,
    numImages,
    numCharacters: chars.length,
    drawersPerCharacter: dpc,
    u8: {
      file: OMNIGLOT_IMAGES_FILE,
      encoding: 'gzip of raw uint8 bytes',
      shape: [numImages, T, T],
      meaning: `stroke intensity 0..255 (255 = ink), exact area average of the ${OMNIGLOT_SOURCE_SIZE}x${OMNIGLOT_SOURCE_SIZE} original`,
    } as OmniglotIndex['u8'],
    alphabets,
    splits: { background: [0, numBackground], evaluation: [numBackground, numImages] },
    ...(sourceIds.every((s) => s !== null) ? { sourceCharacterIds: sourceIds } : {}),
  };
  return { index, images: out };
}

/**
 * Converts the original Omniglot zips to `omniglot28_u8.bin.gz` and `omniglot28_index.json`
 * in `outDir` (written atomically). Zips may overlap (identical files are taken once).
 */
export async function convertOmniglotZips(
  zipPaths: string[],
  outDir: string,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
  const { index, images } = await convertOmniglotZipsInMemory(zipPaths, opts);
  const imagesPath = join(outDir, OMNIGLOT_IMAGES_FILE);
  const indexPath = join(outDir, OMNIGLOT_INDEX_FILE);
  await writeFileAtomic(imagesPath, gzipSync(images, { level: opts.gzipLevel ?? 9 }));
  await writeFileAtomic(indexPath, JSON.stringify(index, null, 1) + '\n');
  return {
    imagesPath,
    indexPath,
    numImages: index.numImages,
    numCharacters: index.numCharacters,
    drawersPerCharacter: index.drawersPerCharacter,
    alphabets: index.alphabets,
    index,
    images,
  };
}
