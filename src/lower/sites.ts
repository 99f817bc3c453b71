/**
 * Sites on plated values: evaluate a site's distribution parameters, draw its value (sampled,
 * reparameterized, enumerated) and score values under it. The densities themselves live in
 * distributions.ts; this module only lines up plates and event axes around them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import { distParams, familyName, type IrDist } from '../ir/types.ts';
import type { Rng } from '../random/rng.ts';
import { family, type Enumerable, type FamilyDist, type FamilySpec } from '../families/registry.ts';
import { evaluate, type EvalContext } from './evaluate.ts';
import { gatherRows } from './gather.ts';
import { alignTo, broadcastValues, eventShape, plateSizesOf, reshape, sortPlates, unionPlates, type Plate, type Value } from './plates.ts';

/**
 * A distribution with its parameters evaluated: a registry entry and its parameters in the entry's
 * order. Everything the lowering does with it reads the entry (its `create`, `enumerable`,
 * `relaxation`, `reparameterized`), never its name. An enumerable family (Categorical) keeps its
 * one parameter as the table of normalized log-probabilities `[..., n]` (`Enumerable.table`);
 * `uniform` marks the uniform one (every log-probability is -log n).
 */
export interface BoundDist {
  spec: FamilySpec;
  params: Value[];
  /** An enumerable family's number of values. */
  n?: number;
  uniform?: boolean;
}

/** True when draws from `d` carry no gradient: the guide site needs a score-function estimator. */
export function needsScoreFunction(d: BoundDist): boolean {
  return !d.spec.reparameterized;
}

/** The registry entry of an IR distribution. */
function specOf(d: IrDist): FamilySpec {
  const spec = family(familyName(d));
  if (!spec) throw new InternalError('lower', `unknown distribution family ${familyName(d)}`);
  return spec;
}

/** Evaluates the parameters; `n` resolves the size of a uniform Categorical (`Categorical(mem)`, `Categorical(N)`). */
export function bindDist(d: IrDist, ctx: EvalContext, n: (d: IrDist & { kind: 'Categorical' }) => number): BoundDist {
  const spec = specOf(d);
  if (d.kind === 'Categorical' && !d.logits) {
    const size = n(d);
    return { spec, params: [{ t: tf.fill([size], -Math.log(size)), plates: [] }], n: size, uniform: true };
  }
  const params = distParams(d).map((e) => evaluate(e, ctx));
  const en = spec.enumerable;
  if (!en) return { spec, params };
  const table = en.table(params.map((p) => p.t));
  return { spec, params: [{ t: table, plates: params[0]!.plates }], n: en.size(params.map((p) => p.t.shape)) };
}

/** The entry's enumerable support, or an internal error naming what needed it. */
function enumerable(d: BoundDist, what: string): Enumerable & { n: number } {
  if (!d.spec.enumerable || d.n === undefined) throw new InternalError('lower', `${what} needs a family with an enumerable support, not ${d.spec.name}`);
  return { ...d.spec.enumerable, n: d.n };
}

/**
 * Parameters broadcast to the site's event shape: `latent z : real[32] ~ Normal(0, 1)` has scalar
 * parameters but draws 32 values (a draw takes the shape of its parameters). An enumerable family's
 * values are indices into its table's last axis: its table stays as it is.
 */
export function expandToEvent(d: BoundDist, event: number[]): BoundDist {
  if (d.spec.enumerable) return d;
  const grow = (v: Value): Value => {
    const ev = eventShape(v);
    if (ev.length === event.length && ev.every((n, i) => n === event[i])) return v;
    const lead = v.t.shape.slice(0, v.plates.length);
    const padded = reshape(v.t, [...lead, ...new Array<number>(event.length - ev.length).fill(1), ...ev]);
    return { t: tf.broadcastTo(padded, [...lead, ...event]), plates: v.plates };
  };
  return { ...d, params: d.params.map(grow) };
}

/**
 * The entry's distribution over the parameters (and a value) broadcast together, each with one
 * event axis. `materialize`: plates broadcast to their full sizes (a draw needs them; a density
 * broadcasts inside its own ops, which is cheaper).
 */
function familyOf(d: BoundDist, x: Value | undefined, materialize: boolean): { dist: FamilyDist; x?: tf.Tensor; plates: Plate[]; shape: number[] } {
  const { tensors, plates } = broadcastValues(x ? [...d.params, x] : d.params, materialize);
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
  if (d.spec.enumerable) return indexedLogProb(d, x);
  const f = familyOf(d, x, false);
  return { t: f.dist.logProb(f.x!), plates: f.plates };
}

/**
 * `log p(x)` for int indices `x` under an enumerable family's table of log-probabilities: the entry
 * at each index, read with one gather (`gatherRows`, whose gradient scatters back into the table).
 * Not the entry's `logProb`, which normalizes again and builds a one-hot [..., n] per value. A
 * uniform table gives the constant -log n.
 */
function indexedLogProb(d: BoundDist, x: Value): Value {
  const { n } = enumerable(d, 'an indexed log-probability');
  if (d.uniform) return { t: tf.fill(x.t.shape, -Math.log(n)), plates: x.plates };
  const logits = d.params[0]!;
  const plates = unionPlates(logits.plates, x.plates);
  const sizes = plateSizesOf(logits, x);
  const idx = x.t.dtype === 'int32' ? x.t : tf.cast(x.t, 'int32');
  // Row of the table for each element of the output: the table's own plates, flattened.
  const logitPlateShape = logits.t.shape.slice(0, logits.plates.length);
  const rows = logitPlateShape.reduce((a, b) => a * b, 1);
  const offsets: Value = { t: reshape(tf.range(0, rows * n, n, 'int32'), logitPlateShape), plates: logits.plates };
  const flat = tf.add(alignTo({ t: idx, plates: x.plates }, plates), alignTo(offsets, plates)); // [...plates]
  const full = plates.map((p) => sizes[p] ?? 1);
  const table = reshape(logits.t, [rows * n, 1]);
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
 * Draws of a reparameterized family are pathwise (`rsample`, differentiable in the parameters);
 * others carry no gradient.
 */
export function sample(d: BoundDist, k: number, rng: Rng): Value {
  if (d.spec.enumerable) {
    // One index per row of the table: the value drops the table's last axis.
    const table = d.params[0]!;
    const dist = d.spec.create([table.t]);
    if (table.plates.includes('sample')) return { t: dist.sample(rng, []), plates: table.plates };
    return placeSampleAxis(dist.sample(rng, [k]), table.plates);
  }
  const f = familyOf(d, undefined, true);
  const draw = (s: number[]) => (f.dist.rsample ? f.dist.rsample(rng, s) : f.dist.sample(rng, s));
  if (f.plates.includes('sample')) return { t: reshape(draw([]), f.shape), plates: f.plates };
  return placeSampleAxis(reshape(draw([k]), [k, ...f.shape]), f.plates);
}

/**
 * `sample`, and the log density of the draw under `d` (what `logProb(d, sample(d, k, rng))`
 * gives, from the same random draws). A family with `rsampleScored` (Normal) scores its draw from
 * the noise it was made from.
 */
export function sampleScored(d: BoundDist, k: number, rng: Rng): { value: Value; logProb: Value } {
  const f = d.spec.enumerable ? undefined : familyOf(d, undefined, true);
  if (!f?.dist.rsampleScored) {
    const value = sample(d, k, rng);
    return { value, logProb: logProb(d, value) };
  }
  const fresh = !f.plates.includes('sample');
  const r = f.dist.rsampleScored(rng, fresh ? [k] : []);
  const t = reshape(r.value, [...(fresh ? [k] : []), ...f.shape]);
  return fresh
    ? { value: placeSampleAxis(t, f.plates), logProb: placeSampleAxis(r.logProb, f.plates) }
    : { value: { t, plates: f.plates }, logProb: { t: r.logProb, plates: f.plates } };
}

/** The entry's relaxation, or an internal error. */
function relaxationOf(d: BoundDist) {
  if (!d.spec.relaxation) throw new InternalError('lower', `only a family with a relaxation can be relaxed, not ${d.spec.name}`);
  return d.spec.relaxation;
}

/** A relaxed draw y = log(relaxed one-hot) of an enumerable site at `temperature`, event [N], K per example. */
export function relaxedSample(d: BoundDist, k: number, temperature: number, rng: Rng): Value {
  const relax = relaxationOf(d);
  const { n } = enumerable(d, 'a relaxed draw');
  const table = d.uniform ? { t: tf.zeros([n]), plates: [] as Plate[] } : d.params[0]!;
  if (table.plates.includes('sample')) return { t: relax.rsample(table.t, temperature, rng, []), plates: table.plates };
  return placeSampleAxis(relax.rsample(table.t, temperature, rng, [k]), table.plates);
}

/** The density of a relaxed draw `y` under `d` at `temperature` (ExpConcrete for a Categorical). */
export function relaxedLogProb(d: BoundDist, y: Value, temperature: number): Value {
  const relax = relaxationOf(d);
  const { tensors, plates } = broadcastValues([d.params[0]!, y]);
  return { t: relax.logProb(tensors[0]!, temperature, tensors[1]!), plates };
}

/** Every value of an enumerable site on the `enum` plate: [0, 1, ..., n-1]. */
export function enumerateValues(d: BoundDist): Value {
  const { n } = enumerable(d, 'enumeration');
  return { t: tf.range(0, n, 1, 'int32'), plates: ['enum'] };
}

/** Probabilities of every value of an enumerable site (for soft attention weights), event [N]. */
export function categoricalProbs(d: BoundDist): Value {
  enumerable(d, 'soft addressing');
  const table = d.params[0]!;
  return { t: tf.exp(table.t), plates: table.plates };
}

/** The mean of a distribution (used to draw pictures: Bernoulli means instead of binary noise). */
export function mean(d: BoundDist): Value {
  if (d.spec.enumerable) {
    const table = d.params[0]!;
    return { t: d.spec.create([table.t]).mean(), plates: table.plates };
  }
  const f = familyOf(d, undefined, true);
  return { t: reshape(f.dist.mean(), f.shape), plates: f.plates };
}

/** Broadcasts a per-(plates) scalar value to full plate sizes [..plates]. */
export function toFull(v: Value, plates: ReturnType<typeof sortPlates>, like: Value[]): tf.Tensor {
  return alignTo(v, plates, 0, plateSizesOf(v, ...like));
}

export { eventShape };
