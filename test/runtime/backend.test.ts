import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  BackendError,
  availableBackends,
  currentBackend,
  formatInfo,
  selectBackend,
  type BackendInfo,
} from '../../src/runtime/backend.ts';
import { loadBlas } from '../../src/runtime/blas.ts';
import { maxRelDiff } from './backends.ts';
import { productCases } from './fixtures/product_cases.ts';

describe('selectBackend', () => {
  it('picks a backend by itself, logs it once, and is idempotent', async () => {
    const lines: string[] = [];
    // vmm's own kernels (the default) even where the environment asks for the generic path.
    const a = await selectBackend({ log: (m) => lines.push(m), kernels: 'vmm' });
    const b = await selectBackend({ log: (m) => lines.push(m) });
    expect(b).toEqual(a);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(formatInfo(a));
    expect(lines[0]).toMatch(/^backend: (tensorflow|wasm|cpu) \(/);
    expect(tf.getBackend()).toBe(a.name);
    expect(currentBackend()).toEqual(a);
    // No native TensorFlow in this environment: wasm wins, and the line says why.
    if (a.name === 'wasm') {
      expect(a.simd).toBe(true);
      expect(a.threads).toBeGreaterThanOrEqual(1);
      expect(lines[0]).toMatch(
        /^backend: wasm \(SIMD, 1 thread, matrix products: (OpenBLAS( \w+)?, \d+ threads?( \(vmm's pool\))?\); OpenBLAS module (prebuilt for|built from source: )|wasm\); (no OpenBLAS module|OpenBLAS module turned off)).*; native TensorFlow (not installed|unusable).*see docs\/backends\.md for GPU/,
      );
    }
  });

  it('forces cpu and wasm', async () => {
    const cpu = await selectBackend({ force: 'cpu' });
    expect(cpu).toMatchObject({ name: 'cpu', reason: 'forced' });
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await selectBackend({ force: 'wasm' });
    expect(wasm).toMatchObject({ name: 'wasm', reason: 'forced', simd: true });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('forcing tensorflow where it is not installed fails with a clear message', async () => {
    const avail = await availableBackends();
    if (avail.includes('tensorflow')) return; // a machine with tfjs-node: nothing to check
    const before = tf.getBackend();
    await expect(selectBackend({ force: 'tensorflow' })).rejects.toThrow(BackendError);
    await expect(selectBackend({ force: 'tensorflow' })).rejects.toThrow(
      /--backend tensorflow: the tensorflow backend is not available here: native TensorFlow (not installed|unusable).*Available: (webgpu, )?wasm, cpu\./,
    );
    expect(tf.getBackend()).toBe(before);
  });

  it('rejects an unknown backend name', async () => {
    await expect(selectBackend({ force: 'webgl' })).rejects.toThrow("unknown backend 'webgl': expected one of tensorflow, webgpu, wasm, cpu");
  });

  it('lists cpu and wasm as available', async () => {
    const avail = await availableBackends();
    expect(avail).toContain('cpu');
    expect(avail).toContain('wasm');
  });

  it('leaves no uncaughtException handler of the wasm runtime behind', async () => {
    const before = process.listeners('uncaughtException').length;
    await selectBackend({ force: 'wasm' });
    expect(process.listeners('uncaughtException').length).toBe(before);
  });
});

describe('wasm matrix products (OpenBLAS where built, else the transposition fix)', () => {
  const cpuResults = async (all = false) => {
    await selectBackend({ force: 'cpu' });
    return productCases(all);
  };

  it('match cpu for every transpose, batch broadcast, bias and activation, and leak no data', async () => {
    const blas = loadBlas() !== undefined;
    const cpu = await cpuResults(blas);
    const info = await selectBackend({ force: 'wasm' });
    // Which path ran: the banner says OpenBLAS exactly when the native module loaded, and with
    // which of OpenBLAS's kernel sets (OPENBLAS_CORETYPE's names).
    expect(info.blasThreads !== undefined).toBe(blas);
    if (blas) expect(info.blasCore).toMatch(/^[A-Za-z0-9]+$/);
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const ids0 = backend.numDataIds();
    const wasm = productCases(blas);
    expect(backend.numDataIds()).toBe(ids0);
    for (let i = 0; i < cpu.length; i++) expect(maxRelDiff(wasm[i]!, cpu[i]!), `case ${i}`).toBeLessThan(1e-4); // float32 sums over k <= 300
    // These products are small enough to run on one thread (vmm_blas.c's serial threshold); with
    // the threshold at 0 OpenBLAS threads them as it likes, and they must agree as well.
    const native = loadBlas();
    if (native?.serial_below) {
      const before = native.serial_below(0);
      try {
        const threaded = productCases(blas);
        for (let i = 0; i < cpu.length; i++) expect(maxRelDiff(threaded[i]!, cpu[i]!), `case ${i}, threaded`).toBeLessThan(1e-4);
      } finally {
        native.serial_below(before);
      }
    }
    // And in vmm's pool (the default where OpenBLAS has two threads; the tests run with one):
    // products worth it in two halves of their rows, one on the helper thread.
    if (native?.pair && native.paired) {
      const before = native.pair(3);
      try {
        const tasks = native.paired();
        const pooled = productCases(blas);
        for (let i = 0; i < cpu.length; i++) expect(maxRelDiff(pooled[i]!, cpu[i]!), `case ${i}, pooled`).toBeLessThan(1e-4);
        expect(native.paired(), 'some product ran in halves').toBeGreaterThan(tasks);
        expect(formatInfo({ ...info, blasPool: true })).toMatch(/matrix products: OpenBLAS( \w+)?, \d+ threads? \(vmm's pool\)/);
      } finally {
        native.pair(before);
      }
    }
  });

  it('the pure-wasm path (VMM_BLAS=0) matches cpu too', async () => {
    const cpu = await cpuResults();
    const { spawnSync } = await import('node:child_process');
    const { resolve } = await import('node:path');
    const r = spawnSync(process.execPath, [resolve(__dirname, '../../bin/run-ts.mjs'), resolve(__dirname, 'fixtures/matmul_products.ts'), 'wasm'], {
      env: { ...process.env, VMM_BLAS: '0', VMM_KERNELS: 'vmm' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr.slice(0, 500)).toBe(0);
    const { info, results } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { info: BackendInfo; results: number[][] };
    expect(info.name).toBe('wasm');
    expect(info.blasThreads).toBeUndefined();
    expect(info.blasWhyNot).toMatch(/VMM_BLAS=0/);
    for (let i = 0; i < cpu.length; i++) expect(maxRelDiff(results[i]!, cpu[i]!), `case ${i}`).toBeLessThan(1e-4);
  });
});

describe('experimental threaded wasm (VMM_WASM_THREADS)', () => {
  it('starts with 2 threads under Node, computes, and lets the process exit', async () => {
    const { spawn } = await import('node:child_process');
    const { resolve } = await import('node:path');
    const child = spawn(process.execPath, [resolve(__dirname, '../../bin/run-ts.mjs'), resolve(__dirname, 'fixtures/threaded_wasm.ts')], {
      env: { ...process.env, VMM_WASM_THREADS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((ok) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        ok(c);
      });
    });
    expect(code, `exit code (stderr: ${err.slice(0, 500)})`).toBe(0);
    const r = JSON.parse(out.trim().split('\n').pop()!) as { info: { name: string; threads: number }; product: number[]; finite: boolean };
    expect(r.info.name).toBe('wasm');
    expect(r.info.threads).toBe(2);
    expect(r.product).toEqual([4, 5, 10, 11]);
    expect(r.finite).toBe(true);
  }, 40_000);
});

describe('wasm Tile by contiguous runs (patchWasmTile)', () => {
  it('equals the cpu kernel for any shape and repetitions, float32, int32 and bool', async () => {
    const { assert, property, array, integer, constantFrom } = await import('fast-check');
    const cases: { shape: number[]; reps: number[]; dtype: 'float32' | 'int32' | 'bool' }[] = [];
    assert(
      property(array(integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }), array(integer({ min: 1, max: 3 }), { minLength: 4, maxLength: 4 }), constantFrom('float32', 'int32', 'bool'), (shape, reps, dtype) => {
        cases.push({ shape, reps: reps.slice(0, shape.length), dtype: dtype as 'float32' | 'int32' | 'bool' });
      }),
      { numRuns: 60, seed: 7 },
    );
    cases.push({ shape: [1, 32, 128], reps: [4, 1, 1], dtype: 'float32' }, { shape: [32, 8, 784], reps: [1, 4, 1], dtype: 'float32' }, { shape: [2, 3], reps: [1, 1], dtype: 'float32' });
    const run = async (backend: 'cpu' | 'wasm') => {
      await selectBackend({ force: backend });
      return cases.map(({ shape, reps, dtype }) =>
        tf.tidy(() => {
          const n = shape.reduce((a, b) => a * b, 1);
          const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : i * 1.5 - 7));
          const x = tf.tensor(values, shape, dtype);
          const y = tf.tile(x, reps);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        }),
      );
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cases.forEach((c, i) => expect(wasm[i], `tile [${c.shape}] x [${c.reps}] ${c.dtype}`).toEqual(cpu[i]));
  });
});

describe('wasm GatherV2 and Slice by contiguous runs (patchWasmGather, patchWasmSlice)', () => {
  it('equal the cpu kernels for any shape, axis, indices and slice, float32, int32 and bool', async () => {
    const { assert, property, array, integer, constantFrom, nat } = await import('fast-check');
    type Dtype = 'float32' | 'int32' | 'bool';
    const cases: { shape: number[]; axis: number; indices: number[]; begin: number[]; size: number[]; dtype: Dtype }[] = [];
    assert(
      property(array(integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }), nat(), array(nat(), { minLength: 0, maxLength: 7 }), array(nat(), { minLength: 8, maxLength: 8 }), constantFrom('float32', 'int32', 'bool'), (shape, a, ix, cut, dtype) => {
        const axis = a % shape.length;
        const begin = shape.map((n, i) => cut[i]! % n);
        const size = shape.map((n, i) => 1 + (cut[i + 4]! % (n - begin[i]!)));
        cases.push({ shape, axis, indices: ix.map((v) => v % shape[axis]!), begin, size, dtype: dtype as Dtype });
      }),
      { numRuns: 80, seed: 11 },
    );
    // Rows longer than 16 values (one TypedArray.set each), whole buckets, and a contiguous row slice.
    cases.push({ shape: [50, 64], axis: 0, indices: [3, 49, 0, 3], begin: [10, 0], size: [30, 64], dtype: 'float32' });
    cases.push({ shape: [4, 2, 40], axis: 1, indices: [1, 1, 0], begin: [1, 0, 5], size: [2, 2, 30], dtype: 'int32' });
    const run = async (backend: 'cpu' | 'wasm') => {
      await selectBackend({ force: backend });
      return cases.map(({ shape, axis, indices, begin, size, dtype }) =>
        tf.tidy(() => {
          const n = shape.reduce((x, y) => x * y, 1);
          const x = tf.tensor(Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : i * 1.5 - 7)), shape, dtype);
          const g = tf.gather(x, tf.tensor1d(indices, 'int32'), axis);
          const s = tf.slice(x, begin, size);
          return { gather: { shape: g.shape, values: Array.from(g.dataSync()) }, slice: { shape: s.shape, values: Array.from(s.dataSync()) } };
        }),
      );
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cases.forEach((c, i) => expect(wasm[i], `gather axis ${c.axis} of [${c.shape}] at [${c.indices}], slice [${c.begin}] + [${c.size}], ${c.dtype}`).toEqual(cpu[i]));
    // An index out of range is an error, as on cpu.
    await selectBackend({ force: 'wasm' });
    expect(() => tf.tidy(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([3], 'int32')).dataSync())).toThrow(/not in \[0, 3\)/);
  });
});

