/**
 * `vmm index` and `vmm classify --index` (issue #26) on a small trained run and a memory of a few
 * thousand MNIST images: the nearest-neighbour index and the exact scan of the stored keys agree on
 * the best entry; an interrupted build resumes to the same keys; a changed memory file or model is
 * detected. And the keys/query split of the guide's address logits (src/jobs/address_keys.ts).
 */
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as run } from './run_cli.ts';
import { loadMnistPackage } from '../../src/data/mnist_package.ts';
import { frontEnd } from '../../src/check/pipeline.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { addressKeys, embedKeys } from '../../src/jobs/address_keys.ts';
import { runIndex } from '../../src/jobs/index_run.ts';
import { readManifest } from '../../src/jobs/ann_index.ts';
import { withAddressing } from '../../src/ir/addressing.ts';
import { openImageRows } from '../../src/data/image_rows.ts';
import { readImageArray } from '../../src/data/image_array.ts';
import { encodeNpy } from '../../src/data/npy.ts';

const root = join(__dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-index-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A uint8 .npy file of `n` images of 28x28. */
const npyU8 = (n: number, body: Uint8Array): Uint8Array => encodeNpy(body, [n, 28, 28]);

interface Row {
  query: number;
  entry: number;
  label: string;
  prob: number;
  top: { entry: number; prob: number }[];
}
const parse = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('vmm index and vmm classify --index', () => {
  const runDir = join(tmp, 'run');
  const memPath = join(tmp, 'mem.npy');
  const qPath = join(tmp, 'q.npy');
  const idx = join(tmp, 'idx');
  const M = 2000;

  beforeAll(async () => {
    const r = await run('train', join(root, 'models', 'vma_mnist.vmm'), '--steps', '3', '--out', runDir, '--batch', '4', '--classes', '2', '--shots', '1', '--valid-size', '8', '--valid-every', '2', '--quiet', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    const set = loadMnistPackage();
    const img = (k: number) => Uint8Array.from(set.images.subarray(k * 784, (k + 1) * 784), (v) => Math.round((v * 255) / set.maxValue));
    const mem = new Uint8Array(M * 784);
    for (let i = 0; i < M; i++) mem.set(img(i), i * 784);
    writeFileSync(memPath, npyU8(M, mem));
    // Queries: copies of memory entries (well separated from the rest: the entry itself scores highest or close to it).
    const q = new Uint8Array(24 * 784);
    for (let i = 0; i < 24; i++) q.set(img(i * 83), i * 784);
    writeFileSync(qPath, npyU8(24, q));
  }, 60_000);

  it('embeds the memory, and the index and the exact scan agree on the best entry', async () => {
    // One thread: the graph (and so the test) is the same on every run.
    const r = await run('index', runDir, '--memory', memPath, '--out', idx, '--batch', '512', '--binarize', 'threshold', '--threads', '1', '--backend', 'wasm', '--quiet');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out.trim())).toMatchObject({ entries: M, learned: 0, dim: 128, embedded_now: M });
    const m = readManifest(idx)!;
    expect(m.embedded).toBe(M);
    expect(m.index).toMatchObject({ library: 'usearch', metric: 'mips-cos' });
    expect(readFileSync(join(idx, 'keys.f32')).byteLength).toBe(M * 128 * 4);

    const ann = await run('classify', runDir, '--index', idx, '--queries', qPath, '--json', '--top', '3', '--binarize', 'threshold', '--candidates', '64', '--backend', 'wasm');
    expect(ann.code, ann.err).toBe(0);
    const exact = await run('classify', runDir, '--index', idx, '--queries', qPath, '--json', '--top', '3', '--binarize', 'threshold', '--exact', '--backend', 'wasm');
    expect(exact.code, exact.err).toBe(0);
    const a = parse(ann.out);
    const e = parse(exact.out);
    expect(a).toHaveLength(25);
    expect(a.at(-1)).toMatchObject({ queries: 24, entries: M, index: 'ann' });
    expect(e.at(-1)).toMatchObject({ queries: 24, entries: M, index: 'exact' });
    expect(typeof a.at(-1)!.search_ms).toBe('number');
    const ar = a.slice(0, -1) as unknown as Row[];
    const er = e.slice(0, -1) as unknown as Row[];
    // HNSW is approximate and this model is barely trained (near ties between entries): the best
    // entry agrees for at least 95% of queries (the goal), and where it does not, the
    // index's choice is among the exact scan's top 3.
    const agree = ar.filter((x, i) => x.entry === er[i]!.entry).length;
    expect(agree / er.length).toBeGreaterThanOrEqual(0.95);
    for (let i = 0; i < er.length; i++) {
      if (ar[i]!.entry !== er[i]!.entry) expect(er[i]!.top.map((t) => t.entry)).toContain(ar[i]!.entry);
    }
    // Without the tail's estimate the index's normalizer is the candidates' sum alone, at most the exact one.
    const noTail = await run('classify', runDir, '--index', idx, '--queries', qPath, '--json', '--top', '3', '--binarize', 'threshold', '--tail', '0', '--backend', 'wasm');
    const nt = parse(noTail.out).slice(0, -1) as unknown as Row[];
    // The index is approximate: the best entry agrees; of the top 3, nearly all.
    let overlap = 0;
    for (let i = 0; i < er.length; i++) {
      const want = new Set(er[i]!.top.map((t) => t.entry));
      overlap += ar[i]!.top.filter((t) => want.has(t.entry)).length / 3 / er.length;
      // Exact probabilities sum to at most 1; the index's (an estimated normalizer) are probabilities too.
      expect(er[i]!.top.reduce((s, t) => s + t.prob, 0)).toBeLessThanOrEqual(1 + 1e-9);
      expect(ar[i]!.prob > 0 && ar[i]!.prob <= 1).toBe(true);
      if (nt[i]!.entry === er[i]!.entry) expect(nt[i]!.prob).toBeGreaterThanOrEqual(er[i]!.prob * (1 - 1e-5));
    }
    expect(overlap).toBeGreaterThan(0.9);
    // The same binary images as `classify --memory` (same ids), so the same answer as the dense path.
    const dense = await run('classify', runDir, '--memory', memPath, '--queries', qPath, '--json', '--top', '1', '--binarize', 'threshold', '--backend', 'wasm');
    expect(dense.code, dense.err).toBe(0);
    const d = parse(dense.out) as unknown as Row[];
    expect(d.map((x) => x.entry)).toEqual(er.map((x) => x.entry));
    for (let i = 0; i < d.length; i++) expect(er[i]!.prob).toBeCloseTo(d[i]!.prob, 4);
  }, 60_000);

  it('resumes an interrupted build to the same keys, and starts again when the memory file changes', async () => {
    const part = join(tmp, 'part');
    let batches = 0;
    await expect(
      runIndex(runDir, {
        memory: memPath,
        out: part,
        batch: 512,
        binarize: 'threshold',
        seed: 12345,
        progress: (p) => {
          if (p.phase === 'embed' && ++batches === 2) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(readManifest(part)!.embedded).toBe(1024);
    const r = await runIndex(runDir, { memory: memPath, out: part, batch: 512, binarize: 'threshold', seed: 12345 });
    expect(r.resumedAt).toBe(1024);
    expect(r.embeddedNow).toBe(M - 1024);
    expect(Buffer.compare(readFileSync(join(part, 'keys.f32')), readFileSync(join(idx, 'keys.f32')))).toBe(0);

    // A finished folder: nothing to do.
    expect((await runIndex(runDir, { memory: memPath, out: part, batch: 512, binarize: 'threshold', seed: 12345 })).embeddedNow).toBe(0);
    // Another memory file at the same path: rebuilt from the first entry.
    const other = readFileSync(memPath);
    other[other.length - 1] = 255 - other[other.length - 1]!;
    const mem2 = join(tmp, 'mem2.npy');
    copyFileSync(memPath, mem2);
    writeFileSync(mem2, other);
    const again = await runIndex(runDir, { memory: mem2, out: part, batch: 1024, binarize: 'threshold', seed: 12345 });
    expect(again.restarted).toMatch(/memory file .* changed/);
    expect(again.embeddedNow).toBe(M);
  }, 60_000);

  it('refuses an index built from other weights, and --exact or a missing memory without --index', async () => {
    const run2 = join(tmp, 'run2');
    cpSync(runDir, run2, { recursive: true });
    const w = join(run2, 'final', 'checkpoint.safetensors');
    const bytes = readFileSync(w);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(w, bytes);
    const r = await run('classify', run2, '--index', idx, '--queries', qPath, '--backend', 'wasm');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/built from other weights/);
    const e = await run('classify', runDir, '--queries', qPath, '--exact', '--memory', memPath, '--backend', 'wasm');
    expect(e.err).toMatch(/--exact goes with --index/);
    const n = await run('classify', runDir, '--queries', qPath, '--backend', 'wasm');
    expect(n.err).toMatch(/needs --memory FILE \(or --index DIR/);
  }, 30_000);
});

describe('openImageRows: a memory file read by rows', () => {
  it('gives the bytes readImageArray gives, binary 0/1 images scaled to 0/255 alike', () => {
    for (const [name, values] of [
      ['bytes.npy', (i: number) => (i * 37) % 256],
      ['bits.npy', (i: number) => (i * 7) % 3 === 0 ? 1 : 0],
    ] as const) {
      const body = Uint8Array.from({ length: 5 * 784 }, (_, i) => values(i));
      const p = join(tmp, name);
      writeFileSync(p, npyU8(5, body));
      const rows = openImageRows(p);
      try {
        const whole = readImageArray(p);
        expect([rows.count, rows.height, rows.width]).toEqual([5, 28, 28]);
        expect(Buffer.compare(Buffer.from(rows.rows(1, 4)), Buffer.from(whole.pixels.subarray(784, 4 * 784))), name).toBe(0);
      } finally {
        rows.close();
      }
    }
  });
});

describe('addressKeys: the guide address logits as keys(memory) @ query(x)', () => {
  const irOf = (file: string) => {
    const r = frontEnd(readFileSync(join(root, 'models', file), 'utf8'));
    expect(r.ir, file).toBeDefined();
    return withAddressing(r.ir!);
  };

  it('finds h(entries) over stack(mem, dummies), and a chunk of the memory has the keys of its rows', () => {
    const ir = irOf('vma_omniglot_mlp.vmm');
    const a = addressKeys(ir);
    expect([a.memory, a.data, a.offset, a.learned]).toEqual(['mem', 'x', 0, 2]);
    const before = tf.memory().numTensors;
    const model = new CompiledModel(ir, 3);
    try {
      const D = a.dataSize;
      const rows = Float32Array.from({ length: 6 * D }, (_, i) => ((i * 2654435761) >>> 28) & 1);
      const all = embedKeys(ir, model, a, rows);
      const tail = embedKeys(ir, model, a, rows.subarray(4 * D));
      expect(all.keys.length).toBe(6 * a.dim);
      expect(all.learned.length).toBe(a.learned * a.dim);
      const close = (x: Float32Array, y: Float32Array) => x.every((v, i) => Math.abs(v - y[i]!) < 1e-4);
      expect(close(tail.keys, all.keys.subarray(4 * a.dim))).toBe(true);
      expect(close(tail.learned, all.learned)).toBe(true);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a model without a memory address', () => {
    expect(() => addressKeys(irOf('vae.vmm'))).toThrow(/memory index needs the guide's address logits/);
  });
});
