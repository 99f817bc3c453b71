/**
 * The WebGPU backend (src/runtime/webgpu.ts): TensorFlow.js's webgpu backend on Dawn. Here and in
 * CI it runs on Mesa's software Vulkan GPU (lavapipe, `mesa-vulkan-drivers` >= 25, which .ci/run
 * installs); the same code runs on a real GPU. What must hold there: the backend line names the
 * adapter, the estimators match exact gradients, a step's gradients agree with cpu's, the tensor
 * count stays flat, reads are asynchronous (a synchronous step says what to use instead), and a
 * model trains through `vmm train` (checkpoint, validation, summaries: every read on the path).
 *
 * Without an adapter (no `webgpu` package, no Vulkan driver) the suite is skipped and says why;
 * `VMM_REQUIRE_WEBGPU=1` (set by .ci/run) turns that into a failure, so CI cannot pass silently.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatInfo, selectBackend } from '../../src/runtime/backend.ts';
import { loadWebGpu } from '../../src/runtime/webgpu.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { vimcoSignalsReference, vimcoSignals } from '../../src/estimators/vimco.ts';
import { Rng } from '../../src/random/rng.ts';
import { fakeBatch, irOf, withEstimator } from '../lower/helpers.ts';
import { exactGradientChecks, sharedEntriesCheck } from '../lower/suites/exact_gradients.ts';
import { learnsCheck, tensorHygieneCheck, TINY_Z } from '../lower/suites/training.ts';
import { maxRelDiff } from './backends.ts';
import { runCli } from '../cli/run_cli.ts';

const probe = await loadWebGpu();
const required = process.env['VMM_REQUIRE_WEBGPU'] === '1';
if (!probe.ok) {
  console.warn(`webgpu tests skipped: ${probe.why}`);
  if (required) it('a WebGPU adapter is required here (VMM_REQUIRE_WEBGPU=1)', () => expect.fail(`no WebGPU: ${probe.why}`));
}

/** Gradients of one training objective for fixed weights, noise and batch, on the active backend. */
async function stepGradients(seed: number): Promise<Map<string, Float32Array>> {
  const ir = withEstimator(irOf(TINY_Z), 'vimco', 3);
  const model = new CompiledModel(ir, seed);
  const est = makeEstimator(ir.train.estimator);
  const batch = fakeBatch(ir, 4, { M: 4 }, 7);
  const { value, grads } = tf.variableGrads(
    () => estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(3) }).surrogate,
    model.trainableVariables(),
  );
  // Gradients come keyed by tfjs's variable names; compare by the model's own.
  const ours = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  const out = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(grads)) out.set(ours.get(name)!, (await g.data()) as Float32Array);
  out.set('value', (await value.data()) as Float32Array);
  tf.dispose([value, grads]);
  model.dispose();
  return out;
}

describe.skipIf(!probe.ok)('webgpu', () => {
  const lines: string[] = [];
  beforeAll(async () => {
    await selectBackend({ force: 'webgpu', log: (m) => lines.push(m) });
  });

  it('the backend line names the adapter, and a software one as such', () => {
    expect(tf.getBackend()).toBe('webgpu');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: webgpu \(.+, (software|Vulkan|Metal|D3D12)\); forced$/);
    if (probe.adapter!.software) expect(lines[0]).toContain(', software)');
  });

  it('a synchronous step is refused with what to use instead; the asynchronous one runs', async () => {
    const ir = withEstimator(irOf(TINY_Z), 'vimco', 3);
    const trainer = new Trainer(ir, 1);
    const batch = fakeBatch(ir, 4, { M: 4 });
    expect(() => trainer.step(batch)).toThrow(/webgpu backend cannot do in Node; use the asynchronous form/);
    const m = await trainer.stepAsync(batch);
    expect(Number.isFinite(m.bound) && Number.isFinite(m.loss)).toBe(true);
    trainer.dispose();
  });

  it("VIMCO's learning signals, computed on the device, equal the float64 reference", async () => {
    const l = [
      [-3.1, 0.5, -20],
      [-2.9, 0.7, -0.2],
      [-3.5, -9, -1.1],
      [-2.0, 0.1, -30],
    ];
    for (const baseline of ['geometric', 'arithmetic'] as const) {
      const t = vimcoSignals(tf.tensor2d(l), baseline);
      const got = Array.from(await t.data());
      t.dispose();
      const want = vimcoSignalsReference(l, baseline).flat();
      expect(maxRelDiff(got, want), baseline).toBeLessThan(1e-4);
    }
  });

  it("a step's gradients agree with the cpu backend's for the same weights, noise and batch", async () => {
    const gpu = await stepGradients(11);
    await selectBackend({ force: 'cpu' });
    const cpu = await stepGradients(11);
    await selectBackend({ force: 'webgpu' });
    expect([...gpu.keys()].sort()).toEqual([...cpu.keys()].sort());
    let worst = 0;
    for (const [name, g] of gpu) worst = Math.max(worst, maxRelDiff(g, cpu.get(name)!));
    expect(worst).toBeLessThan(1e-3);
  });

  exactGradientChecks(['vimco geometric', 'vimco arithmetic', 'reinforce, running baseline', 'rws (wake-phase expectation)']);
  sharedEntriesCheck();
  tensorHygieneCheck('webgpu');
  learnsCheck();
});

describe.skipIf(!probe.ok)('vmm train --backend webgpu', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vmm-webgpu-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('trains models/vma_mnist.vmm with checkpoint, validation and summaries, and the run opens again', async () => {
    const out = join(tmp, 'run');
    const r = await runCli('train', 'models/vma_mnist.vmm', '--backend', 'webgpu', '--steps', '4', '--batch', '8', '--valid-every', '2', '--checkpoint-every', '2', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(tf.getBackend()).toBe('webgpu');
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const valid = metrics.filter((m) => m['kind'] === 'valid');
    expect(valid.length).toBeGreaterThanOrEqual(2);
    for (const v of valid) expect(Number.isFinite(v['bound'])).toBe(true);
    const resumed = await runCli('train', '--resume', out, '--backend', 'webgpu', '--steps', '6');
    expect(resumed.code, resumed.err).toBe(0);
  });
});

// The backend line of an adapter, as a GPU machine shows it (no GPU here: the format only).
describe('the webgpu backend line', () => {
  it('names a hardware adapter with the native API', () => {
    const line = formatInfo({
      name: 'webgpu',
      simd: false,
      threads: 1,
      kernels: 'generic',
      reason: 'a WebGPU adapter found',
      adapter: { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3', software: false },
    });
    expect(line).toBe(`backend: webgpu (NVIDIA H100 80GB HBM3, ${process.platform === 'darwin' ? 'Metal' : process.platform === 'win32' ? 'D3D12' : 'Vulkan'}); a WebGPU adapter found`);
  });
});
