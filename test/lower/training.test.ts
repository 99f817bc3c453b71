/**
 * Training behaviour: a small model learns (its held-out bound improves by a clear margin), and an
 * interrupted run resumed from its checkpoint ends with exactly the weights of an uninterrupted one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backend.ts';
import { fakeBatch, irOf, irOfFile } from './helpers.ts';
import { configOf, learnsCheck, MODELS } from './suites/training.ts';
import { InputError } from '../../src/diagnostics/errors.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { trainLoop } from '../../src/jobs/train_loop.ts';
import { RunDir } from '../../src/jobs/run_dir.ts';
import { loadCheckpoint } from '../../src/runtime/checkpoint.ts';
import { CompiledModel } from '../../src/lower/compile.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
});

describe('training', () => {
  learnsCheck();

  it('a loss that becomes NaN or inf stops the run with a clear message and keeps the last good checkpoint', async () => {
    const ir0 = irOfFile(join(MODELS, 'gmm.vmm'));
    const config = { ...configOf(ir0, 50, 16), checkpointEvery: 1 };
    // A learning rate of 1e30 sends the mixture means to ~1e30 after one step: the next loss is not finite.
    config.train = { ...config.train, estimator: { ...config.train.estimator, kind: 'vimco' as const, k: 2 }, optimizer: { kind: 'sgd' as const, lr: 1e30 } };
    const ir = { ...ir0, train: config.train };
    const dir = RunDir.create(join(tmp, 'nan'), config);
    await expect(trainLoop(dir, config, ir, false, { progress: false, log: () => {} })).rejects.toThrow(/became (NaN|-?Infinity).*last good checkpoint/s);
    const meta = loadCheckpoint(dir.checkpointPath, new CompiledModel(ir, 1).variables) as { trainer: { step: number } };
    expect(meta.trainer.step).toBeGreaterThanOrEqual(1);
    const bad = dir.readMetrics().find((m) => m.kind === 'error') as { step: number };
    expect(meta.trainer.step).toBe(bad.step - 1);
  });

  it('resume is exact: 3 + 3 steps give bitwise the weights of 6 steps', async () => {
    const ir0 = irOfFile(join(MODELS, 'vma_mnist.vmm'));
    const config = configOf(ir0, 6, 4);
    const ir = { ...ir0, train: config.train };
    const quiet = { progress: false, log: () => {} };
    const straight = RunDir.create(join(tmp, 'straight'), config);
    await trainLoop(straight, config, ir, false, quiet);
    const split = RunDir.create(join(tmp, 'split'), config);
    await trainLoop(split, config, ir, false, { ...quiet, maxStepsThisRun: 3 });
    await trainLoop(split, config, ir, true, quiet);
    const a = new CompiledModel(ir, 99);
    const b = new CompiledModel(ir, 98);
    loadCheckpoint(straight.finalPath, a.variables);
    loadCheckpoint(split.finalPath, b.variables);
    for (const [name, v] of a.variables) {
      const x = v.dataSync();
      const y = b.variables.get(name)!.dataSync();
      expect(Array.from(y), name).toEqual(Array.from(x));
    }
    a.dispose();
    b.dispose();
  });
});

describe('inputs of a batch', () => {
  it('an unknown or missing input name is a user error (InputError) that lists the inputs', () => {
    const ir = irOf('model two\ndata x : binary[4]\nnet f = linear(4, 4)\nparam b : real[4] = zeros\nlatent z : real[4] ~ Normal(b, 1)\nobserve x ~ Bernoulli(logits: f(z))\n');
    const t = new Trainer(ir, 1);
    const good = fakeBatch(ir, 2);
    const renamed = { inputs: good.inputs.map((i) => ({ ...i, name: 'y' })) };
    expect(() => t.step(renamed)).toThrow(InputError);
    expect(() => t.step(renamed)).toThrow(/has no input 'y'; its inputs are 'x'/);
    expect(() => t.step({ inputs: [] })).toThrow(/lacks the input\(s\) 'x'/);
    expect(Number.isFinite(t.step(good).bound)).toBe(true);
    t.dispose();
  });
});
