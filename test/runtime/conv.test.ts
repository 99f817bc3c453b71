/**
 * Convolutions on wasm (native im2col/col2im + OpenBLAS kernels where the module is built, else
 * wasm's own kernels with the customGrad filter gradient of nets.ts) against the cpu backend:
 * forward values and both gradients of conv2d and deconv2d (conv2dTranspose); sums over leading
 * axes (the bias gradient, native with OpenBLAS) and other sums.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectBackend, type BackendInfo } from '../../src/runtime/backend.ts';
import { loadBlas } from '../../src/runtime/blas.ts';
import { CONV_CASES, convCases, DECONV_CASES, normDiff, SUM_CASES, sumCases } from './fixtures/conv_cases.ts';

const label = (i: number) => (i < CONV_CASES.length ? `conv2d ${JSON.stringify(CONV_CASES[i])}` : `deconv2d ${JSON.stringify(DECONV_CASES[i - CONV_CASES.length])}`);
const parts = ['y', 'dx', 'dw'];

function expectClose(got: number[][][], want: number[][][]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    for (let j = 0; j < 3; j++) expect(normDiff(got[i]![j]!, want[i]![j]!), `${label(i)} ${parts[j]}`).toBeLessThan(2e-5);
  }
}

describe('wasm convolutions (OpenBLAS where built, else wasm kernels) match cpu', () => {
  let cpu: number[][][];
  let cpuSums: number[][];
  const expectSums = (got: number[][]) => {
    for (let i = 0; i < SUM_CASES.length; i++) {
      expect(got[i]!.length, `sum ${JSON.stringify(SUM_CASES[i])}`).toBe(cpuSums[i]!.length);
      expect(normDiff(got[i]!, cpuSums[i]!), `sum ${JSON.stringify(SUM_CASES[i])}`).toBeLessThan(1e-5);
    }
  };

  it('forward and both gradients, every case, without leaking tensor data', async () => {
    await selectBackend({ force: 'cpu' });
    cpu = convCases();
    cpuSums = sumCases();
    const info = await selectBackend({ force: 'wasm', kernels: 'vmm' });
    const blas = loadBlas() !== undefined;
    expect(info.blasThreads !== undefined).toBe(blas);
    // The native filter gradient is registered exactly when the module loaded.
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined).toBe(blas);
    const backend = tf.backend() as unknown as { numDataIds(): number };
    convCases(); // warm-up (first use allocates)
    const ids0 = backend.numDataIds();
    const wasm = convCases();
    expect(backend.numDataIds()).toBe(ids0);
    expectClose(wasm, cpu);
    expectSums(sumCases());
    expect(backend.numDataIds()).toBe(ids0);
  }, 120_000);

  it('the pure-wasm path (VMM_BLAS=0) matches cpu too', () => {
    const r = spawnSync(process.execPath, [resolve(__dirname, '../../bin/run-ts.mjs'), resolve(__dirname, 'fixtures/conv_products.ts'), 'wasm'], {
      env: { ...process.env, VMM_BLAS: '0', VMM_KERNELS: 'vmm' },
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    expect(r.status, r.stderr.slice(0, 500)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { info: BackendInfo; nativeFilterGrad: boolean; results: number[][][]; sums: number[][] };
    expect(out.info.name).toBe('wasm');
    expect(out.info.blasThreads).toBeUndefined();
    expect(out.nativeFilterGrad).toBe(false);
    expectClose(out.results, cpu);
    expectSums(out.sums);
  }, 120_000);
});
