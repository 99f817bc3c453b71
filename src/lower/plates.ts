/**
 * Plated values: how the lowering adds batch and sample axes to the per-example types of the IR.
 *
 * Every runtime value is a tensor whose leading axes are a subset of the plates, always in the
 * canonical order `enum, sample, batch`, followed by the value's event axes (its IR shape):
 *
 *   enum    one slice per value of an enumerated address (estimator `enumerate`), size |M|
 *   sample  the K importance samples
 *   batch   the examples (episodes) of a minibatch
 *
 * A value only carries the plates it depends on: a shared memory `[M, D]` has none, a data input
 * has `batch`, a sampled latent has `sample, batch`. This is what lets the lowering embed a memory
 * shared by the batch once, and run `g` only on the K sampled entries in the hard variant.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';

/** A named axis; 'enum', 'sample' and 'batch' are built in, handlers may register more. */
export type Plate = string;
const ORDER: Plate[] = ['enum', 'sample', 'batch'];
/** The canonical order of the plates, outermost first. */
export const PLATE_ORDER: readonly Plate[] = ORDER;

/**
 * Adds a plate to the canonical order (e.g. the `steps` of an episode, written one after another),
 * before an existing one (default: before `batch`, so per-example axes stay innermost).
 * Registering a known plate again is a no-op.
 */
export function registerPlate(name: Plate, opts: { before?: Plate } = {}): void {
  if (ORDER.includes(name)) return;
  const at = ORDER.indexOf(opts.before ?? 'batch');
  if (at < 0) throw new InternalError('lower', `registerPlate: unknown plate '${opts.before}'`);
  ORDER.splice(at, 0, name);
}

export interface Value {
  t: tf.Tensor;
  plates: Plate[];
}

/**
 * `tf.reshape`, or `t` itself when it already has that shape. Under a gradient tape every Reshape
 * kernel also records a tape node and saves its input for the backward pass (a reference to its
 * buffer, runtime/backprop.ts); the plate bookkeeping asks for many reshapes that change nothing.
 */
export function reshape(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const infer = shape.indexOf(-1);
  if (infer >= 0) {
    const known = shape.reduce((a, n, i) => (i === infer ? a : a * n), 1);
    const full = [...shape];
    full[infer] = known === 0 ? 0 : t.size / known;
    shape = full;
  }
  if (sameShape(t.shape, shape)) return t;
  return tf.reshape(t, shape as number[]);
}

/** `tf.broadcastTo`, or `t` itself when it already has that shape. */
export function broadcastTo(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  if (sameShape(t.shape, shape)) return t;
  return tf.broadcastTo(t, shape as number[]);
}

/** Same rank and sizes (sizes only, no -1 inference). */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function value(t: tf.Tensor, plates: Plate[]): Value {
  return { t, plates: sortPlates(plates) };
}

export function sortPlates(plates: readonly Plate[]): Plate[] {
  return PLATE_ORDER.filter((p) => plates.includes(p));
}

export function unionPlates(...lists: (readonly Plate[])[]): Plate[] {
  return PLATE_ORDER.filter((p) => lists.some((l) => l.includes(p)));
}

export function eventRank(v: Value): number {
  return v.t.rank - v.plates.length;
}

export function eventShape(v: Value): number[] {
  return v.t.shape.slice(v.plates.length);
}

/** Size of each plate present in some value (they must agree). */
export type PlateSizes = Partial<Record<Plate, number>>;

export function plateSizesOf(...vals: Value[]): PlateSizes {
  const sizes: PlateSizes = {};
  for (const v of vals) {
    v.plates.forEach((p, i) => {
      const n = v.t.shape[i]!;
      const prev = sizes[p];
      if (prev !== undefined && prev !== n && prev !== 1 && n !== 1) {
        throw new InternalError('lower', `plate '${p}' has size ${prev} in one value and ${n} in another`);
      }
      if (prev === undefined || prev === 1) sizes[p] = n;
    });
  }
  return sizes;
}

/**
 * Reshapes `v` so that it has exactly the plates `target` (a superset of its own, canonical order),
 * inserting size-1 axes for missing plates, and pads its event axes on the left to `eventRankTo`
 * so that numpy-style broadcasting lines up event axes from the right. With `sizes`, the inserted
 * axes are broadcast to full size (needed by ops that do not broadcast, like concat and matMul).
 */
export function alignTo(v: Value, target: readonly Plate[], eventRankTo?: number, sizes?: PlateSizes): tf.Tensor {
  const ev = eventShape(v);
  const shape: number[] = [];
  for (const p of target) {
    const i = v.plates.indexOf(p);
    if (i >= 0) shape.push(v.t.shape[i]!);
    else shape.push(1);
  }
  for (const p of v.plates) {
    if (!target.includes(p)) throw new InternalError('lower', `alignTo: value has plate '${p}' not in target`);
  }
  const pad = eventRankTo === undefined ? 0 : Math.max(0, eventRankTo - ev.length);
  const reshaped = reshape(v.t, [...shape, ...new Array<number>(pad).fill(1), ...ev]);
  if (!sizes) return reshaped;
  const full = target.map((p, i) => (shape[i] === 1 ? (sizes[p] ?? 1) : shape[i]!));
  if (full.every((n, i) => n === shape[i])) return reshaped;
  return broadcastSummingBack(reshaped, [...full, ...reshaped.shape.slice(target.length)]);
}

/**
 * `tf.broadcastTo(t, shape)` (same rank) whose gradient is one sum over the repeated axes.
 * tfjs's broadcastTo runs the `Tile` kernel, whose gradient slices and adds once per repeat:
 * for h(x) `[1, B, H]` repeated over K = 4 samples, 10 kernels (a zero tensor, 4 slices, 4 adds,
 * a reshape) in place of one `Sum`.
 */
function broadcastSummingBack(t: tf.Tensor, shape: number[]): tf.Tensor {
  if (t.dtype !== 'float32') return tf.broadcastTo(t, shape);
  const axes = shape.flatMap((n, i) => (t.shape[i] === 1 && n !== 1 ? [i] : []));
  const op = tf.customGrad(((x: tf.Tensor) => ({
    value: tf.broadcastTo(x, shape),
    gradFunc: (dy: tf.Tensor) => tf.sum(dy, axes, true),
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(t);
}

/**
 * Broadcasts values against each other: the union of their plates, event axes aligned from the
 * right (the checker guarantees event shapes are equal or one is a scalar).
 */
export function broadcastValues(vals: Value[], materialize = false): { tensors: tf.Tensor[]; plates: Plate[] } {
  const plates = unionPlates(...vals.map((v) => v.plates));
  const rank = Math.max(...vals.map(eventRank));
  const sizes = materialize ? plateSizesOf(...vals) : undefined;
  return { tensors: vals.map((v) => alignTo(v, plates, rank, sizes)), plates };
}

/** Applies `fn` to the event part of `v`, with all plate axes flattened into one leading axis. */
export function mapEvents(v: Value, fn: (flat: tf.Tensor) => tf.Tensor): Value {
  const lead = v.t.shape.slice(0, v.plates.length);
  const n = lead.reduce((a, b) => a * b, 1);
  const flat = reshape(v.t, [n, ...eventShape(v)]);
  const out = fn(flat);
  return { t: reshape(out, [...lead, ...out.shape.slice(1)]), plates: v.plates };
}

/** Inserts a new plate axis of size n (materialized) into a value that does not have it. */
export function addPlate(v: Value, plate: Plate, n: number): Value {
  if (v.plates.includes(plate)) return v;
  const plates = sortPlates([...v.plates, plate]);
  const sizes = { ...plateSizesOf(v), [plate]: n };
  return { t: alignTo(v, plates, undefined, sizes), plates };
}

/** Sums a value over its event axes (log-densities of a site), leaving its plates. */
export function sumEvents(v: Value): Value {
  const r = eventRank(v);
  if (r === 0) return v;
  const axes = Array.from({ length: r }, (_, i) => v.plates.length + i);
  return { t: tf.sum(v.t, axes), plates: v.plates };
}

/** Expands a per-(plates) scalar value to exactly the plates `target` with full sizes. */
export function expandScalarTo(v: Value, target: readonly Plate[], sizes: PlateSizes): tf.Tensor {
  return alignTo(v, target, 0, sizes);
}
