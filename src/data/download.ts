/**
 * `vmm data get NAME`: downloads the original archives of a standard data set, checks their
 * SHA-256, converts them to the compact files the loaders read, and keeps those in the data
 * directory (`$VMM_DATA`, else the cache: src/data/paths.ts).
 *
 * - Resumable: bytes arrive in `<dir>/.downloads/<file>.part`; a rerun continues it with an HTTP
 *   Range request (or starts over when the server ignores the range).
 * - Atomic: an archive gets its final name only once complete with the recorded size and
 *   SHA-256 (a mismatch deletes it); converted files are written to a temporary name and
 *   renamed. A failed or interrupted run therefore never leaves a half-written data file; only
 *   the `.part` of an interrupted transfer stays, to be resumed.
 * - `mirror` replaces the base URL (an `http(s)://` URL, or a local folder / `file://` URL
 *   holding the same file names, for offline copies). Checksums are checked whatever the source.
 *
 * Checksums: the SHA-256 and sizes below are those recorded by TensorFlow Datasets
 * (github.com/tensorflow/datasets, `tensorflow_datasets/url_checksums/omniglot.txt` and
 * `binarized_mnist.txt`). They could not be recomputed here (no internet access); as a check on
 * that table, its entries for the two sample archives `images_background_small{1,2}.zip` equal
 * the SHA-256 and sizes of the copies in ../shared/data/raw.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../report/atomic.ts';
import { packBits, binarizedMnistFile, type BinarizedMnistSplit } from './binarized_mnist.ts';
import { convertOmniglotZips } from './convert_omniglot.ts';
import { OMNIGLOT_IMAGES_FILE, OMNIGLOT_INDEX_FILE } from './omniglot.ts';
import { DataError, downloadDataDir } from './paths.ts';

/** One original file: its name (appended to the base URL), size in bytes and SHA-256. */
export interface RemoteFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** A data set `vmm data get` knows: where its originals are and how to convert them. */
export interface DataSetSource {
  readonly name: string;
  readonly description: string;
  readonly baseUrl: string;
  readonly licence: string;
  readonly files: readonly RemoteFile[];
  /** The files the conversion writes into the data directory. */
  readonly produces: readonly string[];
  /** Converts the verified originals (`paths`, in the order of `files`) into `outDir`. */
  convert(paths: readonly string[], outDir: string): Promise<void>;
}

const SPLITS: BinarizedMnistSplit[] = ['train', 'valid', 'test'];

/**
 * Parses a Larochelle `.amat` file of binarized MNIST: one image per line, 784 values 0/1
 * separated by spaces.
 * @throws DataError naming the file and the line.
 */
export function parseAmat(text: string, file: string, pixels = 784): Uint8Array {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out = new Uint8Array(lines.length * pixels);
  lines.forEach((line, i) => {
    const vals = line.trim().split(/\s+/);
    if (vals.length !== pixels) throw new DataError(`${file}: line ${i + 1} has ${vals.length} values, expected ${pixels}`);
    for (let p = 0; p < pixels; p++) {
      const v = vals[p];
      if (v !== '0' && v !== '1') throw new DataError(`${file}: line ${i + 1}: value '${v}' is not 0 or 1`);
      out[i * pixels + p] = v === '1' ? 1 : 0;
    }
  });
  return out;
}

export const DATA_SOURCES: Readonly<Record<string, DataSetSource>> = {
  omniglot: {
    name: 'omniglot',
    description: 'Omniglot, 32,460 handwritten characters (1,623 classes, 50 alphabets) at 28x28',
    baseUrl: 'https://github.com/brendenlake/omniglot/raw/master/python',
    licence: 'MIT, (c) 2015 Brenden Lake; cite Lake, Salakhutdinov & Tenenbaum (2015), Science 350(6266)',
    files: [
      { name: 'images_background.zip', size: 9464212, sha256: 'ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640' },
      { name: 'images_evaluation.zip', size: 6462886, sha256: '1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee' },
    ],
    produces: [OMNIGLOT_IMAGES_FILE, OMNIGLOT_INDEX_FILE],
    async convert(paths, outDir) {
      await convertOmniglotZips([...paths], outDir);
    },
  },
  binarized_mnist: {
    name: 'binarized_mnist',
    description: 'binarized MNIST (Larochelle & Murray 2011), 50,000 / 10,000 / 10,000 images of 28x28',
    baseUrl: 'http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist',
    licence: 'derived from MNIST (LeCun, Cortes & Burges), CC BY-SA 3.0',
    files: [
      { name: 'binarized_mnist_train.amat', size: 78400000, sha256: 'ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d' },
      { name: 'binarized_mnist_valid.amat', size: 15680000, sha256: '1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2' },
      { name: 'binarized_mnist_test.amat', size: 15680000, sha256: 'e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c' },
    ],
    produces: SPLITS.map(binarizedMnistFile),
    async convert(paths, outDir) {
      for (let k = 0; k < SPLITS.length; k++) {
        const bits = parseAmat(await readFile(paths[k]!, 'latin1'), paths[k]!);
        await writeFileAtomic(join(outDir, binarizedMnistFile(SPLITS[k]!)), gzipSync(packBits(bits), { level: 9 }));
      }
    },
  },
};

/** Progress of one file, for a progress bar. */
export interface DownloadProgress {
  readonly file: string;
  readonly received: number;
  readonly total: number;
  /** Bytes already present from an earlier, interrupted run. */
  readonly resumedFrom: number;
}

export interface GetOptions {
  /** Replaces the base URL: `http(s)://...`, `file://...` or a local folder. */
  readonly mirror?: string;
  /** The data directory (default: `$VMM_DATA`, else the cache). */
  readonly dir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly onProgress?: (p: DownloadProgress) => void;
  readonly log?: (message: string) => void;
  /** Keep the original archives in `<dir>/.downloads` after converting (default: delete them). */
  readonly keepArchives?: boolean;
  /** Convert again even if the converted files are present. */
  readonly force?: boolean;
  /**
   * Seconds without an answer or a byte before a download is given up (default 60; the transfer
   * can be resumed); after a fifth of it, `log` says what is being waited for.
   */
  readonly timeoutSeconds?: number;
}

/** Seconds a silent server is waited on: undici's own defaults wait some 5 minutes, in silence. */
export const DOWNLOAD_TIMEOUT_SECONDS = 60;

export interface GetResult {
  readonly dir: string;
  readonly files: readonly string[];
  /** False when the converted files were already present. */
  readonly downloaded: boolean;
}

function sourceOf(name: string): DataSetSource {
  const s = DATA_SOURCES[name];
  if (!s) throw new DataError(`unknown data set '${name}' (vmm data get knows ${Object.keys(DATA_SOURCES).join(', ')})`);
  return s;
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** A local mirror: a `file://` URL or an existing folder. */
function localMirror(mirror: string): string | undefined {
  if (mirror.startsWith('file://')) return fileURLToPath(mirror);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(mirror) && existsSync(mirror)) return resolve(mirror);
  return undefined;
}

/**
 * A watchdog for one transfer: `touch()` on every sign of life; after `seconds / 5` of silence it
 * logs what it waits for (once per silence), after `seconds` it aborts `signal`.
 */
function silenceWatchdog(seconds: number, waitingFor: () => string, log?: (m: string) => void): { signal: AbortSignal; touch: () => void; stop: () => void; timedOut: () => boolean } {
  const controller = new AbortController();
  let last = performance.now();
  let noted = false;
  let expired = false;
  const timer = setInterval(
    () => {
      const silent = (performance.now() - last) / 1000;
      if (silent >= seconds) {
        expired = true;
        controller.abort();
      } else if (!noted && silent >= seconds / 5) {
        noted = true;
        log?.(`${waitingFor()}: no data for ${silent.toFixed(silent < 10 ? 1 : 0)} s; giving up after ${seconds} s`);
      }
    },
    Math.max(10, Math.min(1000, (seconds * 1000) / 20)),
  );
  return {
    signal: controller.signal,
    touch: () => {
      last = performance.now();
      noted = false;
    },
    stop: () => clearInterval(timer),
    timedOut: () => expired,
  };
}

/** Appends the bytes of `url` from offset `from` to `part`; returns when the body has ended. */
async function fetchInto(url: string, part: string, file: RemoteFile, opts: GetOptions = {}): Promise<void> {
  const onProgress = opts.onProgress;
  const seconds = opts.timeoutSeconds ?? DOWNLOAD_TIMEOUT_SECONDS;
  let from = sizeOf(part);
  if (from > file.size) {
    rmSync(part, { force: true });
    from = 0;
  }
  let received = from;
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  const watchdog = silenceWatchdog(seconds, () => `waiting for ${host} (${received} of ${file.size} bytes of ${file.name})`, opts.log);
  try {
    await fetchBody(url, part, file, from, watchdog, seconds, onProgress, (n) => (received = n));
  } finally {
    watchdog.stop();
  }
}

async function fetchBody(
  url: string,
  part: string,
  file: RemoteFile,
  start: number,
  watchdog: ReturnType<typeof silenceWatchdog>,
  seconds: number,
  onProgress: ((p: DownloadProgress) => void) | undefined,
  setReceived: (n: number) => void,
): Promise<void> {
  let from = start;
  let res: Response;
  try {
    res = await fetch(url, { signal: watchdog.signal, ...(from > 0 ? { headers: { Range: `bytes=${from}-` } } : {}) });
  } catch (e) {
    if (watchdog.timedOut()) throw new DataError(`${url}: no answer from the server in ${seconds} s; check the connection or pass --mirror, then run the command again`);
    const cause = (e as Error & { cause?: Error }).cause;
    throw new DataError(`${url}: download failed (${cause?.message ?? (e as Error).message})`);
  }
  watchdog.touch();
  if (res.status === 416 && from === file.size) return; // already complete
  if (!res.ok) throw new DataError(`${url}: the server answered ${res.status} ${res.statusText}`.trimEnd());
  if (from > 0 && res.status !== 206) from = 0; // the server ignored the range: start over
  const out = createWriteStream(part, { flags: from > 0 ? 'a' : 'w' });
  const resumedFrom = from;
  let received = from;
  setReceived(received);
  try {
    if (!res.body) throw new Error('empty response');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      watchdog.touch();
      received += chunk.length;
      setReceived(received);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      onProgress?.({ file: file.name, received, total: file.size, resumedFrom });
    }
  } catch (e) {
    const cause = (e as Error & { cause?: Error }).cause;
    const why = watchdog.timedOut() ? `no data for ${seconds} s` : (cause?.message ?? (e as Error).message);
    throw new DataError(`${url}: the transfer was interrupted after ${received} of ${file.size} bytes (${why}); run the command again to resume`);
  } finally {
    await new Promise<void>((r) => out.end(r));
  }
}

/** Fetches one original into `<downloads>/<name>` (verified), resuming a `.part`. */
async function fetchVerified(base: string, downloads: string, file: RemoteFile, opts: GetOptions): Promise<string> {
  const final = join(downloads, file.name);
  if (existsSync(final) && sizeOf(final) === file.size && (await sha256Of(final)) === file.sha256) return final;
  rmSync(final, { force: true });
  const part = `${final}.part`;
  const local = localMirror(base);
  const where = local ? join(local, file.name) : `${base.replace(/\/+$/, '')}/${file.name}`;
  if (local) {
    if (!existsSync(where)) throw new DataError(`${where}: not found in the mirror folder`);
    const out = createWriteStream(part);
    let received = 0;
    for await (const chunk of createReadStream(where)) {
      received += (chunk as Buffer).length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      opts.onProgress?.({ file: file.name, received, total: file.size, resumedFrom: 0 });
    }
    await new Promise<void>((r) => out.end(r));
  } else {
    await fetchInto(where, part, file, opts);
  }
  // The body ended normally (an interruption throws above): a size other than the recorded one
  // means another file, like a wrong checksum.
  const size = sizeOf(part);
  if (size !== file.size) {
    rmSync(part, { force: true });
    throw new DataError(
      `${where}: size mismatch: ${size} bytes, expected ${file.size}. The download was deleted; the file served differs from the original.`,
    );
  }
  const got = await sha256Of(part);
  if (got !== file.sha256) {
    rmSync(part, { force: true });
    throw new DataError(
      `${where}: checksum mismatch: SHA-256 ${got}, expected ${file.sha256}. The download was deleted; the file served differs from the original.`,
    );
  }
  renameSync(part, final);
  return final;
}

/** True when every converted file of `name` is in `dir`. */
export function isPresent(name: string, dir: string): boolean {
  return sourceOf(name).produces.every((f) => existsSync(join(dir, f)));
}

/**
 * Downloads, verifies and converts data set `name` into the data directory.
 * @throws DataError on a network error, a server error, an interrupted transfer (resumable)
 * or a checksum mismatch, naming the URL.
 */
export async function getDataSet(name: string | DataSetSource, opts: GetOptions = {}): Promise<GetResult> {
  const src = typeof name === 'string' ? sourceOf(name) : name;
  const dir = resolve(opts.dir ?? downloadDataDir(opts.env));
  const files = src.produces.map((f) => join(dir, f));
  if (!opts.force && files.every((f) => existsSync(f))) {
    opts.log?.(`${src.name}: already present in ${dir}`);
    return { dir, files, downloaded: false };
  }
  const downloads = join(dir, '.downloads');
  mkdirSync(downloads, { recursive: true });
  const base = opts.mirror ?? src.baseUrl;
  const paths: string[] = [];
  for (const f of src.files) {
    opts.log?.(`${src.name}: ${f.name} (${(f.size / 1e6).toFixed(1)} MB) from ${base}`);
    paths.push(await fetchVerified(base, downloads, f, opts));
  }
  opts.log?.(`${src.name}: converting into ${dir}`);
  await src.convert(paths, dir);
  if (!opts.keepArchives) {
    for (const p of paths) rmSync(p, { force: true });
    if (readdirSync(downloads).length === 0) rmSync(downloads, { recursive: true, force: true });
  }
  return { dir, files, downloaded: true };
}

export interface ListedDataSet {
  readonly name: string;
  readonly description: string;
  readonly present: boolean;
  /** Where it was found (the first data directory holding all its files), if present. */
  readonly dir?: string;
  readonly files: readonly string[];
}

/** What `vmm data list` shows: each known data set, whether present and where. */
export function listDataSets(candidates: readonly string[]): ListedDataSet[] {
  return Object.values(DATA_SOURCES).map((s) => {
    const dir = candidates.find((d) => isPresent(s.name, d));
    return { name: s.name, description: s.description, present: dir !== undefined, ...(dir ? { dir } : {}), files: s.produces };
  });
}
