/**
 * Sites on plated values: evaluate a site's distribution parameters, draw its value (sampled,
 * reparameterized, enumerated) and score values under it. The densities themselves live in
 * distributions.ts; this module only lines up plates and event axes around them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { IrDist } from '../ir/types.ts';
import type { Rng } from '../estimators/rng.ts';
import { Bernoulli, Categorical, Normal } from './distributions.ts';
import { evaluate, type EvalContext } from './evaluate.ts';
import { alignTo, broadcastValues, eventShape, plateSizesOf, sortPlates, unionPlates, type Plate, type Value } from './plates.ts';

/** A distribution with its parameters evaluated. Categorical always has (log-normalized) logits. */
export type BoundDist =
  | { kind: 'Categorical'; logits: Value; n: number }
  | { kind: 'Bernoulli'; logits: Value }
  | { kind: 'Normal'; loc: Value; scale: Value };

/** Evaluates the parameters; `n` resolves the size of a uniform Categorical. */
export function bindDist(d: IrDist, ctx: EvalContext, n: (d: IrDist & { kind: 'Categorical' }) => number): BoundDist {
  switch (d.kind) {
    case 'Categorical': {
      if (d.logits) {
        const l = evaluate(d.logits, ctx);
        return { kind: 'Categorical', logits: { t: tf.logSoftmax(l.t), plates: l.plates }, n: l.t.shape[l.t.rank - 1]! };
      }
      const size = n(d);
      return { kind: 'Categorical', logits: { t: tf.fill([size], -Math.log(size)), plates: [] }, n: size };
    }
    case 'Bernoulli':
      return { kind: 'Bernoulli', logits: evaluate(d.logits, ctx) };
    case 'Normal':
      return { kind: 'Normal', loc: evaluate(d.loc, ctx), scale: evaluate(d.scale, ctx) };
  }
}

/** Flattens the event axes into one trailing axis (distributions.ts keeps one event axis). */
function oneEventAxis(t: tf.Tensor, nPlates: number): tf.Tensor {
  const ev = t.shape.slice(nPlates);
  if (ev.length === 1) return t;
  return tf.reshape(t, [...t.shape.slice(0, nPlates), ev.reduce((a, b) => a * b, 1)]);
}

/** log density of `x` under `d`, summed over the event axes; plates are the union of both. */
export function logProb(d: BoundDist, x: Value): Value {
  switch (d.kind) {
    case 'Categorical': {
      const plates = unionPlates(d.logits.plates, x.plates);
      const logits = alignTo(d.logits, plates);
      const idx = x.t.dtype === 'int32' ? x.t : tf.cast(x.t, 'int32');
      const value = alignTo({ t: idx, plates: x.plates }, plates);
      return { t: new Categorical(logits).logProb(value), plates };
    }
    case 'Bernoulli': {
      const { tensors, plates } = broadcastValues([d.logits, x]);
      const n = plates.length;
      return { t: new Bernoulli(oneEventAxis(tensors[0]!, n)).logProb(oneEventAxis(tensors[1]!, n)), plates };
    }
    case 'Normal': {
      const { tensors, plates } = broadcastValues([d.loc, d.scale, x]);
      const n = plates.length;
      const [loc, scale, v] = tensors.map((t) => oneEventAxis(t, n)) as [tf.Tensor, tf.Tensor, tf.Tensor];
      return { t: new Normal(loc, scale).logProb(v), plates };
    }
  }
}

/** Moves a freshly prepended sample axis [K, ...plates] to its canonical place (after enum). */
function placeSampleAxis(t: tf.Tensor, plates: Plate[]): Value {
  const out = sortPlates([...plates, 'sample']);
  if (plates[0] !== 'enum') return { t, plates: out };
  const perm = Array.from({ length: t.rank }, (_, i) => i);
  perm[0] = 1;
  perm[1] = 0;
  return { t: tf.transpose(t, perm), plates: out };
}

/**
 * Draws one value per sample: when the parameters do not yet depend on the sample plate, K
 * independent draws are taken (adding the plate); otherwise one draw per existing sample.
 * Normal draws are reparameterized (loc + scale * eps, differentiable in loc and scale); discrete
 * draws carry no gradient.
 */
export function sample(d: BoundDist, k: number, rng: Rng): Value {
  switch (d.kind) {
    case 'Normal': {
      const { tensors, plates } = broadcastValues([d.loc, d.scale], true);
      const dist = new Normal(tensors[0]!, tensors[1]!);
      if (plates.includes('sample')) return { t: dist.rsample(rng), plates };
      return placeSampleAxis(dist.rsample(rng, [k]), plates);
    }
    case 'Bernoulli': {
      const dist = new Bernoulli(d.logits.t);
      if (d.logits.plates.includes('sample')) return { t: dist.sample(rng), plates: d.logits.plates };
      return placeSampleAxis(dist.sample(rng, [k]), d.logits.plates);
    }
    case 'Categorical': {
      const dist = new Categorical(d.logits.t);
      if (d.logits.plates.includes('sample')) return { t: dist.sample(rng), plates: d.logits.plates };
      return placeSampleAxis(dist.sample(rng, [k]), d.logits.plates);
    }
  }
}

/** Every value of a Categorical on the `enum` plate: [0, 1, ..., n-1]. */
export function enumerateValues(d: BoundDist): Value {
  if (d.kind !== 'Categorical') throw new InternalError('lower', 'only a Categorical site can be enumerated');
  return { t: tf.range(0, d.n, 1, 'int32'), plates: ['enum'] };
}

/** Probabilities of a Categorical (for soft attention weights), event [N]. */
export function categoricalProbs(d: BoundDist): Value {
  if (d.kind !== 'Categorical') throw new InternalError('lower', 'soft addressing needs a Categorical');
  return { t: tf.exp(d.logits.t), plates: d.logits.plates };
}

/** The mean of a distribution (used to draw pictures: Bernoulli means instead of binary noise). */
export function mean(d: BoundDist): Value {
  switch (d.kind) {
    case 'Bernoulli':
      return { t: tf.sigmoid(d.logits.t), plates: d.logits.plates };
    case 'Normal':
      return d.loc;
    case 'Categorical':
      return { t: tf.argMax(d.logits.t, -1), plates: d.logits.plates };
  }
}

/** Broadcasts a per-(plates) scalar value to full plate sizes [..plates]. */
export function toFull(v: Value, plates: ReturnType<typeof sortPlates>, like: Value[]): tf.Tensor {
  return alignTo(v, plates, 0, plateSizesOf(v, ...like));
}

export { eventShape };
