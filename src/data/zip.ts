/**
 * Reading ZIP archives held in memory: a thin typed adapter over fflate's `unzipSync`
 * (stored and deflated entries, ZIP64). Every failure of the library (not a ZIP, truncated or
 * corrupt data, an unsupported compression method) is reported as a DataError naming the archive
 * and, where known, the entry.
 *
 * fflate checks neither CRC-32s nor header signatures. Truncated archives, corrupt deflate streams
 * and short entries are still caught (the latter by comparing each entry's length with the size in
 * the central directory); the Omniglot converter checks the PNG chunk CRCs of what it reads.
 */
import { unzipSync, type UnzipFileInfo } from 'fflate';
import { DataError } from './paths.ts';

/** An entry name for an error message: quoted, control characters as '?', shortened if long (it may be garbage). */
function show(name: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return `"${clean.length > 60 ? `${clean.slice(0, 60)}...` : clean}"`;
}

export interface ZipEntry {
  /** The path inside the archive, '/'-separated; directories end with '/'. */
  readonly name: string;
  readonly isDirectory: boolean;
  readonly compressedSize: number;
  readonly size: number;
  /** The entry's contents (decompressed when the archive was read). */
  read(): Uint8Array;
}

/**
 * Lists and decompresses the entries of a ZIP archive held in memory, in central-directory
 * order. `label` (usually the file path) names the archive in errors.
 * @throws DataError if the archive cannot be read.
 */
export function readZip(buf: Uint8Array, label = 'zip'): ZipEntry[] {
  const infos: UnzipFileInfo[] = [];
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(buf, {
      filter: (info) => {
        infos.push(info);
        return true;
      },
    });
  } catch (e) {
    // fflate reads and decompresses entry by entry: the failure is at or just after the last one seen.
    const at = infos.length > 0 ? ` near entry ${show(infos[infos.length - 1]!.name)}` : '';
    throw new DataError(`${label}: not a readable ZIP archive${at} (${(e as Error).message})`);
  }
  // A name that occurs twice (unusual) is listed once, with the contents of its last occurrence.
  const last = new Map(infos.map((info) => [info.name, info]));
  return [...last.values()].map(({ name, size: compressedSize, originalSize: size }) => {
    const data = files[name];
    // An empty name is what fflate yields when the central directory offset points to garbage.
    if (name === '') throw new DataError(`${label}: corrupt central directory (an entry without a name)`);
    if (data === undefined) throw new DataError(`${label}: ${show(name)}: entry missing after decompression`);
    if (data.length !== size) {
      throw new DataError(`${label}: ${show(name)}: expected ${size} bytes, got ${data.length}`);
    }
    return { name, isDirectory: name.endsWith('/'), compressedSize, size, read: () => data };
  });
}
