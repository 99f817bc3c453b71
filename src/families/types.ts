/**
 * A distribution family as data plus tensor math: the one description the checker (parameters,
 * support, discreteness), the IR printer, the lowering (log-density, sampling) and the editor
 * tooling read. One file per family, one line in ./registry.ts (docs/extending.md).
 *
 * Shapes follow ./distributions.ts: parameters are broadcast to `[...batch, D]`, the LAST axis is
 * the event axis, and `logProb` sums over it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';

/** The set a parameter or a value lives in. */
export type Constraint = 'real' | 'positive' | 'unit';

/**
 * Where a family's values live: a constraint on reals, or a discrete set ('binary': 0/1;
 * 'category': an index into the last axis of the parameters; 'count': 0, 1, 2, ...).
 */
export type Support = Constraint | 'binary' | 'category' | 'count';

/**
 * How the checker types a call (src/check/dists.ts), by the forms a family is written in:
 * - 'elementwise': every parameter real, positional or named after `params`; the parameters
 *   broadcast (equal shapes or scalars) and the values have their shape (`Laplace(loc, scale)`).
 * - 'halves': 'elementwise', or `F(E)` with one argument whose last axis holds the two parameters
 *   as halves, the second mapped to a positive one by `softplus + 1e-4` (`Normal(E)`).
 * - 'logitsOrProbs': one parameter, always named: `logits: E`, or `probs: E` (probabilities in
 *   [0, 1], turned into logits) (`Bernoulli`).
 * - 'categories': values are categories: `F(logits: real[N])`, or uniform over `F(N)` categories or
 *   the entries of a memory or param, `F(mem)`, the form an address takes (`Categorical`).
 */
export type Typing = 'elementwise' | 'halves' | 'logitsOrProbs' | 'categories';

/**
 * The guide `vmm` derives for a latent of the family when a file gives none (src/check/derive.ts):
 * - 'gaussian': a Normal whose mean and scale halves come from one MLP of the data (real values);
 * - 'logits': the family itself, its `logits:` from one MLP of the data (one per coordinate, or one
 *   per category of an enumerable family);
 * - 'own': the family itself, one MLP per parameter mapped into the parameter's domain.
 */
export type DerivedGuide = 'gaussian' | 'logits' | 'own';

/**
 * A finite support the lowering can enumerate: values are the indices 0..n-1 of the last axis of the
 * family's one parameter, and the lowering keeps that parameter as the table of normalized
 * log-probabilities, reading log p(i) off it by index (one gather) and summing over it exactly.
 */
export interface Enumerable {
  /** The number of values, from the parameters' shapes (Categorical: the last axis of its logits). */
  size(paramShapes: readonly number[][]): number;
  /** The log-probability of every value, `[..., n]`: what the lowering keeps as the bound parameter. */
  table(params: tf.Tensor[]): tf.Tensor;
}

/** A continuous relaxation of a categorical draw (Gumbel-softmax), for the `relaxed` estimator. */
export interface Relaxation {
  /** A relaxed draw `y = log(relaxed one-hot)` at `temperature`, `[...sampleShape, ...batch, n]`, differentiable. */
  rsample(table: tf.Tensor, temperature: number, rng: Rng, sampleShape: number[]): tf.Tensor;
  /** The density of a relaxed draw `y` under the table of log-probabilities at `temperature`. */
  logProb(table: tf.Tensor, temperature: number, y: tf.Tensor): tf.Tensor;
  /**
   * The PyTorch emission: a Python class with static `rsample(table, temperature, g)` (g: the
   * Gumbel noise [..., n]), `noise_of(table, temperature, y)` (a noise that gives y, for replaying
   * a vmm trace) and `log_prob(table, temperature, y)`. Absent: `relaxed` is not exported.
   */
  torch?: string;
}

export interface ParamSpec {
  name: string;
  constraint: Constraint;
}

/** A family with its parameters bound (tensors broadcast against each other). */
export interface FamilyDist {
  /** Log density of `value`, summed over the last (event) axis. */
  logProb(value: tf.Tensor): tf.Tensor;
  /** A draw of shape `[...sampleShape, ...paramShape]` carrying no gradient. */
  sample(rng: Rng, sampleShape: number[]): tf.Tensor;
  /** Reparameterized draw (differentiable in the parameters); present iff the family is reparameterized. */
  rsample?(rng: Rng, sampleShape: number[]): tf.Tensor;
  /**
   * `rsample` with the log density of the draw, from the same noise, where that is cheaper than
   * scoring the draw again (Normal: the standardized value is the noise itself).
   */
  rsampleScored?(rng: Rng, sampleShape: number[]): { value: tf.Tensor; logProb: tf.Tensor };
  /** The mean (used to draw pictures). */
  mean(): tf.Tensor;
  /** Entropy summed over the event axis, where it has a closed form. */
  entropy?(): tf.Tensor;
}

export interface FamilySpec {
  name: string;
  /** Parameters in positional order; named arguments use these names. */
  params: ParamSpec[];
  support: Support;
  /** Values are discrete: a guide site of this family needs a score-function estimator or enumeration. */
  discrete: boolean;
  /** Continuous and drawn as a differentiable function of its parameters (`rsample`). */
  reparameterized: boolean;
  /** How the checker types a call (see `Typing`). */
  typing: Typing;
  /** The guide derived for a latent of this family (see `DerivedGuide`). */
  guide: DerivedGuide;
  /** Present when the support is finite and enumerable: `enumerate` sums over it, `soft` attends over it. */
  enumerable?: Enumerable;
  /** Present when draws can be relaxed to a differentiable surrogate (the `relaxed` estimator). */
  relaxation?: Relaxation;
  /** How the family is written, for diagnostics and completion. */
  usage: string;
  /** Where the formulas come from. */
  reference?: string;
  /**
   * Binds parameters (in `params` order, already broadcast) to a distribution; for an enumerable
   * family, its table of log-probabilities. Its `logProb` is the hot path of training: the fused
   * one-kernel densities of ./fused.ts are reached through it (Bernoulli, Normal).
   */
  create(params: tf.Tensor[]): FamilyDist;
  /** Closed-form KL(p || q) between two members, summed over the event axis. */
  kl?(p: tf.Tensor[], q: tf.Tensor[]): tf.Tensor;
  /**
   * The PyTorch emission (`vmm export pytorch`, src/export/torch/): a Python class of the
   * family's name deriving `rt.Family` (vmm_runtime.py), with `self.params` in `params` order:
   * `log_prob(x)` elementwise (the runtime sums the event axes), `sample(noise, shape)` or, when
   * reparameterized, `noise(noise, shape)`, `rsample(eps)` and `noise_of(x)` (the noise that
   * gives x, for replaying a vmm trace). Absent: a model using the family is not exported (VMM3040).
   */
  torch?: string;
}
