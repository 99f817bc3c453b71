import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeArray, encodeNpy, encodeNpz, parseNpy, parseNpz } from '../../src/data/npy.ts';
import { DataError } from '../../src/data/paths.ts';

// Files written by NumPy itself (test/fixtures/npy/README.md).
const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'npy');
const read = (f: string) => new Uint8Array(readFileSync(join(dir, f)));

describe('parseNpy on files written by numpy.save', () => {
  it('float32, C order, 3-D', () => {
    const a = parseNpy(read('f4_c.npy'));
    expect(a.dtype).toBe('f4');
    expect(a.shape).toEqual([2, 3, 4]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data)).toEqual(Array.from({ length: 24 }, (_, i) => i / 4));
    expect(describeArray(a)).toBe('float32 [2, 3, 4]');
  });

  it('big-endian float64 in Fortran order comes back in C order', () => {
    const a = parseNpy(read('f8_big_fortran.npy'));
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
  });

  it('bool, int64, float16 and big-endian uint16', () => {
    expect(Array.from(parseNpy(read('bool.npy')).data)).toEqual([1, 0, 0, 1]);
    expect(Array.from(parseNpy(read('i8.npy')).data)).toEqual([-3, 0, 2 ** 40]);
    expect(Array.from(parseNpy(read('f2.npy')).data)).toEqual([0.5, -2, 65504]);
    expect(Array.from(parseNpy(read('u2_big.npy')).data)).toEqual([1, 256, 65535]);
  });

  it('refuses object arrays, non-npy bytes and truncated data with a DataError naming the file', () => {
    expect(() => parseNpy(read('object.npy'), 'o.npy')).toThrow(/^o\.npy: unsupported array type '\|O'/);
    expect(() => parseNpy(new TextEncoder().encode('hello world'), 'h.npy')).toThrow(DataError);
    expect(() => parseNpy(new TextEncoder().encode('hello world'), 'h.npy')).toThrow(/h\.npy: not a NumPy \.npy file/);
    const f = read('f4_c.npy');
    expect(() => parseNpy(f.subarray(0, f.length - 3), 't.npy')).toThrow(/t\.npy: truncated: .*96 bytes, but 93 follow/);
    expect(() => parseNpy(f.subarray(0, 40), 'h2.npy')).toThrow(/h2\.npy: truncated \.npy header/);
  });
});

describe('parseNpz', () => {
  it('reads numpy.savez_compressed and numpy.savez archives by array name', () => {
    const z = parseNpz(read('images_labels.npz'));
    expect([...z.keys()].sort()).toEqual(['x', 'y']);
    expect(z.get('x')!.shape).toEqual([5, 2, 3]);
    expect(Array.from(z.get('x')!.data)).toEqual(Array.from({ length: 30 }, (_, i) => i % 2));
    expect(Array.from(z.get('y')!.data)).toEqual([0, 1, 0, 1, 2]);
    const p = parseNpz(read('plain.npz'));
    expect(p.get('images')!.dtype).toBe('f4');
  });

  it('names the archive and the member in errors', () => {
    expect(() => parseNpz(new Uint8Array([1, 2, 3]), 'bad.npz')).toThrow(/^bad\.npz: not a readable \.npz \(ZIP\) archive/);
    const z = encodeNpz({ ok: { data: new Uint8Array([1]), shape: [1] } });
    expect(parseNpz(z).get('ok')!.data[0]).toBe(1);
  });
});

describe('encodeNpy', () => {
  it('round-trips every writable type and pads the header to 64 bytes', () => {
    const cases = [
      new Uint8Array([0, 255]),
      new Int8Array([-128, 127]),
      new Uint16Array([0, 65535]),
      new Int16Array([-32768, 5]),
      new Uint32Array([4294967295, 1]),
      new Int32Array([-1, 7]),
      new Float32Array([0.25, -1e30]),
      new Float64Array([Math.PI, -0]),
    ];
    for (const data of cases) {
      const bytes = encodeNpy(data, [1, 2]);
      const headerLen = new DataView(bytes.buffer).getUint16(8, true);
      expect((10 + headerLen) % 64).toBe(0);
      const back = parseNpy(bytes);
      expect(back.shape).toEqual([1, 2]);
      expect(back.data).toEqual(data);
    }
    expect(() => encodeNpy(new Uint8Array(3), [2, 2])).toThrow(RangeError);
  });

  it('writes what numpy writes for the same array (byte for byte)', () => {
    const a = parseNpy(read('f4_c.npy'));
    expect(Buffer.from(encodeNpy(a.data, a.shape)).equals(Buffer.from(read('f4_c.npy')))).toBe(true);
  });
});
