/**
 * One memory shared by every example, read from a file (`vmm train --memory FILE`, issue #26):
 * a large memory that every target addresses, instead of a small support set drawn per episode.
 *
 * The file holds images as `vmm index --memory` reads them (a .npy/.npz of [M, H, W] or [M, H*W],
 * bytes 0..255 or floats in [0, 1]; ./image_rows.ts). They are binarized once, by the fixed
 * seeded draw of evaluation (./binarize.ts, one random stream per entry number), so the memory is
 * the same array in every step: the trainer's cached keys (src/lower/cached_keys.ts) stay valid
 * between refreshes, and a resumed run sees the entries it was trained with.
 *
 * The targets come from the run's data set. Which images are in the memory and which are
 * targets is the user's choice: an image that is both can be copied, and the bound of such a
 * target measures recall, not generation (bench/shared_memory.ts builds disjoint files).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { binarizeFixed } from './binarize.ts';
import { openImageRows } from './image_rows.ts';
import { DataError } from './paths.ts';

export interface SharedMemory {
  /** The file, as given. */
  readonly path: string;
  /** Entries M. */
  readonly count: number;
  /** Values per entry (height x width). */
  readonly pixels: number;
  /** [M, pixels], 0/1, one array for the life of the stream (its identity keys the trainer's cache). */
  readonly data: Float32Array;
}

/** The seed of the memory's binarization, fixed apart from the run's seed so every run of a comparison sees the same entries. */
export const MEMORY_BINARIZATION_SEED = 12345;

/** Reads and binarizes a memory file whose entries must have `pixels` values each. */
export function loadSharedMemory(path: string, pixels: number, seed: number = MEMORY_BINARIZATION_SEED): SharedMemory {
  let rows;
  try {
    rows = openImageRows(path);
  } catch (e) {
    throw new DataError(`--memory ${path}: ${(e as Error).message}`);
  }
  try {
    const d = rows.height * rows.width;
    if (d !== pixels) {
      throw new DataError(`--memory ${path}: entries of ${rows.height}x${rows.width} = ${d} values, but the model's memory entries have ${pixels}`);
    }
    if (rows.count < 1) throw new DataError(`--memory ${path}: no entries`);
    const data = binarizeFixed(rows.rows(0, rows.count), seed, { pixelsPerImage: d, maxValue: 255 });
    return { path, count: rows.count, pixels: d, data };
  } finally {
    rows.close();
  }
}

/** The SHA-256 of a memory file, read in chunks (a run keeps it to notice a file changed under it); a DataError if it cannot be read. */
export function memoryFileHash(path: string): string {
  const h = createHash('sha256');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(`--memory ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const buf = Buffer.alloc(1 << 22);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
