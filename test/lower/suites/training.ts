/**
 * Training checks shared by the backend tests (test/lower/pipeline.test.ts on every backend,
 * test/lower/training.test.ts on wasm, both with vmm's own kernels) and
 * test/runtime/generic_path.test.ts (cpu without them, the path native TensorFlow takes). Each
 * function registers one test inside the caller's describe, on the backend the caller selected.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { IrProgram } from '../../../src/ir/types.ts';
import { Trainer } from '../../../src/runtime/trainer.ts';
import { validate } from '../../../src/jobs/train_loop.ts';
import { trainStream, validationBatches } from '../../../src/data/source.ts';
import type { RunConfig } from '../../../src/jobs/run_dir.ts';
import { fakeBatch, irOf, irOfFile, withEstimator } from '../helpers.ts';

export const MODELS = join(__dirname, '..', '..', '..', 'models');

/** A run configuration for `ir` (`steps` steps of `batch` examples), as `vmm train` writes it. */
export function configOf(ir: IrProgram, steps: number, batch: number): RunConfig {
  return {
    version: 1,
    modelPath: 'x.vmm',
    source: '',
    train: { ...ir.train, steps, batch },
    data: { dataset: ir.train.dataset, seed: 1, classes: 2, shots: 2, distractors: 0 },
    seed: 1,
    checkpointEvery: 1000,
    validEvery: 0,
    validSize: 16,
    createdAt: '',
  };
}

/** A small model with the structure of the MNIST one: address, read, continuous latent, derived guide. */
export const TINY_Z = `
model tiny_z
const D = 6
size M
data x : binary[D]
memory mem : binary[M, D]
net h = mlp(D, 5, 4)
net g = linear(D, 4)
net prior = linear(4, 4)
net dec = mlp(6, 8, D)
discrete address a ~ Categorical(mem)
let r = g(mem[a])
latent z ~ Normal(prior(r))
observe x ~ Bernoulli(logits: dec(concat(z, r)))
`;

/** Registers the check that training steps leave the tensor count unchanged after a warm-up. */
export function tensorHygieneCheck(backend: string): void {
  it('tensor count is constant across 100 training steps after warm-up', async () => {
    // The pure-JS cpu backend (and webgpu on lavapipe, a software GPU) is too slow for 100 steps of
    // the MNIST model: a small one with the same structure stands in there.
    const ir = backend === 'cpu' || backend === 'webgpu' ? withEstimator(irOf(TINY_Z), 'vimco', 3) : withEstimator(irOfFile(join(MODELS, 'vma_mnist.vmm')), 'vimco', 4);
    const trainer = new Trainer(ir, 1);
    const batch = fakeBatch(ir, 4, { M: 4 });
    // The asynchronous step: the form every backend runs (webgpu has no other).
    for (let i = 0; i < 3; i++) await trainer.stepAsync(batch);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) await trainer.stepAsync(batch);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
  });
}

/** Registers the check that the Gaussian mixture learns (its held-out bound improves by > 1 nat). */
export function learnsCheck(): void {
  it('the Gaussian mixture learns: held-out bound improves by more than 1 nat in 150 steps', async () => {
    const ir0 = irOfFile(join(MODELS, 'gmm.vmm'));
    const config = configOf(ir0, 150, 64);
    const ir = { ...ir0, train: config.train };
    const trainer = new Trainer(ir, 1);
    const stream = trainStream(ir, config.data);
    const valid = validationBatches(ir, config.data, 256, 64);
    const before = await validate(trainer, valid, 5);
    for (let i = 0; i < 150; i++) await trainer.stepAsync(stream.next(64));
    const after = await validate(trainer, valid, 5);
    expect(after - before).toBeGreaterThan(1);
    trainer.dispose();
  });
}
