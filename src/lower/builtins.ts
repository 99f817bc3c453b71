/**
 * The tfjs lowering of each built-in function of the signature table (src/ir/builtins.ts), keyed
 * by its name: `evaluate` (./evaluate.ts) reads a `builtin` node's row here and nothing else
 * switches on a built-in's name. The type `Record<BuiltinName, ...>` makes a row without its
 * lowering a compile error. Each lowering receives its arguments as plated values (./plates.ts:
 * a tensor whose leading axes are named plates, then the event axes the checker typed) and returns
 * one.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BuiltinName } from '../ir/builtins.ts';
import { alignTo, broadcastValues, eventRank, eventShape, plateSizesOf, reshape, unionPlates, type Value } from './plates.ts';

export type BuiltinLowering = (args: readonly Value[]) => Value;

/** `f` applied to the tensor of a value with one argument; the plates stay. */
const each =
  (f: (t: tf.Tensor) => tf.Tensor): BuiltinLowering =>
  ([v]) => ({ t: f(v!.t), plates: v!.plates });

/** Joined along the last event axis, or the first (after the plates), the plates broadcast. */
const join =
  (first: boolean): BuiltinLowering =>
  (args) => {
    const { tensors, plates } = broadcastValues([...args], true);
    return { t: tf.concat(tensors, first ? plates.length : -1), plates };
  };

/**
 * `log sum_i exp(x_i)` over the last axis, stably: tfjs's `logSumExp` subtracts the maximum
 * before exponentiating, `m + log sum_i exp(x_i - m)`, so large entries do not overflow; its
 * gradient is softmax(x).
 */
const logsumexp: BuiltinLowering = each((t) => tf.logSumExp(t, -1));

export const BUILTIN_LOWERING: Record<BuiltinName, BuiltinLowering> = {
  concat: join(false),
  stack: join(true),
  dot: (args) => {
    const { tensors, plates } = broadcastValues([...args]);
    return { t: tf.sum(tf.mul(tensors[0]!, tensors[1]!), -1), plates };
  },
  sum: each((t) => tf.sum(t, -1)),
  mean: each((t) => tf.mean(t, -1)),
  max: each((t) => tf.max(t, -1)),
  logsumexp,
  // The entries are the first event axis, right after the plates.
  pool: ([v]) => ({ t: tf.mean(v!.t, v!.plates.length), plates: v!.plates }),
  attend: ([q, k, v]) => attend(q!, k!, v!),
  softplus: each(tf.softplus),
  sigmoid: each(tf.sigmoid),
  tanh: each(tf.tanh),
  relu: each(tf.relu),
  exp: each(tf.exp),
  log: each(tf.log),
  softmax: each((t) => tf.softmax(t)),
  transpose: ([v]) => {
    const r = v!.t.rank;
    const perm = [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    return { t: tf.transpose(v!.t, perm), plates: v!.plates };
  },
  gauss_pool: ([values, weights, priorMean, priorPrec, obsPrec]) => gaussPool(weights!, priorPrec!, obsPrec!, { values: values!, priorMean: priorMean! }),
  gauss_pool_prec: ([weights, priorPrec, obsPrec]) => gaussPool(weights!, priorPrec!, obsPrec!),
};

/**
 * The conjugate Gaussian update of S slots from M weighted entries (src/ir/builtins.ts, `gaussPool`):
 * `prec = prior_prec + w^T obs_prec` and, with the values, `mean = (prior_prec prior_mean +
 * w^T (obs_prec v)) / prec`, per coordinate; weights [M, S], prior [S, D], obs_prec [M, D] or a
 * scalar, values [M, D], each with its own plates. Returns the mean when given the values and the
 * prior mean, else the precision.
 */
export function gaussPool(weights: Value, priorPrec: Value, obsPrec: Value, withMean?: { values: Value; priorMean: Value }): Value {
  const all = [weights, priorPrec, obsPrec, ...(withMean ? [withMean.values, withMean.priorMean] : [])];
  const plates = unionPlates(...all.map((v) => v.plates));
  const sizes = plateSizesOf(...all);
  const [m, s] = eventShape(weights) as [number, number];
  const d = eventShape(priorPrec)[1]!;
  const wAligned = alignTo(weights, plates, undefined, sizes); // [...P, M, S]
  const lead = wAligned.shape.slice(0, plates.length);
  const n = lead.reduce((a, b) => a * b, 1);
  const flat = (v: Value, shape: number[]) => reshape(alignTo(v, plates, undefined, sizes), [n, ...shape]);
  const w = reshape(wAligned, [n, m, s]);
  const p0 = flat(priorPrec, [s, d]);
  const scalarObs = eventShape(obsPrec).length === 0;
  const r = scalarObs ? flat(obsPrec, [1, 1]) : flat(obsPrec, [m, d]); // [n, 1, 1] or [n, M, D]
  // sum_i w_is r_id: with a scalar r, the weights' column sums times r.
  const evidence = scalarObs ? tf.mul(tf.expandDims(tf.sum(w, 1), -1), r) : tf.matMul(w, r, true, false); // [n, S, 1] or [n, S, D]
  const prec = tf.add(p0, evidence); // [n, S, D]
  if (!withMean) return { t: reshape(prec, [...lead, s, d]), plates };
  const v = flat(withMean.values, [m, d]);
  const m0 = flat(withMean.priorMean, [s, d]);
  const pulled = tf.matMul(w, tf.mul(r, v), true, false); // sum_i w_is r_id v_id: [n, S, D]
  const mean = tf.div(tf.add(tf.mul(p0, m0), pulled), prec);
  return { t: reshape(mean, [...lead, s, d]), plates };
}

/**
 * Scaled dot-product attention (Vaswani et al. 2017): `softmax_m(q · k_m / sqrt(H)) v_m` summed
 * over m, for queries [S, H] or [H], keys [M, H], values [M, V], each with its own plates.
 */
export function attend(q: Value, k: Value, v: Value): Value {
  const qRank = eventRank(q);
  const h = eventShape(q)[qRank - 1]!;
  const plates = unionPlates(q.plates, k.plates, v.plates);
  const sizes = plateSizesOf(q, k, v);
  const qt = alignTo(q, plates, undefined, sizes); // [...P, (S,) H]
  const kt = alignTo(k, plates, undefined, sizes); // [...P, M, H]
  const vt = alignTo(v, plates, undefined, sizes); // [...P, M, V]
  const lead = qt.shape.slice(0, plates.length);
  const n = lead.reduce((a, b) => a * b, 1);
  const s = qRank === 2 ? eventShape(q)[0]! : 1;
  const m = eventShape(k)[0]!;
  const q3 = reshape(qt, [n, s, h]);
  const k3 = reshape(kt, [n, m, h]);
  const v3 = reshape(vt, [n, m, -1]);
  const w = tf.softmax(tf.div(tf.matMul(q3, k3, false, true), Math.sqrt(h))); // [n, S, M]
  const out = tf.matMul(w, v3); // [n, S, V]
  const vdim = out.shape[2]!;
  return { t: reshape(out, [...lead, ...(qRank === 2 ? [s] : []), vdim]), plates };
}
