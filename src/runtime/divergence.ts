/**
 * Why a training went wrong, told apart (issue #22): a loss that is NaN because the model's maths
 * is invalid (a log of a negative net output, a probability outside [0, 1], a division by zero)
 * names the first site whose distribution or value is not finite, instead of blaming the learning
 * rate; a bound that runs away to implausible values (a diverging neural memory) stops the run
 * instead of training on silently.
 */
import * as tf from '@tensorflow/tfjs-core';
import { familyName, type IrProgram } from '../ir/types.ts';
import type { InputBatch } from '../lower/compile.ts';
import { readHandlers } from '../lower/handlers.ts';
import { runTrace } from '../lower/trace.ts';
import type { BoundDist } from '../lower/sites.ts';
import { Rng } from '../random/rng.ts';
import type { Trainer } from './trainer.ts';

/** The parameters of a bound distribution by name. */
function distParams(d: BoundDist): [string, tf.Tensor][] {
  return d.params.map((p, i) => [d.spec.params[i]?.name ?? `parameter ${i + 1}`, p.t]);
}

/** 'NaN', 'Infinity' or '-Infinity' for the first non-finite entry of `t`, else undefined. */
function nonFinite(t: tf.Tensor): string | undefined {
  if (t.dtype !== 'float32') return undefined;
  const data = t.dataSync() as Float32Array;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return String(data[i]);
  return undefined;
}

/**
 * The first site (the guide's, then the model's, in source order) whose distribution's
 * parameters or value are not finite on `batch` with the trainer's current weights, described for
 * the user; undefined when the forward pass is finite (then the NaN came from the gradients or the
 * update: the learning rate is the likely cause).
 */
export function firstNonFiniteSite(trainer: Trainer, batch: InputBatch, seed: number): string | undefined {
  const ir: IrProgram = trainer.ir;
  const mode = trainer.estimator.discrete === 'soft' ? 'soft' : trainer.estimator.discrete === 'enumerate' ? 'enumerate' : 'sample';
  let found: string | undefined;
  try {
    tf.tidy(() => {
      const inputs = trainer.model.inputs(batch);
      const trace = runTrace(ir, inputs, trainer.model.applyNet, { k: 1, rng: new Rng(seed), handlers: readHandlers(mode) });
      const phases: [string, IrProgram['model'], Map<string, BoundDist>][] = [
        ['guide', ir.guide.stmts, trace.guideDists],
        ['model', ir.model, trace.modelDists],
      ];
      for (const [phase, stmts, dists] of phases) {
        for (const st of stmts) {
          if (st.stmt !== 'site') continue;
          const d = dists.get(st.name);
          for (const [param, t] of d ? distParams(d) : []) {
            const bad = nonFinite(t);
            if (bad) {
              found = `the ${param} of ${familyName(st.dist)} at ${phase === 'guide' ? "the guide's" : `the model's ${st.role}`} site '${st.name}' (${bad})`;
              return;
            }
          }
          const v = trace.values.get(st.name);
          const bad = v && 't' in v ? nonFinite(v.t) : undefined;
          if (bad && phase === 'guide') {
            found = `the value drawn at the guide's site '${st.name}' (${bad})`;
            return;
          }
        }
      }
    });
  } catch {
    // The diagnosis is a courtesy: if it fails, the caller's general message stands.
    return undefined;
  }
  return found;
}

/**
 * Whether `bound` is beyond a plausible range for this run: below -10^4 times the size of the
 * first bound (plus one), i.e. four orders of magnitude worse than an untrained model.
 */
export function implausibleBound(bound: number, firstBound: number): boolean {
  return bound < -1e4 * (Math.abs(firstBound) + 1);
}
