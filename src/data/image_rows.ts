/**
 * Images of a memory file read a batch at a time, for `vmm index` over memories larger than what
 * `readImageArray` (./image_array.ts) holds at once: it decodes every value as a float64, 8 bytes a
 * pixel, 6 GB for 10^6 images of 28x28. A `.npy` of bytes (`|u1`, `|b1`) is read by rows from the
 * file instead, after one pass for its largest value (so values scale exactly as readImageArray
 * scales them: [0, 1] to 0..255, 0..255 unchanged). Anything else goes through readImageArray.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { RunError } from '../diagnostics/errors.ts';
import { readImageArray } from './image_array.ts';

export interface ImageRows {
  count: number;
  height: number;
  width: number;
  labels?: string[];
  /** Images [start, end) as 0..255 bytes, [end - start, height * width]. */
  rows(start: number, end: number): Uint8Array;
  close(): void;
}

/** The header of a .npy file: dtype, shape and where the data starts; undefined when it is not one this reader streams. */
function npyHeader(fd: number): { descr: string; shape: number[]; offset: number } | undefined {
  const head = new Uint8Array(12);
  if (readSync(fd, head, 0, 12, 0) < 10) return undefined;
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (magic.some((b, i) => head[i] !== b)) return undefined;
  const major = head[6]!;
  const dv = new DataView(head.buffer);
  const len = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const text = new Uint8Array(len);
  readSync(fd, text, 0, len, start);
  const header = new TextDecoder('latin1').decode(text);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined || /'fortran_order'\s*:\s*True/.test(header)) return undefined;
  const shape = shapeText.split(',').map((t) => t.trim()).filter((t) => t !== '').map(Number);
  return { descr, shape, offset: start + len };
}

/** The images of a .npy or .npz memory file, by rows (see the module comment). */
export function openImageRows(path: string): ImageRows {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new RunError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const h = npyHeader(fd);
  const s = h?.shape ?? [];
  const geometry =
    s.length === 3 ? [s[0]!, s[1]!, s[2]!] : s.length === 4 && s[3] === 1 ? [s[0]!, s[1]!, s[2]!] : s.length === 4 && s[1] === 1 ? [s[0]!, s[2]!, s[3]!] : s.length === 2 && Number.isInteger(Math.sqrt(s[1]!)) ? [s[0]!, Math.sqrt(s[1]!), Math.sqrt(s[1]!)] : undefined;
  if (!h || (h.descr !== '|u1' && h.descr !== '|b1') || !geometry || geometry[0] === 0 || statSync(path).size < h.offset + geometry[0]! * geometry[1]! * geometry[2]!) {
    closeSync(fd);
    const a = readImageArray(path);
    const D = a.height * a.width;
    return { count: a.count, height: a.height, width: a.width, ...(a.labels ? { labels: a.labels } : {}), rows: (b, e) => a.pixels.subarray(b * D, e * D), close: () => {} };
  }
  const [count, height, width] = geometry as [number, number, number];
  const D = height * width;
  // One pass for the largest value: [0, 1] data scales to 0..255, as readImageArray does.
  let max = 0;
  const chunk = new Uint8Array(1 << 24);
  for (let off = 0, total = count * D; off < total && max <= 1; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, total - off), h.offset + off);
    if (n <= 0) break;
    for (let i = 0; i < n; i++) if (chunk[i]! > max) max = chunk[i]!;
    off += n;
  }
  const scale = max <= 1 ? 255 : 1;
  return {
    count,
    height,
    width,
    rows(b, e) {
      if (!(0 <= b && b <= e && e <= count)) throw new RunError(`${path}: rows ${b}..${e} of ${count}`);
      const out = new Uint8Array((e - b) * D);
      readSync(fd, out, 0, out.length, h.offset + b * D);
      if (scale !== 1) for (let i = 0; i < out.length; i++) out[i] = out[i]! * scale;
      return out;
    },
    close: () => closeSync(fd),
  };
}
