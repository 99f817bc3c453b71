/**
 * TensorBoard event files (`events.out.tfevents.*`), written without TensorFlow: a TFRecord
 * stream of `Event` protocol buffers carrying scalar and image summaries.
 *
 * Formats (both public and stable):
 * - TFRecord: each record is `uint64 length | uint32 masked_crc32c(length) | data |
 *   uint32 masked_crc32c(data)`, little-endian, where masked(c) = ((c >>> 15) | (c << 17)) +
 *   0xa282ead8 (tensorflow/core/lib/hash/crc32c.h, tensorflow/core/lib/io/record_writer.cc).
 * - `Event` (tensorflow/core/util/event.proto): wall_time = 1 (double), step = 2 (int64),
 *   file_version = 3 (string, "brain.Event:2" in the first record), summary = 5.
 *   `Summary` (tensorflow/core/framework/summary.proto): repeated Value value = 1; Value:
 *   tag = 1, simple_value = 2 (float), image = 4; Image: height = 1, width = 2, colorspace = 3,
 *   encoded_image_string = 4 (PNG bytes).
 * No npm writer fits (the maintained ones need tfjs-node's native TensorFlow), and the encoder
 * is a page: a varint, a CRC and four messages.
 *
 * `EventFileWriter` appends one record per call, flushed at once (appendFileSync), so a run
 * killed at any moment leaves a file TensorBoard reads up to its last whole record.
 * `truncateEventFiles` drops the records past a step (a resumed run's first act), keeping the
 * run's history free of steps written twice.
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic.ts';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli) of `bytes`: crc32c("123456789") = 0xe3069283. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The CRC as TFRecord stores it: rotated right by 15 bits plus a constant. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the data, its masked CRC. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** The data of each whole, intact record in `bytes`; reading stops at a torn or damaged record. */
export function readTfRecords(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  while (o + 12 <= bytes.length) {
    const len = Number(view.getBigUint64(o, true));
    if (view.getUint32(o + 8, true) !== maskedCrc32c(bytes.subarray(o, o + 8))) break;
    if (o + 16 + len > bytes.length) break;
    const data = bytes.subarray(o + 12, o + 12 + len);
    if (view.getUint32(o + 12 + len, true) !== maskedCrc32c(data)) break;
    out.push(data);
    o += 16 + len;
  }
  return out;
}

/** A protocol-buffer message under construction (only the wire types the Event messages use). */
class Proto {
  private parts: number[] = [];

  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.parts.push(Number(x));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(Math.trunc(v));
    return this;
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(...b);
    return this;
  }

  bytes(field: number, v: Uint8Array | string): this {
    const b = typeof v === 'string' ? new TextEncoder().encode(v) : v;
    this.key(field, 2);
    this.varint(b.length);
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]!);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** A summary value: a scalar, or an encoded image (PNG) with its size and channels. */
export type SummaryValue =
  | { tag: string; scalar: number }
  | { tag: string; image: { png: Uint8Array; height: number; width: number; channels: 1 | 3 | 4 } };

/** The bytes of one `Event` proto: a file version (first record) or a summary of values at a step. */
export function encodeEvent(e: { wallTime: number; step: number; fileVersion?: string; values?: readonly SummaryValue[] }): Uint8Array {
  const ev = new Proto().double(1, e.wallTime).int(2, e.step);
  if (e.fileVersion !== undefined) ev.bytes(3, e.fileVersion);
  if (e.values?.length) {
    const summary = new Proto();
    for (const v of e.values) {
      const value = new Proto().bytes(1, v.tag);
      if ('scalar' in v) value.float(2, v.scalar);
      else {
        const img = new Proto().int(1, v.image.height).int(2, v.image.width).int(3, v.image.channels).bytes(4, v.image.png);
        value.bytes(4, img.finish());
      }
      summary.bytes(1, value.finish());
    }
    ev.bytes(5, summary.finish());
  }
  return ev.finish();
}

/** The `step` (field 2) of an encoded Event, or 0 when absent (the file-version record). */
export function eventStep(bytes: Uint8Array): number {
  let o = 0;
  const varint = (): bigint => {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[o++];
      if (b === undefined) throw new RangeError('eventStep: truncated varint');
      x |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return x;
      shift += 7n;
    }
  };
  while (o < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 2 && wire === 0) return Number(BigInt.asIntN(64, varint()));
    if (wire === 0) varint();
    else if (wire === 1) o += 8;
    else if (wire === 5) o += 4;
    else if (wire === 2) o += Number(varint());
    else throw new RangeError(`eventStep: wire type ${wire}`);
  }
  return 0;
}

/** The event files in a folder, oldest first (their names start with the creation time). */
export function eventFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Rewrites every event file in `dir` without the summaries of steps after `step` (and without a
 * torn last record), atomically per file; a file left with no summaries (a run started again
 * from nothing) is removed.
 */
export function truncateEventFiles(dir: string, step: number): void {
  for (const file of eventFiles(dir)) {
    const bytes = new Uint8Array(readFileSync(file));
    const records = readTfRecords(bytes);
    const kept = records.filter((r) => eventStep(r) <= step);
    if (kept.every((r) => eventStep(r) === 0)) {
      rmSync(file, { force: true });
      continue;
    }
    const keptBytes = kept.reduce((n, r) => n + r.length + 16, 0);
    if (keptBytes === bytes.length) continue;
    writeFileAtomicSync(file, Buffer.concat(kept.map((r) => tfRecord(r))));
  }
}

/** Appends events to one `events.out.tfevents.<seconds>.<host>` file in `dir`, made on the first write. */
export class EventFileWriter {
  readonly path: string;
  private started = false;

  constructor(dir: string, now = Date.now()) {
    this.path = join(dir, `events.out.tfevents.${Math.floor(now / 1000)}.${hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost'}`);
  }

  private append(event: Uint8Array): void {
    if (!this.started) {
      this.started = true;
      if (!existsSync(this.path)) appendFileSync(this.path, tfRecord(encodeEvent({ wallTime: Date.now() / 1000, step: 0, fileVersion: 'brain.Event:2' })));
    }
    appendFileSync(this.path, tfRecord(event));
  }

  /** Scalars at a step, one event (non-finite values are written too: TensorBoard shows them as NaN/inf). */
  scalars(step: number, values: Record<string, number>): void {
    const list = Object.entries(values).map(([tag, scalar]) => ({ tag, scalar }));
    if (list.length) this.append(encodeEvent({ wallTime: Date.now() / 1000, step, values: list }));
  }

  /** A PNG image at a step. */
  image(step: number, tag: string, png: Uint8Array, height: number, width: number, channels: 1 | 3 | 4 = 1): void {
    this.append(encodeEvent({ wallTime: Date.now() / 1000, step, values: [{ tag, image: { png, height, width, channels } }] }));
  }
}
