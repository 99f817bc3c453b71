import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  BackendError,
  availableBackends,
  currentBackend,
  formatInfo,
  selectBackend,
} from '../../src/runtime/backend.ts';
import { maxRelDiff, values } from './backends.ts';

describe('selectBackend', () => {
  it('picks a backend by itself, logs it once, and is idempotent', async () => {
    const lines: string[] = [];
    const a = await selectBackend({ log: (m) => lines.push(m) });
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
      expect(lines[0]).toMatch(/^backend: wasm \(SIMD, 1 thread\); native TensorFlow (not installed|unusable).*see README for GPU/);
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
      /--backend tensorflow: the tensorflow backend is not available here: native TensorFlow (not installed|unusable).*Available: wasm, cpu\./,
    );
    expect(tf.getBackend()).toBe(before);
  });

  it('rejects an unknown backend name', async () => {
    await expect(selectBackend({ force: 'webgpu' })).rejects.toThrow("unknown backend 'webgpu': expected one of tensorflow, wasm, cpu");
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

describe('wasm transposed matMul fix', () => {
  it('matches cpu for every transpose combination, with batch broadcasting, and leaks no data', async () => {
    const shapes: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[2, 7, 5], [3, 7], true, true],
      [[2, 5, 7], [2, 3, 7], false, true],
      [[1, 7], [3, 7], false, true],
    ];
    const results: Record<string, number[][]> = {};
    for (const b of ['cpu', 'wasm'] as const) {
      await selectBackend({ force: b });
      const backend = tf.backend() as unknown as { numDataIds(): number };
      const ids0 = backend.numDataIds();
      results[b] = shapes.map(([sa, sb, ta, tb], i) =>
        tf.tidy(() => values(tf.matMul(tf.randomNormal(sa, 0, 1, 'float32', i + 1), tf.randomNormal(sb, 0, 1, 'float32', 100 + i), ta, tb))),
      );
      expect(backend.numDataIds()).toBe(ids0);
    }
    for (let i = 0; i < shapes.length; i++) expect(maxRelDiff(results['wasm']![i]!, results['cpu']![i]!)).toBeLessThan(1e-5);
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
