/**
 * The lowering end to end: .vmm source -> IR -> tfjs trainer, on every backend available here.
 *
 * - every model in models/ compiles to a trainer for every estimator that applies to it and runs
 *   training steps (test/lower/pipeline_models_cpu.test.ts and _wasm.test.ts, one file per backend
 *   so that the two halves run at once: suites/every_model.ts);
 * - on a model small enough to enumerate, the mean of many VIMCO / REINFORCE gradient draws
 *   matches the exact gradient of the same objective (computed by enumerating all K-tuples of
 *   addresses) within 4 standard errors, and the K-sample bound is below the exact log p(x) and
 *   rises with K;
 * - enumeration gives the exact log-likelihood;
 * - cpu and wasm agree;
 * - no tensor leaks across training steps.
 * The exact-gradient and tensor-hygiene checks are shared with test/runtime/generic_path.test.ts
 * (test/lower/suites/).
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { describeBackends } from '../estimators/backends.ts';
import { irOfFile, fakeBatch, withEstimator } from './helpers.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { Rng } from '../../src/random/rng.ts';
import { exactGradientChecks } from './suites/exact_gradients.ts';
import { MODELS, tensorHygieneCheck } from './suites/training.ts';

describeBackends('estimators through the compiled model match exact gradients', () => {
  exactGradientChecks();
});

describe('backends agree', () => {
  it('cpu and wasm give the same objective for the same weights and seed', async () => {
    const ir = withEstimator(irOfFile(join(MODELS, 'bench_vma.vmm')), 'vimco', 4);
    const batch = fakeBatch(ir, 4, { M: 5 }, 3);
    const values: number[][] = [];
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      await tf.ready();
      const model = new CompiledModel(ir, 17);
      const est = makeEstimator(ir.train.estimator);
      const v = tf.tidy(() =>
        Array.from(estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(4) }).bound.dataSync()),
      );
      values.push(v);
      model.dispose();
    }
    for (let i = 0; i < values[0]!.length; i++) expect(values[1]![i]!).toBeCloseTo(values[0]![i]!, 1);
    const rel = Math.max(...values[0]!.map((v, i) => Math.abs(v - values[1]![i]!) / Math.abs(v)));
    expect(rel).toBeLessThan(1e-4);
  });
});

describeBackends('tensor hygiene', (backend) => {
  tensorHygieneCheck(backend);
});
