/**
 * `vmm classify` on a small trained run (embedded MNIST), the NumPy reader it uses
 * (src/data/image_array.ts), and the paired columns of `vmm eval`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as run } from './run_cli.ts';
import { loadMnistPackage } from '../../src/data/mnist_package.ts';
import { parseNpy, readImageArray } from '../../src/data/image_array.ts';
import { binarizeImages } from '../../src/jobs/classify_run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-classify-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


/** A .npy file (format 1.0) of `values` with NumPy dtype `descr` and `shape`. */
function npy(descr: string, shape: number[], values: ArrayLike<number>): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const size = Number(descr.slice(2));
  const body = new Uint8Array(values.length * size);
  const dv = new DataView(body.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (descr === '<f4') dv.setFloat32(i * 4, v, true);
    else if (descr === '<f8') dv.setFloat64(i * 8, v, true);
    else if (descr === '|u1' || descr === '|b1') dv.setUint8(i, v);
    else if (descr === '<i8') dv.setBigInt64(i * 8, BigInt(v), true);
    else throw new Error(descr);
  }
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}

describe('readImageArray (.npy / .npz)', () => {
  it('reads uint8, float32, float64 and bool arrays of every accepted shape to 0..255', () => {
    const px = Array.from({ length: 2 * 16 }, (_, i) => (i * 37) % 256);
    const cases: [string, string, number[], number[]][] = [
      ['u8.npy', '|u1', [2, 4, 4], px],
      ['f4.npy', '<f4', [2, 16], px.map((v) => v / 255)],
      ['f8.npy', '<f8', [2, 1, 4, 4], px.map((v) => v / 255)],
      ['nhwc.npy', '<f8', [2, 4, 4, 1], px],
    ];
    for (const [name, descr, shape, vals] of cases) {
      writeFileSync(join(tmp, name), npy(descr, shape, vals));
      const a = readImageArray(join(tmp, name));
      expect([a.count, a.height, a.width], name).toEqual([2, 4, 4]);
      expect(Array.from(a.pixels), name).toEqual(px);
    }
    writeFileSync(join(tmp, 'b.npy'), npy('|b1', [1, 2, 2], [1, 0, 0, 1]));
    expect(Array.from(readImageArray(join(tmp, 'b.npy')).pixels)).toEqual([255, 0, 0, 255]);
  });

  it('reads an .npz with images and labels, and says what is wrong with a bad file', () => {
    writeFileSync(join(tmp, 'm.npz'), zipSync({ 'images.npy': npy('|u1', [2, 2, 2], [0, 255, 255, 0, 9, 9, 9, 9]), 'labels.npy': npy('<i8', [2], [7, 3]) }));
    const a = readImageArray(join(tmp, 'm.npz'));
    expect(a.count).toBe(2);
    expect(a.labels).toEqual(['7', '3']);
    writeFileSync(join(tmp, 'bad.npy'), 'not numpy');
    expect(() => readImageArray(join(tmp, 'bad.npy'))).toThrow(/magic/);
    writeFileSync(join(tmp, 'odd.npy'), npy('|u1', [2, 5], new Array(10).fill(0)));
    expect(() => readImageArray(join(tmp, 'odd.npy'))).toThrow(/square/);
    const full = npy('|u1', [3], [1, 2, 3]);
    expect(() => parseNpy(full.subarray(0, full.length - 2), 'cut')).toThrow(/shorter/);
  });

  it('binarizes by threshold or by a seeded draw (reproducible; binary images unchanged)', () => {
    const a = { pixels: Uint8Array.from([0, 100, 128, 255]), count: 1, height: 2, width: 2 };
    expect(Array.from(binarizeImages(a, 'threshold', 1, 0))).toEqual([0, 0, 1, 1]);
    const s1 = binarizeImages(a, 'sample', 5, 0);
    expect(Array.from(s1)).toEqual(Array.from(binarizeImages(a, 'sample', 5, 0)));
    expect([s1[0], s1[3]]).toEqual([0, 1]);
  });
});

describe('vmm classify and paired eval on a trained run', () => {
  const runDir = join(tmp, 'run');
  const set = loadMnistPackage();
  const test = set.splits.test;
  /** The first test image of each of the digits in `digits`, as [n, 28, 28] uint8. */
  const imagesOf = (digits: number[], skip = 0) => {
    const out: number[] = [];
    for (const d of digits) {
      const idx = Array.from(test).filter((i) => set.labels[i] === d)[skip]!;
      out.push(...Array.from(set.images.subarray(idx * 784, (idx + 1) * 784), (v) => Math.round((v * 255) / set.maxValue)));
    }
    return out;
  };

  beforeAll(async () => {
    const r = await run('train', join(__dirname, '..', '..', 'models', 'vma_mnist.vmm'), '--steps', '3', '--out', runDir, '--batch', '4', '--classes', '2', '--shots', '1', '--valid-size', '8', '--valid-every', '2', '--quiet', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    writeFileSync(join(tmp, 'support.npz'), zipSync({ 'images.npy': npy('|u1', [3, 28, 28], imagesOf([0, 1, 2])), 'labels.npy': npy('<i8', [3], [5, 6, 7]) }));
    writeFileSync(join(tmp, 'queries.npy'), npy('<f4', [4, 784], imagesOf([0, 1, 2, 1], 1).map((v) => v / 255)));
  }, 120_000);

  it('prints one line per query with the argmax entry, its probability and the top entries', async () => {
    const r = await run('classify', runDir, '--memory', join(tmp, 'support.npz'), '--queries', join(tmp, 'queries.npy'), '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^query 0: entry \d+ \(\d\) p=[01]\.\d{3}  top: /);
  });

  it('--json: JSON lines; probabilities sorted, at most 1 in total, the first is the argmax', async () => {
    const r = await run('classify', runDir, '--memory', join(tmp, 'support.npz'), '--queries', join(tmp, 'queries.npy'), '--json', '--top', '3', '--binarize', 'threshold', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as { query: number; entry: number; label: string; prob: number; top: { entry: number; prob: number }[] });
    expect(rows.map((x) => x.query)).toEqual([0, 1, 2, 3]);
    for (const x of rows) {
      expect(x.top).toHaveLength(3);
      expect(x.top[0]!.entry).toBe(x.entry);
      expect(x.prob).toBe(x.top[0]!.prob);
      for (let i = 1; i < 3; i++) expect(x.top[i]!.prob).toBeLessThanOrEqual(x.top[i - 1]!.prob);
      expect(x.top.reduce((s, c) => s + c.prob, 0)).toBeLessThanOrEqual(1 + 1e-5);
      expect(['5', '6', '7']).toContain(x.label);
    }
  });

  it('a memory of the wrong image size is a user error (exit 1), not a crash', async () => {
    writeFileSync(join(tmp, 'small.npy'), npy('|u1', [2, 4, 4], new Array(32).fill(0)));
    const r = await run('classify', runDir, '--memory', join(tmp, 'small.npy'), '--queries', join(tmp, 'queries.npy'), '--backend', 'wasm');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/16 pixels/);
  });

  it('eval: NLL per M with the paired difference to the smallest M (nested memories)', async () => {
    const r = await run('eval', runDir, '--episodes', '6', '--samples', '4', '--memory-sizes', '1,2,3', '--classes-list', '1,2', '--ways', '', '--large', '', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    const json = JSON.parse(readFileSync(join(runDir, 'eval', 'eval.json'), 'utf8')) as { nll: { classes: number; memory: number; diff?: { vs: number; mean: number; se: number } }[] };
    expect(json.nll.map((c) => [c.classes, c.memory, c.diff?.vs])).toEqual([
      [1, 1, undefined],
      [1, 2, 1],
      [1, 3, 1],
      [2, 2, undefined],
      [2, 3, 2],
    ]);
    for (const c of json.nll.filter((x) => x.diff)) expect(c.diff!.se).toBeGreaterThanOrEqual(0);
    expect(readFileSync(join(runDir, 'eval', 'report.md'), 'utf8')).toContain('Paired differences');
  });
});
