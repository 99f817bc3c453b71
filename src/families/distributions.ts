/**
 * Tensor-level distributions used by the lowering: Categorical, Bernoulli, Normal, and the
 * Gumbel-softmax / Concrete relaxation of a Categorical.
 *
 * Shapes. Every distribution has a *batch shape* (leading axes: samples, batch, ...) and an
 * *event shape*:
 * - `Normal` and `Bernoulli`: the event is the LAST axis of the (broadcast) parameters. `logProb`,
 *   `entropy` and `kl` sum over that axis and return the batch shape. A scalar site must carry a
 *   trailing axis of size 1. (Keeping one event axis is deliberate: sites in the IR have vector or
 *   image shapes that the lowering flattens to one trailing axis before building the distribution.)
 * - `Categorical`: the event is a single choice; `logits` are `[...batch, N]`, values are int32
 *   indices of shape `[...batch]`, and `logProb` returns `[...batch]`.
 * - `logProb(value)` broadcasts `value` against the parameters, so a value with extra leading
 *   sample axes (e.g. `[K, B, D]` against parameters `[B, D]`) gives `[K, B]`.
 *
 * Randomness. Every sampler takes an explicit `Rng` (src/random/rng.ts) and a `sampleShape`
 * that is PREPENDED: `sample(rng, [K])` on a `[B, D]` Normal gives `[K, B, D]`. Noise comes from
 * `Rng.uniforms` and `Rng.normals` (drawn on the host from the `Rng`'s own stream), so draws are
 * reproducible and identical on every backend (no backend `Multinomial` kernel is used: the
 * Categorical is sampled with the Gumbel-max trick).
 *
 * `sample` is non-differentiable (its parameters go through `stopGradient`); `Normal.rsample` is
 * the reparameterized draw `loc + scale * eps`; `Categorical.gumbelSoftmax` is the relaxed,
 * differentiable draw of Jang, Gu & Poole 2016 (arXiv:1611.01144) / Maddison, Mnih & Teh 2016
 * (arXiv:1611.00712), whose density is given by `RelaxedCategorical` (the ExpConcrete of
 * Maddison et al., i.e. the density of the LOG of the relaxed one-hot, which is the numerically
 * stable form).
 *
 * Numerics: Categorical log-probabilities via `logSoftmax`; Bernoulli via the softplus form
 * `log p(x) = x l - softplus(l)` (equal to `-(x softplus(-l) + (1-x) softplus(l))`, since
 * `softplus(-l) = softplus(l) - l`, with one softplus instead of two), which never forms
 * `sigmoid(l)` and is finite for any finite logit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random/rng.ts';
import { stopGradient, withoutGradient } from '../kernels/stop_gradient.ts';
import { bernoulliLogProbFused, normalLogProbFused } from './fused.ts';

const LOG_2PI = Math.log(2 * Math.PI);

/** Smallest / largest uniform kept for Gumbel noise: `-log(-log u)` stays finite for u in [U_MIN, U_MAX]. */
const U_MIN = 1e-20;
const U_MAX = 1 - 2 ** -24; // the largest float32 below 1

export type Family = 'Categorical' | 'Bernoulli' | 'Normal';

/** What every distribution offers. Shapes as described at the top of this file. */
export interface Distribution {
  readonly family: Family;
  /** Leading (non-event) axes of the parameters. */
  readonly batchShape: number[];
  /** `[]` for Categorical, `[D]` (the last axis) for Bernoulli and Normal. */
  readonly eventShape: number[];
  /** Log density / mass of `value`, summed over the event axis: shape = broadcast batch shape. */
  logProb(value: tf.Tensor): tf.Tensor;
  /** A draw of shape `[...sampleShape, ...batchShape, ...eventShape]`, carrying no gradient. */
  sample(rng: Rng, sampleShape?: number[]): tf.Tensor;
  /** Entropy, summed over the event axis: shape = batch shape. */
  entropy(): tf.Tensor;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

function checkSampleShape(where: string, sampleShape: number[]): void {
  for (const d of sampleShape) {
    if (!Number.isInteger(d) || d < 1) fail(where, `sampleShape must hold positive integers, got [${sampleShape.join(', ')}]`);
  }
}

/** NumPy-style broadcast of two shapes; names the caller in errors. */
export function broadcastShapes(where: string, a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      fail(where, `shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Uniforms in (0, 1) of the given shape from `rng` (see `Rng.uniforms`). */
function uniformTensor(rng: Rng, shape: number[]): tf.Tensor {
  return tf.tensor(rng.uniforms(tf.util.sizeFromShape(shape)), shape, 'float32');
}

/**
 * Standard Gumbel noise `-log(-log u)` of the given shape, from a seeded uniform. Computed where the
 * uniforms are made (the host, in float64, rounded to float32 once), then uploaded: on the device
 * it was five kernels (clip, log, neg, log, neg) per draw (bench/results/kernels.md, 2026-12-06).
 */
export function gumbelNoise(rng: Rng, shape: number[]): tf.Tensor {
  const u = rng.uniforms(tf.util.sizeFromShape(shape));
  const g = new Float32Array(u.length);
  for (let i = 0; i < u.length; i++) g[i] = -Math.log(-Math.log(Math.min(Math.max(u[i]!, U_MIN), U_MAX)));
  return tf.tensor(g, shape, 'float32');
}

/** Sum over the last axis (the event axis of Normal / Bernoulli). */
function sumEvent(t: tf.Tensor): tf.Tensor {
  return tf.sum(t, -1);
}

// ---------------------------------------------------------------------------------------------
// Categorical

/**
 * Categorical over `N` choices with `logits [...batch, N]` (unnormalized; normalized internally
 * with `logSoftmax`). `Categorical.uniform(N, batchShape)` is the uniform one.
 */
export class Categorical implements Distribution {
  readonly family = 'Categorical' as const;
  readonly logits: tf.Tensor;
  readonly n: number;
  readonly batchShape: number[];
  readonly eventShape: number[] = [];

  constructor(logits: tf.Tensor) {
    if (!(logits instanceof tf.Tensor)) fail('Categorical', 'logits must be a tf.Tensor');
    if (logits.rank < 1) fail('Categorical', 'logits must have rank >= 1 (the last axis holds the N choices)');
    if (logits.dtype !== 'float32') fail('Categorical', `logits must be float32, got ${logits.dtype}`);
    this.logits = logits;
    this.n = logits.shape[logits.rank - 1]!;
    if (this.n < 1) fail('Categorical', 'needs at least one choice');
    this.batchShape = logits.shape.slice(0, -1);
  }

  /** Uniform over `n` choices, with the given batch shape (logits are zeros). */
  static uniform(n: number, batchShape: number[] = []): Categorical {
    if (!Number.isInteger(n) || n < 1) fail('Categorical.uniform', `n must be a positive integer, got ${n}`);
    return new Categorical(tf.zeros([...batchShape, n]));
  }

  /** Normalized log-probabilities of every choice: `[...batch, N]`. */
  logProbs(): tf.Tensor {
    return tf.logSoftmax(this.logits);
  }

  /** Probabilities of every choice: `[...batch, N]`. */
  probs(): tf.Tensor {
    return tf.softmax(this.logits);
  }

  /**
   * `log q(value)` for int32 indices `value [...sample, ...batch]` (broadcast against the batch
   * shape): `sum_i onehot(value)_i * logSoftmax(logits)_i`. Differentiable w.r.t. the logits.
   */
  logProb(value: tf.Tensor): tf.Tensor {
    if (value.dtype !== 'int32') fail('Categorical.logProb', `values are int32 indices, got ${value.dtype}`);
    broadcastShapes('Categorical.logProb', value.shape, this.batchShape);
    // int32 one-hot then cast: the wasm OneHot kernel ignores a float32 `dtype` argument (tfjs 4.22)
    // and writes int32 bits into a float32 tensor.
    return tf.tidy(() => {
      // tf.oneHot needs depth >= 2; with one choice every value has log-probability 0.
      if (this.n === 1) return tf.add(tf.zeros(broadcastShapes('Categorical.logProb', value.shape, this.batchShape)), tf.sum(this.logProbs(), -1));
      return sumEvent(tf.mul(tf.cast(tf.oneHot(value, this.n), 'float32'), this.logProbs()));
    });
  }

  /**
   * Gumbel-max draw: `argmax(logits + g)`, int32 of shape `[...sampleShape, ...batch]`. Runs off
   * the gradient tape (`withoutGradient`): nothing of the [..., N] noise is recorded or saved.
   */
  sample(rng: Rng, sampleShape: number[] = []): tf.Tensor {
    checkSampleShape('Categorical.sample', sampleShape);
    const shape = [...sampleShape, ...this.batchShape, this.n];
    return withoutGradient((l) => tf.tidy(() => tf.argMax(tf.add(l, gumbelNoise(rng, shape)), -1)), this.logits);
  }

  /**
   * Gumbel-softmax (Concrete) relaxed one-hot: `softmax((logits + g) / temperature)`, shape
   * `[...sampleShape, ...batch, N]`, rows sum to 1, differentiable w.r.t. the logits.
   * Jang et al. 2016 (arXiv:1611.01144); Maddison et al. 2016 (arXiv:1611.00712).
   * Equals `tf.exp(new RelaxedCategorical(logits, temperature).rsample(...))`.
   */
  gumbelSoftmax(rng: Rng, temperature: number, sampleShape: number[] = []): tf.Tensor {
    return tf.tidy(() => tf.exp(new RelaxedCategorical(this.logits, temperature).rsample(rng, sampleShape)));
  }

  /** `-sum_i p_i log p_i`, shape = batch shape. */
  entropy(): tf.Tensor {
    return tf.tidy(() => {
      const lp = this.logProbs();
      return tf.neg(sumEvent(tf.mul(tf.exp(lp), lp)));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Relaxed Categorical (ExpConcrete)

/**
 * The ExpConcrete distribution (Maddison, Mnih & Teh 2016, arXiv:1611.00712, appendix C): the law
 * of `y = logSoftmax((logits + g) / λ)` with Gumbel noise `g` and temperature `λ`. `exp(y)` is the
 * Gumbel-softmax relaxed one-hot. Working with `y` (the log of the relaxed sample) keeps the
 * density finite where the relaxed sample has underflowing coordinates.
 *
 *   log p(y) = log((n-1)!) + (n-1) log λ + sum_i (logits_i - λ y_i) - n logsumexp_i(logits_i - λ y_i)
 *
 * This is a density w.r.t. Lebesgue measure on the n-1 log-ratios `(y_1 - y_n, ..., y_{n-1} - y_n)`
 * (y itself lives on the surface `logsumexp(y) = 0`); checked numerically in
 * test/lower/distributions.test.ts. The base measure does not depend on the logits or the
 * temperature, so it cancels in relaxed log-weights `log p(y) - log q(y)` as long as the prior and
 * the guide of a site are both scored with this class.
 */
export class RelaxedCategorical {
  readonly logits: tf.Tensor;
  readonly temperature: number;
  readonly n: number;
  readonly batchShape: number[];

  constructor(logits: tf.Tensor, temperature: number) {
    if (logits.rank < 1) fail('RelaxedCategorical', 'logits must have rank >= 1');
    if (!(temperature > 0) || !Number.isFinite(temperature)) {
      fail('RelaxedCategorical', `temperature must be a positive finite number, got ${temperature}`);
    }
    this.logits = logits;
    this.temperature = temperature;
    this.n = logits.shape[logits.rank - 1]!;
    this.batchShape = logits.shape.slice(0, -1);
  }

  /** Reparameterized draw of `y = log(relaxed one-hot)`: `[...sampleShape, ...batch, N]`. */
  rsample(rng: Rng, sampleShape: number[] = []): tf.Tensor {
    checkSampleShape('RelaxedCategorical.rsample', sampleShape);
    return tf.tidy(() => {
      const g = gumbelNoise(rng, [...sampleShape, ...this.batchShape, this.n]);
      return tf.logSoftmax(tf.div(tf.add(this.logits, g), this.temperature));
    });
  }

  /** ExpConcrete log-density of `logY [..., N]` (see the class comment): shape = broadcast batch. */
  logProb(logY: tf.Tensor): tf.Tensor {
    if (logY.shape[logY.rank - 1] !== this.n) {
      fail('RelaxedCategorical.logProb', `last axis of the value must be ${this.n}, got [${logY.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const lam = this.temperature;
      let logFact = 0;
      for (let i = 2; i < this.n; i++) logFact += Math.log(i);
      const lp = tf.logSoftmax(this.logits); // normalizing the logits does not change the density
      const s = tf.sub(lp, tf.mul(logY, lam));
      return tf.add(tf.sub(sumEvent(s), tf.mul(tf.logSumExp(s, -1), this.n)), logFact + (this.n - 1) * Math.log(lam));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Bernoulli

/** Independent Bernoullis over the last axis, `logits [...batch, D]`; values in {0,1} (float32). */
export class Bernoulli implements Distribution {
  readonly family = 'Bernoulli' as const;
  readonly logits: tf.Tensor;
  readonly batchShape: number[];
  readonly eventShape: number[];

  constructor(logits: tf.Tensor) {
    if (!(logits instanceof tf.Tensor)) fail('Bernoulli', 'logits must be a tf.Tensor');
    if (logits.rank < 1) fail('Bernoulli', 'logits must have rank >= 1 (the last axis is the event axis)');
    if (logits.dtype !== 'float32') fail('Bernoulli', `logits must be float32, got ${logits.dtype}`);
    this.logits = logits;
    this.batchShape = logits.shape.slice(0, -1);
    this.eventShape = logits.shape.slice(-1);
  }

  /** `sigmoid(logits)`. */
  probs(): tf.Tensor {
    return tf.sigmoid(this.logits);
  }

  /**
   * `sum_d x_d l_d - softplus(l_d)`, which is `sum_d -(x_d softplus(-l_d) + (1 - x_d) softplus(l_d))`
   * (exact for x in {0,1}, and the negative binary cross-entropy for x in [0,1]) with one softplus.
   * For a large logit the difference `l - softplus(l)` loses the tiny `-softplus(-l)` to rounding
   * (an absolute error below 1e-7 |l|), never more.
   */
  logProb(value: tf.Tensor): tf.Tensor {
    if (value.dtype !== 'float32') fail('Bernoulli.logProb', `values must be float32 0/1, got ${value.dtype}`);
    broadcastShapes('Bernoulli.logProb', value.shape, this.logits.shape);
    return tf.tidy(() => {
      const l = this.logits;
      // One kernel (and one for its gradient) on cpu and wasm: families/fused.ts.
      return bernoulliLogProbFused(l, value) ?? sumEvent(tf.sub(tf.mul(value, l), tf.softplus(l)));
    });
  }

  /**
   * `u < sigmoid(l)` as float32 0/1, shape `[...sampleShape, ...batch, D]`. Written as
   * `step(sigmoid(l) - u)` because `Less` has no gradient function in tfjs: a sample that feeds a
   * differentiated expression would otherwise abort backprop (step's gradient is zero).
   */
  sample(rng: Rng, sampleShape: number[] = []): tf.Tensor {
    checkSampleShape('Bernoulli.sample', sampleShape);
    return tf.tidy(() => {
      const u = uniformTensor(rng, [...sampleShape, ...this.logits.shape]);
      return tf.step(tf.sub(tf.sigmoid(stopGradient(this.logits)), u));
    });
  }

  /** `sum_d p_d softplus(-l_d) + (1 - p_d) softplus(l_d)`, shape = batch shape. */
  entropy(): tf.Tensor {
    return tf.tidy(() => {
      const l = this.logits;
      const p = tf.sigmoid(l);
      return sumEvent(tf.add(tf.mul(p, tf.softplus(tf.neg(l))), tf.mul(tf.sub(1, p), tf.softplus(l))));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Normal

/** Independent Normals over the last axis; `loc` and `scale` (> 0) broadcast to `[...batch, D]`. */
export class Normal implements Distribution {
  readonly family = 'Normal' as const;
  readonly loc: tf.Tensor;
  readonly scale: tf.Tensor;
  readonly batchShape: number[];
  readonly eventShape: number[];
  /** Broadcast shape of `loc` and `scale`. */
  readonly shape: number[];

  constructor(loc: tf.Tensor, scale: tf.Tensor) {
    if (!(loc instanceof tf.Tensor) || !(scale instanceof tf.Tensor)) fail('Normal', 'loc and scale must be tf.Tensors');
    if (loc.dtype !== 'float32' || scale.dtype !== 'float32') fail('Normal', 'loc and scale must be float32');
    this.shape = broadcastShapes('Normal', loc.shape, scale.shape);
    if (this.shape.length < 1) fail('Normal', 'parameters must have rank >= 1 (the last axis is the event axis)');
    this.loc = loc;
    this.scale = scale;
    this.batchShape = this.shape.slice(0, -1);
    this.eventShape = this.shape.slice(-1);
  }

  /** `sum_d -((x-μ)/σ)^2 / 2 - log σ - log(2π)/2`. */
  logProb(value: tf.Tensor): tf.Tensor {
    if (value.dtype !== 'float32') fail('Normal.logProb', `values must be float32, got ${value.dtype}`);
    broadcastShapes('Normal.logProb', value.shape, this.shape);
    const fused = normalLogProbFused(value, this.loc, this.scale);
    if (fused) return fused;
    return tf.tidy(() => {
      const z = tf.div(tf.sub(value, this.loc), this.scale);
      const lp = tf.sub(tf.mul(tf.square(z), -0.5), tf.add(tf.log(this.scale), 0.5 * LOG_2PI));
      return sumEvent(lp);
    });
  }

  /** Reparameterized draw `loc + scale * eps`, eps ~ N(0, 1): `[...sampleShape, ...batch, D]`. */
  rsample(rng: Rng, sampleShape: number[] = []): tf.Tensor {
    checkSampleShape('Normal.rsample', sampleShape);
    return tf.tidy(() => {
      const shape = [...sampleShape, ...this.shape];
      const eps = tf.tensor(rng.normals(tf.util.sizeFromShape(shape)), shape, 'float32');
      return tf.add(this.loc, tf.mul(this.scale, eps));
    });
  }

  /**
   * `rsample` together with the log density of the draw: for `x = loc + scale * eps` the
   * standardized value is `eps` itself, so `logProb(x) = sum_d -eps^2 / 2 - log σ - log(2π)/2`
   * without forming `(x - loc) / scale` again (same value and gradient, fewer ops forward and
   * backward). Draws the same noise as `rsample` from the same `rng` state.
   */
  rsampleScored(rng: Rng, sampleShape: number[] = []): { value: tf.Tensor; logProb: tf.Tensor } {
    checkSampleShape('Normal.rsampleScored', sampleShape);
    return tf.tidy(() => {
      const shape = [...sampleShape, ...this.shape];
      const e = rng.normals(tf.util.sizeFromShape(shape));
      const value = tf.add(this.loc, tf.mul(this.scale, tf.tensor(e, shape, 'float32')));
      // The noise's part, sum_d -eps^2 / 2 - log(2π) / 2, is a constant: computed on the host
      // (float64), where the noise is drawn, instead of by five kernels on the device
      // (bench/results/kernels.md, 2026-12-06). The normalizer is broadcast to the full event:
      // a scale shared by the coordinates (a scalar) still counts once per coordinate.
      const d = shape[shape.length - 1]!;
      const c = new Float32Array(e.length / d);
      for (let r = 0; r < c.length; r++) {
        let s = 0;
        for (let j = r * d; j < (r + 1) * d; j++) s += e[j]! * e[j]!;
        c[r] = -0.5 * s - 0.5 * d * LOG_2PI;
      }
      const logScale = tf.log(this.scale);
      const full = tf.util.arraysEqual(this.scale.shape, this.shape) ? logScale : tf.broadcastTo(logScale, this.shape);
      return { value, logProb: tf.sub(tf.tensor(c, shape.slice(0, -1), 'float32'), sumEvent(full)) };
    });
  }

  /** Like `rsample` but carrying no gradient. */
  sample(rng: Rng, sampleShape: number[] = []): tf.Tensor {
    return tf.tidy(() => stopGradient(this.rsample(rng, sampleShape)));
  }

  /** `sum_d log σ + (1 + log 2π) / 2`; shape = batch shape. */
  entropy(): tf.Tensor {
    return tf.tidy(() => sumEvent(tf.add(tf.broadcastTo(tf.log(this.scale), this.shape), 0.5 * (1 + LOG_2PI))));
  }
}

// ---------------------------------------------------------------------------------------------
// KL divergence

/**
 * Closed-form `KL(p || q)` for two distributions of the same family, summed over the event axis
 * (Normal, Bernoulli) or over the choices (Categorical). Shape = broadcast batch shape.
 * - Categorical: `sum_i p_i (log p_i - log q_i)`.
 * - Bernoulli: `sum_d p (softplus(-l_q) - softplus(-l_p)) + (1-p) (softplus(l_q) - softplus(l_p))`.
 * - Normal: `sum_d log(σ_q/σ_p) + (σ_p^2 + (μ_p - μ_q)^2) / (2 σ_q^2) - 1/2`.
 */
export function kl(p: Distribution, q: Distribution): tf.Tensor {
  if (p.family !== q.family) fail('kl', `no closed form for KL(${p.family} || ${q.family})`);
  if (p instanceof Categorical && q instanceof Categorical) {
    if (p.n !== q.n) fail('kl', `Categoricals over ${p.n} and ${q.n} choices`);
    return tf.tidy(() => {
      const lp = p.logProbs();
      return sumEvent(tf.mul(tf.exp(lp), tf.sub(lp, q.logProbs())));
    });
  }
  if (p instanceof Bernoulli && q instanceof Bernoulli) {
    broadcastShapes('kl', p.logits.shape, q.logits.shape);
    return tf.tidy(() => {
      const lp = p.logits;
      const lq = q.logits;
      const pp = tf.sigmoid(lp);
      const one = tf.mul(pp, tf.sub(tf.softplus(tf.neg(lq)), tf.softplus(tf.neg(lp))));
      const zero = tf.mul(tf.sub(1, pp), tf.sub(tf.softplus(lq), tf.softplus(lp)));
      return sumEvent(tf.add(one, zero));
    });
  }
  if (p instanceof Normal && q instanceof Normal) {
    broadcastShapes('kl', p.shape, q.shape);
    return tf.tidy(() => {
      const varRatio = tf.square(tf.div(p.scale, q.scale));
      const mean = tf.square(tf.div(tf.sub(p.loc, q.loc), q.scale));
      const t = tf.mul(tf.sub(tf.add(varRatio, mean), tf.add(tf.log(varRatio), 1)), 0.5);
      return sumEvent(t);
    });
  }
  return fail('kl', `unsupported distributions (${p.family})`);
}
