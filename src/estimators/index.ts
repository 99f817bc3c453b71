/**
 * Gradient estimators for the K-sample objectives, one module each, behind the `Estimator`
 * interface of ./types.ts (read its protocol first). `makeEstimator(settings)` builds the one a
 * program's `train` block asks for.
 */

export { makeEstimator, estimatorSpec, estimatorSpecs, estimatorKinds, estimatorMisfits, estimatorProblem, estimatorSettings, registerEstimator, argValue } from './registry.ts';
export type { EstimatorSpec, Misfit, ArgSpec, HandlerName, LatentNote, PlanText } from './registry.ts';
export { RwsEstimator } from './rws.ts';
export type { DiscreteMode, EnumeratedTerms, Estimator, EstimatorResult, EstimatorState, EstimatorTerms, SampledTerms } from './types.ts';
export { stopGradient } from '../kernels/stop_gradient.ts';
export { Rng } from '../random/rng.ts';
export { logMeanExp } from './common.ts';
export { vimcoSignals, vimcoSignalsReference, VimcoEstimator } from './vimco.ts';
export type { VimcoBaseline } from './vimco.ts';
export { ReinforceEstimator } from './reinforce.ts';
export type { ReinforceBaseline, ReinforceOptions } from './reinforce.ts';
export { IwaeEstimator, iwaeObjective } from './iwae.ts';
export { EnumerateEstimator } from './enumerate.ts';
export { SoftEstimator } from './soft.ts';
export { RelaxedEstimator } from './relaxed.ts';
