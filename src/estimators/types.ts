/**
 * The estimator interface: how the lowering hands per-sample terms to a gradient estimator, and
 * what it gets back.
 *
 * ## Protocol (what the lowering does each training step)
 *
 * 1. Build the estimator once: `const est = makeEstimator(settings)` (src/estimators/index.ts),
 *    and its state once: `let state = est.initState()` (keep it in the trainer state).
 * 2. Look at `est.discrete` to decide how to evaluate discrete guide sites (addresses):
 *    - `'none'`    (iwae): there must be none; every latent is reparameterized.
 *    - `'score'`   (vimco, reinforce): SAMPLE each discrete site K times from the guide (no gradient
 *                  through the sample) and collect `logQDiscrete`, the sum of their guide log-probs.
 *    - `'enumerate'` (enumerate): evaluate the model once per value of the (single) address.
 *    - `'soft'`    (soft): replace each read by its expectation under q(a|x) (soft attention).
 *    - `'relaxed'` (relaxed): draw Gumbel-softmax relaxed one-hots at `est.temperature` and score
 *                  them with ExpConcrete densities (src/families/distributions.ts, RelaxedCategorical)
 *                  in both model and guide.
 *    If `est.needsBaselineNet` (reinforce with 'nvil'), also evaluate a learned input-dependent
 *    baseline net b(x) -> [B] and pass it as `baseline`.
 * 3. Inside `tf.tidy` and the optimizer's gradient function: `const r = est.estimate(terms, state)`,
 *    then MAXIMIZE `r.surrogate - (r.extraLoss ?? 0)` (i.e. minimize `-(surrogate) + extraLoss`)
 *    w.r.t. all trainable variables. Report `r.bound` (per example) as the training objective.
 * 4. `state = r.state` (state in, state out: no estimator keeps anything between calls).
 *
 * ## Shapes and meaning of the terms (K samples, B examples)
 *
 * - `logWeights [K, B]`: `l_k = log p(x, latents_k) - log q(latents_k | x)` for the k-th joint
 *   sample of ALL latents (discrete and continuous). Differentiable through reparameterized latents
 *   and through every net parameter (model and guide), including the `- log q(a_k | x)` of the
 *   discrete sites: the score-function estimators rely on that dependence (it produces the
 *   `- ŵ_k ∇ log q(a_k)` part of VIMCO's signal, background.md §3).
 * - `logQDiscrete [K, B]`: `sum over non-reparameterizable guide sites of log q(site_k | ...)`,
 *   differentiable w.r.t. guide parameters (the sampled values themselves carry no gradient).
 * - `baseline [B]`: output of the NVIL baseline net b(x). Only the estimator's `extraLoss` trains it.
 * - `logJoint [E, K, B]` / `logQAddress [E, B]` for enumeration: see src/estimators/enumerate.ts.
 *
 * Every estimator validates shapes and names itself in errors.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { EstimatorKind } from '../ir/types.ts';

/** Terms from a model evaluated with K joint samples of all latents per example. */
export interface SampledTerms {
  kind: 'sampled';
  /** `[K, B]`: `log p(x, latents_k) - log q(latents_k | x)`. */
  logWeights: tf.Tensor;
  /** `[K, B]`: sum of `log q` over the sampled discrete guide sites. Required by vimco / reinforce; rejected by iwae / soft / relaxed. */
  logQDiscrete?: tf.Tensor;
  /** `[B]`: learned baseline b(x) (reinforce with 'nvil' only). */
  baseline?: tf.Tensor;
}

/** Terms from a model evaluated once per value of one enumerated address (src/estimators/enumerate.ts). */
export interface EnumeratedTerms {
  kind: 'enumerated';
  /** `[E, K, B]`: `log p(a=i) + log p(x, z_ik | a=i) - log q(z_ik | x, a=i)` (no `log q(a=i|x)` term!). */
  logJoint: tf.Tensor;
  /** `[E, B]`: `log q(a=i | x)`, differentiable w.r.t. the address guide's parameters. */
  logQAddress: tf.Tensor;
}

export type EstimatorTerms = SampledTerms | EnumeratedTerms;

/** How the lowering must evaluate discrete guide sites for this estimator (see the protocol above). */
export type DiscreteMode = 'none' | 'score' | 'enumerate' | 'soft' | 'relaxed' | 'wake';

/**
 * Estimator state, threaded through training steps. Plain numbers (serializable, no tensors to
 * keep alive or dispose).
 */
export interface EstimatorState {
  /** Number of `estimate` calls so far. */
  steps: number;
  /** REINFORCE running baseline c: exponential moving average of the batch mean of `L - b(x)`; null before the first step. */
  runningMean: number | null;
}

export interface EstimatorResult {
  /** Scalar to MAXIMIZE: the batch mean of the per-example surrogate. Its gradient is the estimator; its value is not meaningful. */
  surrogate: tf.Scalar;
  /** `[B]`: the objective's value per example (a lower bound on log p(x) for the hard variants; see each estimator). No gradient is needed from it. */
  bound: tf.Tensor;
  /** Scalar to MINIMIZE in addition (e.g. the NVIL baseline regression). Touches only the parameters it is meant to train. */
  extraLoss?: tf.Scalar;
  /** State for the next call. */
  state: EstimatorState;
  /**
   * State that depends on a number the device computed, on a backend that cannot read it
   * synchronously (src/kernels/readback.ts): `state` is provisional until the caller reads `value`
   * (asynchronously, with the step's metrics: the trainer's `stepAsync`) and takes `state(v)`.
   */
  settle?: { value: tf.Scalar; state: (v: number) => EstimatorState };
}

export interface Estimator {
  readonly kind: EstimatorKind;
  /** Samples per example; `estimate` checks that the terms carry exactly K samples. */
  readonly k: number;
  readonly discrete: DiscreteMode;
  /** True when the lowering must supply `baseline` (reinforce with 'nvil'). */
  readonly needsBaselineNet: boolean;
  /** Gumbel-softmax temperature (relaxed only). */
  readonly temperature?: number;
  initState(): EstimatorState;
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult;
}
