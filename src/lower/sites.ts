/**
 * Sites on plated values: evaluate a site's distribution parameters, draw its value (sampled,
 * reparameterized, enumerated) and score values under it. The densities themselves live in
 * distributions.ts; this module only lines up plates and event axes around them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { IrDist } from '../ir/types.ts';
import type { Rng } from '../random/rng.ts';
import { Bernoulli, Categorical, Normal, RelaxedCategorical } from '../families/distributions.ts';
import { family, type FamilyDist, type FamilySpec } from '../families/registry.ts';
import { evaluate, type EvalContext } from './evaluate.ts';
import { gatherRows } from './gather.ts';
import { alignTo, broadcastValues, eventShape, plateSizesOf, reshape, sortPlates, unionPlates, type Plate, type Value } from './plates.ts';

/**
 * A distribution with its parameters evaluated. Categorical always has (log-normalized) logits;
 * `uniform` marks the uniform one (every log-probability is -log n).
 */
export type BoundDist =
  | { kind: 'Categorical'; logits: Value; n: number; uniform?: boolean }
  | { kind: 'Bernoulli'; logits: Value }
  | { kind: 'Normal'; loc: Value; scale: Value }
  /** Any other family of the registry, parameters in its order. */
  | { kind: 'family'; spec: FamilySpec; params: Value[] };

/** True when draws from `d` carry no gradient: the guide site needs a score-function estimator. */
export function needsScoreFunction(d: BoundDist): boolean {
  return d.kind === 'Categorical' || d.kind === 'Bernoulli' || (d.kind === 'family' && !d.spec.reparameterized);
}

/** Evaluates the parameters; `n` resolves the size of a uniform Categorical. */
export function bindDist(d: IrDist, ctx: EvalContext, n: (d: IrDist & { kind: 'Categorical' }) => number): BoundDist {
  switch (d.kind) {
    case 'Categorical': {
      if (d.logits) {
        const l = evaluate(d.logits, ctx);
        return { kind: 'Categorical', logits: { t: tf.logSoftmax(l.t), plates: l.plates }, n: l.t.shape[l.t.rank - 1]! };
      }
      const size = n(d);
      return { kind: 'Categorical', logits: { t: tf.fill([size], -Math.log(size)), plates: [] }, n: size, uniform: true };
    }
    case 'Bernoulli':
      return { kind: 'Bernoulli', logits: evaluate(d.logits, ctx) };
    case 'Normal':
      return { kind: 'Normal', loc: evaluate(d.loc, ctx), scale: evaluate(d.scale, ctx) };
    case 'family': {
      const spec = family(d.family);
      if (!spec) throw new InternalError('lower', `unknown distribution family ${d.family}`);
      return { kind: 'family', spec, params: d.params.map((e) => evaluate(e, ctx)) };
    }
  }
}

/**
 * Parameters broadcast to the site's event shape: `latent z : real[32] ~ Normal(0, 1)` has scalar
 * parameters but draws 32 values (a draw takes the shape of its parameters).
 */
export function expandToEvent(d: BoundDist, event: number[]): BoundDist {
  const grow = (v: Value): Value => {
    const ev = eventShape(v);
    if (ev.length === event.length && ev.every((n, i) => n === event[i])) return v;
    const lead = v.t.shape.slice(0, v.plates.length);
    const padded = reshape(v.t, [...lead, ...new Array<number>(event.length - ev.length).fill(1), ...ev]);
    return { t: tf.broadcastTo(padded, [...lead, ...event]), plates: v.plates };
  };
  switch (d.kind) {
    case 'Normal':
      return { ...d, loc: grow(d.loc), scale: grow(d.scale) };
    case 'Bernoulli':
      return { ...d, logits: grow(d.logits) };
    case 'family':
      return { ...d, params: d.params.map(grow) };
    case 'Categorical':
      return d;
  }
}

/** A registry family's parameters and a value broadcast together, each with one event axis. */
function familyOf(d: BoundDist & { kind: 'family' }, x?: Value): { dist: FamilyDist; x?: tf.Tensor; plates: Plate[]; shape: number[] } {
  const { tensors, plates } = broadcastValues(x ? [...d.params, x] : d.params, true);
  const n = plates.length;
  const shape = tensors[0]!.shape;
  const flat = tensors.map((t) => oneEventAxis(t, n));
  const params = x ? flat.slice(0, -1) : flat;
  return { dist: d.spec.create(params), ...(x ? { x: flat[flat.length - 1]! } : {}), plates, shape };
}

/** Flattens the event axes into one trailing axis (distributions.ts keeps one event axis). */
function oneEventAxis(t: tf.Tensor, nPlates: number): tf.Tensor {
  const ev = t.shape.slice(nPlates);
  if (ev.length === 1) return t;
  // (A scalar site gets a trailing axis of size 1.)
  return reshape(t, [...t.shape.slice(0, nPlates), ev.reduce((a, b) => a * b, 1)]);
}

/** log density of `x` under `d`, summed over the event axes; plates are the union of both. */
export function logProb(d: BoundDist, x: Value): Value {
  switch (d.kind) {
    case 'Categorical':
      return categoricalLogProb(d, x);
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
    case 'family': {
      const f = familyOf(d, x);
      return { t: f.dist.logProb(f.x!), plates: f.plates };
    }
  }
}

/**
 * `log p(x)` for int indices `x` under normalized logits: the logit at each index, read with one
 * gather (`gatherRows`, whose gradient scatters back into the logits). Not
 * `Categorical.logProb`, which normalizes again and builds a one-hot [..., n] per value. A uniform
 * Categorical gives the constant -log n.
 */
function categoricalLogProb(d: BoundDist & { kind: 'Categorical' }, x: Value): Value {
  if (d.uniform) return { t: tf.fill(x.t.shape, -Math.log(d.n)), plates: x.plates };
  const plates = unionPlates(d.logits.plates, x.plates);
  const sizes = plateSizesOf(d.logits, x);
  const idx = x.t.dtype === 'int32' ? x.t : tf.cast(x.t, 'int32');
  const n = d.n;
  // Row of the logits for each element of the output: the logits' own plates, flattened.
  const logitPlateShape = d.logits.t.shape.slice(0, d.logits.plates.length);
  const rows = logitPlateShape.reduce((a, b) => a * b, 1);
  const offsets: Value = { t: reshape(tf.range(0, rows * n, n, 'int32'), logitPlateShape), plates: d.logits.plates };
  const flat = tf.add(alignTo({ t: idx, plates: x.plates }, plates), alignTo(offsets, plates)); // [...plates]
  const full = plates.map((p) => sizes[p] ?? 1);
  const table = reshape(d.logits.t, [rows * n, 1]);
  return { t: reshape(gatherRows(table, reshape(flat, full)), full), plates };
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
    case 'family': {
      const f = familyOf(d);
      const draw = (s: number[]) => (f.dist.rsample ? f.dist.rsample(rng, s) : f.dist.sample(rng, s));
      if (f.plates.includes('sample')) return { t: reshape(draw([]), f.shape), plates: f.plates };
      return placeSampleAxis(reshape(draw([k]), [k, ...f.shape]), f.plates);
    }
  }
}

/**
 * `sample`, and the log density of the draw under `d` (what `logProb(d, sample(d, k, rng))`
 * gives, from the same random draws). A reparameterized Normal scores its draw from the noise
 * it was made from (`Normal.rsampleScored`).
 */
export function sampleScored(d: BoundDist, k: number, rng: Rng): { value: Value; logProb: Value } {
  if (d.kind !== 'Normal') {
    const value = sample(d, k, rng);
    return { value, logProb: logProb(d, value) };
  }
  const { tensors, plates } = broadcastValues([d.loc, d.scale], true);
  const n = plates.length;
  const shape = tensors[0]!.shape;
  const fresh = !plates.includes('sample');
  // One event axis for the Normal (it sums its log density over the last axis only).
  const r = new Normal(oneEventAxis(tensors[0]!, n), oneEventAxis(tensors[1]!, n)).rsampleScored(rng, fresh ? [k] : []);
  const t = reshape(r.value, [...(fresh ? [k] : []), ...shape]);
  return fresh
    ? { value: placeSampleAxis(t, plates), logProb: placeSampleAxis(r.logProb, plates) }
    : { value: { t, plates }, logProb: { t: r.logProb, plates } };
}

/** A relaxed draw y = log(relaxed one-hot) of a Categorical at `temperature`, event [N], K per example. */
export function relaxedSample(d: BoundDist, k: number, temperature: number, rng: Rng): Value {
  if (d.kind !== 'Categorical') throw new InternalError('lower', 'only a Categorical site can be relaxed');
  const logits = d.uniform ? { t: tf.zeros([d.n]), plates: [] as Plate[] } : d.logits;
  const dist = new RelaxedCategorical(logits.t, temperature);
  if (logits.plates.includes('sample')) return { t: dist.rsample(rng), plates: logits.plates };
  return placeSampleAxis(dist.rsample(rng, [k]), logits.plates);
}

/** ExpConcrete log-density of a relaxed draw `y` under the Categorical `d` at `temperature`. */
export function relaxedLogProb(d: BoundDist, y: Value, temperature: number): Value {
  if (d.kind !== 'Categorical') throw new InternalError('lower', 'only a Categorical site can be relaxed');
  const { tensors, plates } = broadcastValues([d.logits, y]);
  return { t: new RelaxedCategorical(tensors[0]!, temperature).logProb(tensors[1]!), plates };
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
    case 'family': {
      const f = familyOf(d);
      return { t: reshape(f.dist.mean(), f.shape), plates: f.plates };
    }
  }
}

/** Broadcasts a per-(plates) scalar value to full plate sizes [..plates]. */
export function toFull(v: Value, plates: ReturnType<typeof sortPlates>, like: Value[]): tf.Tensor {
  return alignTo(v, plates, 0, plateSizesOf(v, ...like));
}

export { eventShape };
