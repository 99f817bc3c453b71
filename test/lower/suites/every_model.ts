/**
 * Every model in models/ compiles to a trainer for every estimator that applies to it and runs
 * two training steps with a finite bound, on the backend the caller's describe selected
 * (test/lower/pipeline_models_cpu.test.ts, test/lower/pipeline_models_wasm.test.ts).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { BackendName } from '../../estimators/backends.ts';
import { fakeBatch, irOfFile, withEstimator } from '../helpers.ts';
import type { EstimatorKind } from '../../../src/ir/types.ts';
import { estimatorKinds, estimatorProblem, estimatorSpec } from '../../../src/estimators/registry.ts';
import { truncationProblem } from '../../../src/check/train.ts';
import { Trainer } from '../../../src/runtime/trainer.ts';
import { MODELS } from './training.ts';

/** The smallest k an estimator takes (vimco and rloo need 2: their baselines are the other samples). */
const fewestSamples = (kind: EstimatorKind): number => estimatorSpec(kind)?.args.find((a) => a.kind === 'count')?.min ?? 1;

export function everyModelTrains(backend: BackendName): void {
  const files = readdirSync(MODELS).filter((f) => f.endsWith('.vmm'));
  for (const file of files) {
    it(`${file}: each applicable estimator runs two steps`, () => {
      const base = irOfFile(join(MODELS, file));
      // The pure-JS cpu backend is ~40x slower than wasm: there the convolutional Omniglot models
      // run one step of their own estimator only.
      const conv = base.nets.some((n) => n.layers.some((l) => l.kind === 'conv2d'));
      const slow = backend === 'cpu' && conv;
      // The paper-size architecture (vma_omniglot_paper.vmm, 1.6M parameters: about a minute a
      // step on cpu) runs on wasm only, with its own estimator (every estimator was 48 of the
      // file's 75 s): its nets' ops are the ones the small conv models run with every estimator.
      const paperSize = base.nets.reduce((n, net) => n + net.paramCount, 0) > 1_000_000;
      if (slow && paperSize) return;
      const kinds: EstimatorKind[] = slow || paperSize ? [base.train.estimator.kind] : estimatorKinds();
      let ran = 0;
      for (const kind of kinds) {
        const ir = withEstimator(base, kind, fewestSamples(kind));
        if (slow) ir.train.batch = 1;
        // What the checker refuses for this estimator (VMM3016: a truncated proposal with one that draws no address).
        if (estimatorProblem(ir) || truncationProblem(ir)) continue;
        // Discrete latents (a Bernoulli observation is `discrete` too but needs no estimator).
        const hasDiscrete = ir.model.some((s) => s.stmt === 'site' && s.discrete && s.role !== 'observe');
        if (kind === 'iwae' && hasDiscrete) continue;
        const trainer = new Trainer(ir, 3);
        const batch = fakeBatch(ir, slow ? 1 : 2, { M: 3 });
        for (let i = 0; i < (slow ? 1 : 2); i++) {
          const m = trainer.step(batch);
          expect(Number.isFinite(m.bound), `${file} ${kind} [${backend}] bound ${m.bound}`).toBe(true);
        }
        trainer.dispose();
        ran++;
      }
      expect(ran).toBeGreaterThan(0);
    });
  }
}
