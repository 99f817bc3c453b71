/**
 * Gradient estimators for the K-sample objectives, one module each, behind the `Estimator`
 * interface of ./types.ts (read its protocol first). `makeEstimator(settings)` builds the one a
 * program's `train` block asks for.
 */
import type { EstimatorSettings } from '../ir/types.ts';
import { fail } from './common.ts';
import { EnumerateEstimator } from './enumerate.ts';
import { IwaeEstimator } from './iwae.ts';
import { ReinforceEstimator } from './reinforce.ts';
import { RelaxedEstimator } from './relaxed.ts';
import { SoftEstimator } from './soft.ts';
import type { Estimator } from './types.ts';
import { VimcoEstimator } from './vimco.ts';

export function makeEstimator(settings: EstimatorSettings): Estimator {
  switch (settings.kind) {
    case 'iwae':
      return new IwaeEstimator(settings.k);
    case 'vimco':
      return new VimcoEstimator(settings.k, settings.vimcoBaseline);
    case 'reinforce':
      return new ReinforceEstimator(settings.k, { baseline: settings.reinforceBaseline });
    case 'enumerate':
      return new EnumerateEstimator(settings.k);
    case 'soft':
      return new SoftEstimator(settings.k);
    case 'relaxed':
      return new RelaxedEstimator(settings.k, settings.temperature);
    default:
      return fail('makeEstimator', `unknown estimator kind '${String((settings as { kind: unknown }).kind)}'`);
  }
}

export type { DiscreteMode, EnumeratedTerms, Estimator, EstimatorResult, EstimatorState, EstimatorTerms, SampledTerms } from './types.ts';
export { stopGradient } from './stop_gradient.ts';
export { Rng } from './rng.ts';
export { logMeanExp } from './common.ts';
export { vimcoSignals, vimcoSignalsReference, VimcoEstimator } from './vimco.ts';
export type { VimcoBaseline } from './vimco.ts';
export { ReinforceEstimator } from './reinforce.ts';
export type { ReinforceBaseline, ReinforceOptions } from './reinforce.ts';
export { IwaeEstimator, iwaeObjective } from './iwae.ts';
export { EnumerateEstimator } from './enumerate.ts';
export { SoftEstimator } from './soft.ts';
export { RelaxedEstimator } from './relaxed.ts';
