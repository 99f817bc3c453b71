/**
 * A minimal reader for ZIP archives (PKWARE APPNOTE): reads the central directory and
 * inflates entries stored (method 0) or deflated (method 8) with Node's zlib. Enough for the
 * original Omniglot distribution; no ZIP64, no encryption (both are reported as DataError).
 */
import { inflateRawSync } from 'node:zlib';
import { DataError } from './paths.ts';

export interface ZipEntry {
  /** The path inside the archive, '/'-separated; directories end with '/'. */
  readonly name: string;
  readonly isDirectory: boolean;
  readonly compressedSize: number;
  readonly size: number;
  /** Decompresses the entry (checks the size). */
  read(): Uint8Array;
}

const EOCD_SIG = 0x06054b50;
const CEN_SIG = 0x02014b50;
const LOC_SIG = 0x04034b50;

/** Lists the entries of a ZIP archive held in memory. `label` names it in errors. */
export function readZip(buf: Uint8Array, label = 'zip'): ZipEntry[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  let eocd = -1;
  for (let p = buf.length - 22; p >= Math.max(0, buf.length - 22 - 65535); p--) {
    if (view.getUint32(p, true) === EOCD_SIG) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new DataError(`${label}: not a ZIP archive (no end-of-central-directory record)`);
  const total = view.getUint16(eocd + 10, true);
  const cdOffset = view.getUint32(eocd + 16, true);
  if (total === 0xffff || cdOffset === 0xffffffff) throw new DataError(`${label}: ZIP64 archives are not supported`);
  const decoder = new TextDecoder('utf-8');
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let n = 0; n < total; n++) {
    if (p + 46 > buf.length || view.getUint32(p, true) !== CEN_SIG) {
      throw new DataError(`${label}: corrupt central directory at entry ${n}`);
    }
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const compressedSize = view.getUint32(p + 20, true);
    const size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const localOffset = view.getUint32(p + 42, true);
    const name = decoder.decode(buf.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    const read = (): Uint8Array => {
      if (flags & 1) throw new DataError(`${label}: ${name} is encrypted`);
      if (view.getUint32(localOffset, true) !== LOC_SIG) throw new DataError(`${label}: ${name}: bad local header`);
      const start = localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
      const raw = buf.subarray(start, start + compressedSize);
      let data: Uint8Array;
      if (method === 0) data = raw;
      else if (method === 8) data = inflateRawSync(raw);
      else throw new DataError(`${label}: ${name} uses unsupported compression method ${method}`);
      if (data.length !== size) throw new DataError(`${label}: ${name}: expected ${size} bytes, got ${data.length}`);
      return data;
    };
    entries.push({ name, isDirectory: name.endsWith('/'), compressedSize, size, read });
  }
  return entries;
}
