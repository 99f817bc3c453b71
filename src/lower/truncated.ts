/**
 * The truncated address proposal on tensors (issue #26; `address = topk(k: K, tail: T)`): for a
 * memory too large to weigh every entry, an address is proposed from
 *
 *   r(a) = (1 - eps) * q(a | x) / q(top)     for a among the guide's K most probable entries ("top")
 *   r(a) = eps / (M - K)                     for each of the M - K other entries ("the tail")
 *
 * with the tail's share eps = clamp(Zhat / (q(top) + Zhat), 0.01, 0.5), where Zhat = (M / T) *
 * sum_{j in S} q(j) [j not in top] over a sample S of T entries drawn uniformly (with replacement)
 * from the whole memory: an unbiased estimate of q(tail), and the reason the proposal can put more
 * mass on the tail when the guide is unsure. With M <= K the top is the whole memory, eps = 0 and
 * r = q: the proposal is the full posterior.
 *
 * Why the bound stays a bound: for every S, r is a normalized distribution over all M entries with
 * an exactly computed density, positive everywhere (eps >= 0.01 when there is a tail), and S is
 * drawn independently of the address. So E_r[p(x, a, z) / (r(a) q(z | ...))] = p(x), and the
 * K-sample bound log (1/K) sum_k w_k is a lower bound on log p(x) (Jensen; Burda et al. 2015,
 * arXiv:1509.00519). The proposal differs from q, so the bound is a different (looser or equal)
 * bound than the full posterior's, not the same one. Its gradient: r depends on the guide's
 * parameters through q(top) and eps, and the estimators' score-function term is log r(a); the top
 * set is a piecewise-constant function of the parameters and S does not depend on them, so the
 * score-function estimators stay unbiased for the gradient of this bound's expectation
 * (test/lower/truncated.test.ts checks both against enumeration).
 *
 * The draws need no read from the device: the top entries are tf.topk of the table, the uniform
 * numbers come from the host's seeded generator, and the n-th tail entry (n uniform in [0, M - K))
 * is n + #{i : t_(i) - i <= n} over the top entries sorted, t_(0) < t_(1) < ....
 * The host-side arithmetic of the same proposal (a tail sampled without replacement) is
 * src/runtime/truncated_proposal.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';
import { gatherRows } from './gather.ts';
import { reshape } from './plates.ts';

/** The tail's share of the proposal is kept within these (no entry gets probability 0). */
export const EPS_MIN = 0.01;
export const EPS_MAX = 0.5;

/** The proposal over each row of a table: the top entries, their log q, and the tail's share. */
export interface TopProposal {
  /** `[R, K]` int32: the top entries (global indices into the memory). */
  top: tf.Tensor;
  /** `[R, K]`: log q of the top entries (any constant per row; renormalized over the top). */
  logqTop: tf.Tensor;
  /** `[R]`: the tail's share eps (0 when the top is the whole memory). */
  eps: tf.Tensor;
  /** M: the memory's entries. */
  size: number;
}

/** Uniform integers in [0, n), `[count]`, from the host generator. */
function uniformInts(rng: Rng, count: number, n: number): Int32Array {
  const u = rng.uniforms(count);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.min(n - 1, Math.floor(u[i]! * n));
  return out;
}

/**
 * The same values as `t`, unknown to the gradient tape: the indices computed from it (top-k,
 * comparisons, argmax) then need no gradient function, and carry none.
 */
export function offTape(t: tf.Tensor): tf.Tensor {
  // A second reference to the same buffer, as the Identity kernel makes it, without the kernel
  // call the tape would record (src/runtime/backprop.ts shares saved tensors the same way).
  const engine = tf.engine() as unknown as { state: { tensorInfo: Map<object, { backend: tf.KernelBackend }> } };
  const backend = engine.state.tensorInfo.get(t.dataId)?.backend ?? tf.backend();
  backend.incRef(t.dataId);
  return tf.engine().makeTensorFromTensorInfo({ dataId: t.dataId, shape: [...t.shape], dtype: t.dtype }, backend);
}

/** `x[r, idx[..., r]]` for a table `x` [R, N] and int32 indices `idx` [n, R]: `[n, R]`, differentiable in `x`. */
function pickPerRow(x: tf.Tensor, idx: tf.Tensor): tf.Tensor {
  const [rows, n] = x.shape as [number, number];
  const offsets = tf.range(0, rows * n, n, 'int32');
  const flat = tf.add(idx, offsets) as tf.Tensor;
  return reshape(gatherRows(reshape(x, [rows * n, 1]), flat), idx.shape);
}

/**
 * The proposal from a full table of log q(a | x), `[R, M]`: its `k` largest entries and a uniform
 * sample of `tail` entries for eps (see the module comment). Differentiable in `table` through the
 * top entries' log q and eps. `tailSample` `[R, tail]` (int32) fixes S (tests enumerate it).
 */
export function proposalFromTable(table: tf.Tensor, k: number, tail: number, rng: Rng, tailSample?: tf.Tensor): TopProposal {
  return proposalFromScores(offTape(table), (idx) => tf.transpose(pickPerRow(table, tf.transpose(idx))), k, tail, rng, tailSample);
}

/**
 * The same proposal with the top entries chosen from `scores` `[R, M]` (no gradient) and the
 * guide's log q (up to a constant per row) read only where it is needed: `logitsAt(idx)` gives
 * the `[R, n]` logits of the entries `idx` `[R, n]` (int32), differentiable. With `scores` the
 * table itself this is `proposalFromTable`. With `scores` from cached keys (issue #26: a shared
 * memory's keys h(m) kept by the trainer, refreshed every N steps) the proposal is still a
 * normalized distribution over all M entries whose density is computed exactly from the current
 * guide: only which K entries make the top comes from the cache. A stale cache picks a worse top
 * (a looser bound), never an invalid one: the top set and S are constants of the step, drawn
 * independently of the address, and q(top), eps and q(a)/q(top) are ratios of the current logits
 * at the K + T entries read, so the per-row normalizer over all M is never needed.
 */
export function proposalFromScores(
  scores: tf.Tensor,
  logitsAt: (idx: tf.Tensor) => tf.Tensor,
  k: number,
  tail: number,
  rng: Rng,
  tailSample?: tf.Tensor,
): TopProposal {
  const m = scores.shape[1]!;
  return proposalFromTop(tf.topk(scores, Math.min(k, m), true).indices, m, logitsAt, tail, rng, tailSample);
}

/**
 * The proposal given its top entries `top` `[R, K]` (int32, distinct in each row, chosen without
 * reference to the address drawn: by the table, by cached scores, or by a search of cached keys'
 * buckets, ./cached_keys.ts) over a memory of `m` entries. Why any such top keeps the bound a
 * bound: `proposalFromScores`.
 */
export function proposalFromTop(
  top: tf.Tensor,
  m: number,
  logitsAt: (idx: tf.Tensor) => tf.Tensor,
  tail: number,
  rng: Rng,
  tailSample?: tf.Tensor,
): TopProposal {
  const [rows, kk] = top.shape as [number, number];
  if (kk === m) return { top, logqTop: logitsAt(top), eps: tf.zeros([rows]), size: m };
  if (tail === 0) return { top, logqTop: logitsAt(top), eps: tf.fill([rows], EPS_MIN), size: m };
  // S: `tail` entries per row, uniform over the memory; those in the top count for nothing.
  const s = tailSample ?? tf.tensor2d(uniformInts(rng, rows * tail, m), [rows, tail], 'int32');
  const inTop = tf.max(tf.cast(tf.equal(tf.expandDims(s, 2), tf.expandDims(top, 1)), 'float32'), 2); // [R, T], off the tape
  // One read of the logits at the K + T entries; a per-row constant c (no gradient) keeps exp finite.
  const both = logitsAt(tf.concat([top, s], 1));
  const c = tf.max(offTape(both), 1, true);
  const shifted = tf.sub(both, c);
  const logqTop = tf.slice(both, [0, 0], [rows, kk]);
  const tailMass = tf.mul(tf.sum(tf.mul(tf.exp(tf.slice(shifted, [0, kk], [rows, tail])), tf.sub(1, inTop)), 1), m / tail);
  const topMass = tf.sum(tf.exp(tf.slice(shifted, [0, 0], [rows, kk])), 1);
  const share = tf.div(tailMass, tf.add(topMass, tailMass));
  return { top, logqTop, eps: tf.clipByValue(share, EPS_MIN, EPS_MAX), size: m };
}

/**
 * `n` draws per row from the proposal, `[n, R]` int32 addresses, with their log r(a), `[n, R]`
 * (differentiable through the proposal's log q and eps).
 */
export function drawFromProposal(p: TopProposal, n: number, rng: Rng): { value: tf.Tensor; logProb: tf.Tensor } {
  const [rows, k] = p.top.shape as [number, number];
  const rest = p.size - k;
  const logTop = tf.sub(p.logqTop, tf.logSumExp(p.logqTop, 1, true)); // [R, K]: log q(a) / q(top)
  const logKeep = tf.log1p(tf.neg(p.eps)); // [R]
  // The draws, off the tape: which top entry (Gumbel-max), whether from the tail, which tail entry.
  const u = tf.tensor3d(rng.uniforms(n * rows * k), [n, rows, k]);
  const gumbel = tf.neg(tf.log(tf.neg(tf.log(tf.clipByValue(u, 1e-12, 1 - 1e-7)))));
  const j = tf.cast(tf.argMax(tf.add(offTape(logTop), gumbel), 2), 'int32'); // [n, R]
  const fromTop = tf.cast(pickPerRow(tf.cast(offTape(p.top), 'float32'), j), 'int32'); // [n, R]: top[r, j[., r]]
  const logTopPicked = pickPerRow(logTop, j);
  if (rest === 0) return { value: fromTop, logProb: tf.add(logTopPicked, logKeep) };
  // The m-th entry outside the top, m uniform in [0, M - K).
  const m = tf.tensor2d(uniformInts(rng, n * rows, rest), [n, rows], 'int32');
  const sorted = tf.neg(tf.topk(tf.neg(offTape(p.top)), k, true).values); // [R, K] ascending
  const below = tf.sub(sorted, tf.range(0, k, 1, 'int32')); // non-top entries below each top entry
  const count = tf.sum(tf.cast(tf.lessEqual(tf.expandDims(below, 0), tf.expandDims(m, 2)), 'int32'), 2);
  const fromTail = tf.add(m, count);
  const isTail = tf.less(tf.tensor2d(rng.uniforms(n * rows), [n, rows]), offTape(p.eps));
  const value = tf.where(isTail, fromTail, fromTop);
  const logTail = tf.sub(tf.log(p.eps), Math.log(rest));
  const logProb = tf.where(isTail, tf.broadcastTo(logTail, [n, rows]), tf.add(logTopPicked, logKeep));
  return { value, logProb };
}

/** log r(a) of given addresses `a` `[n, R]` (int32) under the proposal: for tests and evaluation. */
export function proposalLogProb(p: TopProposal, a: tf.Tensor): tf.Tensor {
  const [, k] = p.top.shape as [number, number];
  const rest = p.size - k;
  const logTop = tf.sub(p.logqTop, tf.logSumExp(p.logqTop, 1, true));
  const hit = tf.cast(tf.equal(tf.expandDims(offTape(a), 2), tf.expandDims(offTape(p.top), 0)), 'float32'); // [n, R, K]
  const inTop = tf.greater(tf.sum(hit, 2), 0);
  // Each row's log q at the matching top entry (0 where none matches; masked below).
  const atTop = tf.sum(tf.mul(hit, tf.expandDims(logTop, 0)), 2);
  const keep = tf.add(atTop, tf.log1p(tf.neg(p.eps)));
  if (rest === 0) return keep;
  const tail = tf.broadcastTo(tf.sub(tf.log(p.eps), Math.log(rest)), a.shape);
  return tf.where(inTop, keep, tail);
}
