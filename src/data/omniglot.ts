/**
 * Omniglot at 28x28 (Lake, Salakhutdinov & Tenenbaum 2015, "Human-level concept learning
 * through probabilistic program induction"; data MIT-licensed, (c) 2015 Brenden Lake).
 *
 * Reads the compact form described in the data README: `omniglot28_u8.bin.gz` (gzip of
 * 32460 x 28 x 28 uint8, 255 = ink) and `omniglot28_index.json` (alphabets and splits).
 * Image i is character floor(i/20)+1 (1-based), drawer i%20+1; the class label used by
 * samplers is the 0-based character index floor(i/20).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError, resolveDataFile, type ResolveOptions } from './paths.ts';
import type { LabelledImageSet } from './types.ts';
import { range } from './types.ts';

export const OMNIGLOT_IMAGES_FILE = 'omniglot28_u8.bin.gz';
export const OMNIGLOT_INDEX_FILE = 'omniglot28_index.json';

export type OmniglotSetName = 'images_background' | 'images_evaluation';
export type OmniglotSplit = 'background' | 'evaluation';

/** One alphabet: its characters are ids first .. first+count-1 (1-based). */
export interface OmniglotAlphabet {
  readonly name: string;
  readonly set: OmniglotSetName;
  readonly first: number;
  readonly count: number;
}

/** The contents of `omniglot28_index.json` (the fields this code relies on). */
export interface OmniglotIndex {
  readonly numImages: number;
  readonly numCharacters: number;
  readonly drawersPerCharacter: number;
  readonly u8: { readonly file: string; readonly shape: readonly [number, number, number] };
  readonly alphabets: readonly OmniglotAlphabet[];
  /** Image index ranges [start, end). */
  readonly splits: Readonly<Record<OmniglotSplit, readonly [number, number]>>;
  readonly [extra: string]: unknown;
}

export interface Omniglot extends LabelledImageSet {
  readonly index: OmniglotIndex;
  readonly alphabets: readonly OmniglotAlphabet[];
  readonly drawersPerCharacter: number;
  readonly numCharacters: number;
  /** `background` (30 alphabets, 964 characters) and `evaluation` (20 alphabets, 659). */
  readonly splits: Readonly<Record<OmniglotSplit, Int32Array>>;
  /** The 0-based alphabet (index into `alphabets`) of each 0-based character: [numCharacters]. */
  readonly alphabetOfClass: Int32Array;
  /** The 1-based character id of image i. */
  characterId(i: number): number;
  /** The 1-based drawer of image i. */
  drawer(i: number): number;
  /** The alphabet of image i. */
  alphabetOf(i: number): OmniglotAlphabet;
}

function fail(path: string, why: string): never {
  throw new DataError(`${path}: ${why}`);
}

/** Parses and checks `omniglot28_index.json`. */
export function parseOmniglotIndex(text: string, path = OMNIGLOT_INDEX_FILE): OmniglotIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(path, `not valid JSON (${(e as Error).message})`);
  }
  const o = raw as Partial<OmniglotIndex>;
  if (typeof o !== 'object' || o === null) fail(path, 'expected a JSON object');
  const { numImages, numCharacters, drawersPerCharacter, alphabets, splits, u8 } = o;
  if (!Number.isInteger(numImages) || !Number.isInteger(numCharacters) || !Number.isInteger(drawersPerCharacter)) {
    fail(path, 'numImages, numCharacters and drawersPerCharacter must be integers');
  }
  if (numCharacters! * drawersPerCharacter! !== numImages) {
    fail(path, `numCharacters (${numCharacters}) x drawersPerCharacter (${drawersPerCharacter}) != numImages (${numImages})`);
  }
  if (!u8 || !Array.isArray(u8.shape) || u8.shape.length !== 3 || u8.shape[0] !== numImages) {
    fail(path, 'u8.shape must be [numImages, height, width]');
  }
  if (!Array.isArray(alphabets) || alphabets.length === 0) fail(path, 'alphabets must be a non-empty array');
  let covered = 0;
  for (const a of alphabets) {
    if (typeof a.name !== 'string' || !Number.isInteger(a.first) || !Number.isInteger(a.count)) {
      fail(path, `malformed alphabet entry ${JSON.stringify(a)}`);
    }
    if (a.first < 1 || a.first + a.count - 1 > numCharacters!) fail(path, `alphabet ${a.name} is outside 1..${numCharacters}`);
    covered += a.count;
  }
  if (covered !== numCharacters) fail(path, `alphabets cover ${covered} characters, expected ${numCharacters}`);
  if (!splits || !Array.isArray(splits.background) || !Array.isArray(splits.evaluation)) {
    fail(path, 'splits.background and splits.evaluation must be [start, end) ranges');
  }
  return o as OmniglotIndex;
}

const cache = new Map<string, Omniglot>();

/**
 * Loads Omniglot 28x28 (decoded once per process and data directory, then cached).
 * @throws DataError when a file is missing or does not match the index.
 */
export function loadOmniglot(opts: ResolveOptions = {}): Omniglot {
  const indexPath = resolveDataFile(OMNIGLOT_INDEX_FILE, opts);
  const imagesPath = resolveDataFile(OMNIGLOT_IMAGES_FILE, opts);
  const key = `${indexPath}\0${imagesPath}`;
  const hit = cache.get(key);
  if (hit) return hit;

  const index = parseOmniglotIndex(readFileSync(indexPath, 'utf8'), indexPath);
  let buf: Buffer;
  try {
    buf = gunzipSync(readFileSync(imagesPath));
  } catch (e) {
    fail(imagesPath, `cannot gunzip (${(e as Error).message}); the file may be truncated`);
  }
  const [n, h, w] = index.u8.shape;
  if (buf.length !== n * h * w) {
    fail(imagesPath, `decoded ${buf.length} bytes, expected ${n} x ${h} x ${w} = ${n * h * w} per ${indexPath}`);
  }
  const images = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  const result = makeOmniglot(index, images);
  cache.set(key, result);
  return result;
}

/** Builds the {@link Omniglot} view over decoded images (also used by the converter's tests). */
export function makeOmniglot(index: OmniglotIndex, images: Uint8Array): Omniglot {
  const [count, height, width] = index.u8.shape;
  const dpc = index.drawersPerCharacter;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = Math.floor(i / dpc);
  const alphabetOfClass = new Int32Array(index.numCharacters).fill(-1);
  index.alphabets.forEach((a, ai) => {
    for (let c = a.first - 1; c < a.first - 1 + a.count; c++) alphabetOfClass[c] = ai;
  });
  const splits = {
    background: range(index.splits.background[0], index.splits.background[1]),
    evaluation: range(index.splits.evaluation[0], index.splits.evaluation[1]),
  };
  const alphabets = index.alphabets;
  return {
    name: 'omniglot28',
    images,
    count,
    height,
    width,
    maxValue: 255,
    labels,
    numClasses: index.numCharacters,
    index,
    alphabets,
    drawersPerCharacter: dpc,
    numCharacters: index.numCharacters,
    splits,
    alphabetOfClass,
    characterId: (i) => Math.floor(i / dpc) + 1,
    drawer: (i) => (i % dpc) + 1,
    alphabetOf: (i) => alphabets[alphabetOfClass[Math.floor(i / dpc)]!]!,
  };
}

/** Drops cached decoded data sets (for tests and long-running processes). */
export function clearOmniglotCache(): void {
  cache.clear();
}
