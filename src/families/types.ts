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

/** Where a family's values live: a constraint on reals, or a discrete set. */
export type Support = Constraint | 'binary' | 'category';

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
  /**
   * How the checker types a call. 'elementwise': every parameter is real, the parameters broadcast
   * (equal shapes or scalars) and the values have their shape. 'builtin': Categorical, Bernoulli and
   * Normal, whose several written forms (`Categorical(mem)`, `Normal(E)` with mean and scale halves,
   * `Bernoulli(probs: p)`) are checked by src/check/dists.ts.
   */
  typing: 'elementwise' | 'builtin';
  /** How the family is written, for diagnostics and completion. */
  usage: string;
  /** Where the formulas come from. */
  reference?: string;
  /** Binds parameters (in `params` order, already broadcast) to a distribution. */
  create(params: tf.Tensor[]): FamilyDist;
  /** Closed-form KL(p || q) between two members, summed over the event axis. */
  kl?(p: tf.Tensor[], q: tf.Tensor[]): tf.Tensor;
}
