import { readFileSync } from 'node:fs';
import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { DataError } from '../../src/data/paths.ts';
import { FIXTURE_DATA } from '../fixtures/data.ts';
import { readZip } from '../../src/data/zip.ts';

const text = 'the quick brown fox '.repeat(50);
/** A small archive: a directory, a deflated file and a stored one. */
const archive = zipSync({
  dir: {
    'a.txt': strToU8(text),
    'b.bin': [new Uint8Array([1, 2, 3, 250]), { level: 0 }],
  },
});

/** The offset of the central directory, from the end-of-central-directory record. */
function centralDirectory(zip: Uint8Array): number {
  return Buffer.from(zip).readUInt32LE(zip.length - 22 + 16);
}

describe('readZip (fflate)', () => {
  it('lists and reads stored and deflated entries', () => {
    const entries = readZip(archive, 'small.zip');
    expect(entries.map((e) => [e.name, e.isDirectory])).toEqual([
      ['dir/', true],
      ['dir/a.txt', false],
      ['dir/b.bin', false],
    ]);
    const [, a, b] = entries as [unknown, (typeof entries)[0], (typeof entries)[0]];
    expect(new TextDecoder().decode(a.read())).toBe(text);
    expect([a.size, a.compressedSize < a.size]).toEqual([text.length, true]);
    expect(Array.from(b.read())).toEqual([1, 2, 3, 250]);
    expect([b.size, b.compressedSize]).toEqual([4, 4]);
    expect(readZip(zipSync({}), 'empty.zip')).toEqual([]);
  });

  it('reads the Omniglot fixture zip (original PNGs)', () => {
    const path = join(FIXTURE_DATA, 'raw', 'images_background_small1.zip');
    const entries = readZip(new Uint8Array(readFileSync(path)), path);
    const pngs = entries.filter((e) => !e.isDirectory && e.name.endsWith('.png'));
    expect(pngs.length).toBe(200);
    for (const e of pngs.slice(0, 50)) {
      const bytes = e.read();
      expect(bytes.length).toBe(e.size);
      expect(Array.from(bytes.subarray(1, 4))).toEqual([80, 78, 71]); // 'PNG'
    }
  });

  it('reports unreadable archives as DataErrors naming the file', () => {
    const bad = (buf: Uint8Array): (() => unknown) => () => readZip(buf, '/data/x.zip');
    expect(bad(strToU8('not a zip'))).toThrow(DataError);
    expect(bad(strToU8('not a zip'))).toThrow(/^\/data\/x\.zip: not a readable ZIP archive/);
    expect(bad(new Uint8Array(0))).toThrow(/x\.zip: not a readable ZIP archive/);
    // Truncated: the end-of-central-directory record is gone.
    expect(bad(archive.subarray(0, archive.length - 10))).toThrow(/x\.zip: not a readable ZIP archive/);
    expect(bad(archive.subarray(0, archive.length >> 1))).toThrow(/x\.zip: not a readable ZIP archive/);
  });

  it('reports corrupt entries as DataErrors naming the file and the entry', () => {
    const cd = centralDirectory(archive);
    const view = (z: Uint8Array): DataView => new DataView(z.buffer, z.byteOffset, z.byteLength);
    /** The offset of the central-directory header of entry n. */
    const header = (z: Uint8Array, n: number): number => {
      let p = cd;
      for (let i = 0; i < n; i++) p += 46 + view(z).getUint16(p + 28, true) + view(z).getUint16(p + 30, true) + view(z).getUint16(p + 32, true);
      return p;
    };
    // Garbage in the deflated data of dir/a.txt (it starts after its 30 + 9 byte local header).
    const local = view(archive).getUint32(header(archive, 1) + 42, true);
    const corrupt = archive.slice();
    corrupt.fill(0xff, local + 39, local + 45);
    expect(() => readZip(corrupt, 'c.zip')).toThrow(DataError);
    expect(() => readZip(corrupt, 'c.zip')).toThrow(/^c\.zip: not a readable ZIP archive near entry "dir\/a\.txt"/);
    // An unsupported compression method.
    const method = archive.slice();
    view(method).setUint16(header(method, 1) + 10, 12, true);
    expect(() => readZip(method, 'm.zip')).toThrow(/m\.zip: .*"dir\/a\.txt".*compression type 12/);
    // The central directory claims more bytes than the data inflates to.
    const size = archive.slice();
    view(size).setUint32(header(size, 1) + 24, text.length + 100, true);
    expect(() => readZip(size, 's.zip')).toThrow(/s\.zip: "dir\/a\.txt": expected 1100 bytes, got 1000/);
    // The central directory offset points into the middle of the file.
    const offset = archive.slice();
    view(offset).setUint32(offset.length - 22 + 16, 7, true);
    expect(() => readZip(offset, 'o.zip')).toThrow(DataError);
    expect(() => readZip(offset, 'o.zip')).toThrow(/^o\.zip: /);
  });
});
