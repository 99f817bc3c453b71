/**
 * The generic path: what vmm runs on native TensorFlow (tfjs-node-gpu, tfjs-node), where none of
 * its own kernels exists (src/kernels/registry.ts). Native TensorFlow cannot be installed here, so the
 * switch (`selectBackend({ kernels: 'generic' })`, `VMM_KERNELS=generic`) makes the cpu backend
 * take the same branches, and the checks that matter run through it: the estimators against exact
 * gradients, tensor hygiene, a model that learns (the suites of test/lower/suites/, shared with
 * the backend tests). Then: the switch really changes the path (which kernels are registered and
 * which run, on cpu and wasm), both paths compute the same thing, and the environment variable
 * reaches a fresh process.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError, currentBackend, selectBackend, type BackendInfo } from '../../src/runtime/backend.ts';
import { blasInUse, nativeAdamAvailable } from '../../src/runtime/blas.ts';
import { installedKernels, kernelMode } from '../../src/kernels/registry.ts';
import { DENSE, DENSE_RELU } from '../../src/lower/nets.ts';
import { tfjsVersionProblem } from '../../src/runtime/tfjs_version.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { Rng } from '../../src/random/rng.ts';
import { fakeBatch, irOf, withEstimator } from '../lower/helpers.ts';
import { exactGradientChecks, sharedEntriesCheck } from '../lower/suites/exact_gradients.ts';
import { learnsCheck, tensorHygieneCheck, TINY_Z } from '../lower/suites/training.ts';
import { maxRelDiff } from './backends.ts';
import { productCases } from './fixtures/product_cases.ts';

/** A model with linear and relu layers (the dense kernels), an address read and a latent; Adam. */
const IR = withEstimator(irOf(TINY_Z), 'vimco', 2);
const BATCH = fakeBatch(IR, 3, { M: 4 }, 5);

/** The names of the kernels one training step runs. */
async function stepKernels(): Promise<string[]> {
  const trainer = new Trainer(IR, 1);
  trainer.step(BATCH); // not profiled: kernels are registered on first use
  const p = await tf.profile(() => {
    trainer.step(BATCH);
  });
  trainer.dispose();
  return p.kernelNames;
}

const isOwn = (name: string) => name.startsWith('Vmm');

describe('the generic path on cpu (kernels: generic), the code native TensorFlow runs', () => {
  const lines: string[] = [];
  let info: BackendInfo;
  beforeAll(async () => {
    info = await selectBackend({ force: 'cpu', kernels: 'generic', log: (m) => lines.push(m) });
  });

  it('the backend line says so', () => {
    expect(info).toMatchObject({ name: 'cpu', kernels: 'generic' });
    expect(lines).toEqual(['backend: cpu (1 thread, generic kernels (VMM_KERNELS=generic)); forced']);
    expect(kernelMode()).toBe('generic');
  });

  it("a training step registers and runs none of vmm's kernels", async () => {
    const names = await stepKernels();
    expect(names.filter(isOwn)).toEqual([]);
    expect(names).toContain('BatchMatMul'); // the linear layers as tfjs ops
    expect(installedKernels()).toEqual([]);
    expect(tf.getKernel(DENSE, 'cpu')).toBeUndefined();
  });

  // One setting of each estimator family: what differs on this path is the model's kernels.
  exactGradientChecks(['vimco geometric', 'reinforce, running baseline', 'rws (wake-phase expectation)']);
  sharedEntriesCheck();
  tensorHygieneCheck('cpu');
  learnsCheck();
});

describe('the switch', () => {
  afterAll(async () => {
    await selectBackend({ force: 'cpu', kernels: 'generic' });
  });

  it("cpu: the vmm mode runs vmm's dense kernels; switching back unregisters them", async () => {
    // From the generic mode (nothing of vmm's installed, on any backend), whatever ran before.
    await selectBackend({ force: 'cpu', kernels: 'generic' });
    const lines: string[] = [];
    const vmm = await selectBackend({ force: 'cpu', kernels: 'vmm', log: (m) => lines.push(m) });
    expect(vmm.kernels).toBe('vmm');
    expect(lines).toEqual(['backend: cpu (1 thread); forced']);
    const names = await stepKernels();
    expect(names).toContain(DENSE);
    expect(names).toContain(DENSE_RELU);
    expect(names).toContain('VmmAdamAll'); // the one-pass Adam (src/runtime/adam.ts)
    // The dense kernels, the one-pass Adam and the fused Bernoulli log-density (src/families/fused.ts), all on cpu.
    expect(installedKernels()).toEqual(expect.arrayContaining([
      [DENSE, 'cpu', 'dense'],
      [DENSE_RELU, 'cpu', 'dense'],
      ['VmmAdamAll', 'cpu', 'adam'],
      ['VmmBernoulliLogProb', 'cpu', 'fused-bernoulli'],
    ]));
    expect(installedKernels().filter(([, backend]) => backend !== 'cpu')).toEqual([]);
    await selectBackend({ force: 'cpu', kernels: 'generic' });
    expect(currentBackend()?.kernels).toBe('generic');
    expect(tf.getKernel(DENSE, 'cpu')).toBeUndefined();
    expect(tf.getKernel(DENSE_RELU, 'cpu')).toBeUndefined();
    expect(tf.getKernel('VmmAdamAll', 'cpu')).toBeUndefined();
    expect((await stepKernels()).filter(isOwn)).toEqual([]);
  });

  it("wasm: the vmm mode replaces wasm's products (and runs Adam natively with OpenBLAS); generic restores wasm's own", async () => {
    expect(tfjsVersionProblem()).toBeUndefined(); // else the patches are off in both modes
    await selectBackend({ force: 'wasm', kernels: 'generic' });
    const own = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    expect(nativeAdamAvailable()).toBe(false);
    expect(blasInUse()).toBeUndefined();

    const vmm = await selectBackend({ force: 'wasm', kernels: 'vmm' });
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).not.toBe(own);
    const blas = blasInUse() !== undefined;
    expect(vmm.blasThreads !== undefined).toBe(blas);
    expect(nativeAdamAvailable()).toBe(blas);
    const names = await stepKernels();
    expect(names).toContain(DENSE);
    if (blas) expect(names).toContain('VmmAdamAll'); // every variable's update in one call
    expect(installedKernels().some(([name, backend]) => name === 'BatchMatMul' && backend === 'wasm')).toBe(true);

    const generic = await selectBackend({ force: 'wasm', kernels: 'generic' });
    expect(generic).toMatchObject({ name: 'wasm', kernels: 'generic' });
    expect(generic.blasThreads).toBeUndefined();
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(own);
    for (const k of ['VmmAdamAll', DENSE, DENSE_RELU]) expect(tf.getKernel(k, 'wasm'), k).toBeUndefined();
    expect(installedKernels()).toEqual([]);
    expect(nativeAdamAvailable()).toBe(false);
    expect((await stepKernels()).filter(isOwn)).toEqual([]);
  });

  it('both paths give the same bound and gradients for the same weights and seed', async () => {
    const run = () => {
      const model = new CompiledModel(IR, 3);
      const est = makeEstimator(IR.train.estimator);
      const { value, grads } = tf.variableGrads(
        () => estimateObjective({ ir: IR, inputs: model.inputs(BATCH), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(2) }).surrogate,
        model.trainableVariables(),
      );
      const out = [value.dataSync()[0]!, ...Object.keys(grads).sort().flatMap((k) => Array.from(grads[k]!.dataSync()))];
      tf.dispose([value, grads]);
      model.dispose();
      return out;
    };
    await selectBackend({ force: 'cpu', kernels: 'vmm' });
    const a = run();
    await selectBackend({ force: 'cpu', kernels: 'generic' });
    const b = run();
    expect(a.length).toBeGreaterThan(50);
    expect(a.some((v) => v !== 0)).toBe(true);
    expect(maxRelDiff(b, a)).toBeLessThan(1e-5);
  });

  it('rejects an unknown mode, as an option or in VMM_KERNELS, naming the accepted ones', async () => {
    await expect(selectBackend({ force: 'cpu', kernels: 'fast' })).rejects.toThrow(BackendError);
    await expect(selectBackend({ force: 'cpu', kernels: 'fast' })).rejects.toThrow('kernels=fast: expected one of vmm, generic');
    const before = process.env['VMM_KERNELS'];
    process.env['VMM_KERNELS'] = 'Generic';
    try {
      await expect(selectBackend({ force: 'cpu' })).rejects.toThrow('VMM_KERNELS=Generic: expected one of vmm, generic');
    } finally {
      if (before === undefined) delete process.env['VMM_KERNELS'];
      else process.env['VMM_KERNELS'] = before;
    }
    expect(kernelMode()).toBe('generic'); // unchanged by the refused calls
  });

  it('VMM_KERNELS=generic reaches a fresh process: wasm without its patches, products equal to cpu', async () => {
    await selectBackend({ force: 'cpu', kernels: 'generic' });
    const cpu = productCases();
    const { spawnSync } = await import('node:child_process');
    const { resolve } = await import('node:path');
    const r = spawnSync(process.execPath, [resolve(__dirname, '../../bin/run-ts.mjs'), resolve(__dirname, 'fixtures/matmul_products.ts'), 'wasm'], {
      env: { ...process.env, VMM_KERNELS: 'generic' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr.slice(0, 500)).toBe(0);
    const { info, results } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { info: BackendInfo; results: number[][] };
    expect(info).toMatchObject({ name: 'wasm', kernels: 'generic' });
    expect(info.blasThreads).toBeUndefined();
    for (let i = 0; i < cpu.length; i++) expect(maxRelDiff(results[i]!, cpu[i]!), `case ${i}`).toBeLessThan(1e-4);
  });
});
