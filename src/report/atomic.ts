/**
 * Atomic file writes: write to a temporary file in the same directory, then rename over the
 * target, so a reader (or a crash) never sees a half-written report, picture or data file.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * `mkdir -p`, with the real reason when it fails. Node's recursive mkdir reports ENOENT for a
 * folder it cannot make on a read-only file system (it stats the missing folder after EROFS), so
 * a failure is retried one level at a time below the deepest folder that exists, whose error
 * (EROFS, EACCES, ENOSPC, ...) is the one thrown (issue #22).
 */
export function mkdirpSync(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let missing = resolve(path);
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    // Throws the error the file system gives for the first folder to make (else, made now, go on).
    mkdirSync(missing);
    mkdirSync(path, { recursive: true });
  }
}

function tmpName(path: string): string {
  const rand = Math.floor(Math.random() * 0x100000000).toString(16);
  return join(dirname(path), `.${basename(path)}.${process.pid}.${rand}.tmp`);
}

/** Writes `data` to `path` atomically (creating the directory if needed). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  mkdirpSync(dirname(path));
  const tmp = tmpName(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Async {@link writeFileAtomicSync}. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
