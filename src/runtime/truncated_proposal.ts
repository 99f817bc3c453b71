/**
 * A proposal for a discrete address over a memory too large to score every entry (issue #26): the
 * guide's `q(a | x) = softmax_i(s_i)` is replaced by a proposal that reads only the index's top-k
 * entries T and a uniform sample S of the rest R (|R| = M - k):
 *
 *   r_S(a) = (1 - eps_S) * exp(s_a) / Z_T      for a in T      (Z_T = sum_{i in T} exp(s_i))
 *   r_S(a) = eps_S / (M - k)                    for a in R
 *
 * with the tail's share eps_S = clamp(Zhat_R / (Z_T + Zhat_R), epsMin, epsMax), Zhat_R =
 * (M - k) / |S| * sum_{j in S} exp(s_j) (an unbiased estimate of the tail's mass of q).
 *
 * Why the bound stays a bound: for every fixed S, r_S is a normalized distribution over all M
 * entries with an exactly computable density and full support (eps_S >= epsMin > 0), so the
 * importance weights w = p(x, a) / r_S(a) have E_{r_S}[w] = p(x) and, by Jensen,
 * E[log (1/K) sum_k w_k] <= log p(x) (Burda et al. 2015, arXiv:1509.00519). S is drawn
 * independently of the addresses, so averaging over S keeps both statements. Only the tightness
 * depends on how well T and eps_S cover q; the validity does not.
 *
 * The trainer's and evaluation's use of it is the lowering's `truncated` handler with the tensor
 * form in src/lower/truncated.ts (`address = topk(k, tail)` in the train block), which samples the
 * tail for eps with replacement from the whole memory (entries of the top count for nothing), an
 * equally unbiased estimate. This file is the host-side arithmetic and sampler, checked against
 * enumeration in test/runtime/truncated_proposal.test.ts.
 */
import type { Rng } from '../random/rng.ts';

export interface TruncatedProposal {
  /** Entries of T and their scores s (logits of q). */
  top: readonly number[];
  scores: readonly number[];
  /** log Z_T. */
  logZTop: number;
  /** The tail's share of the proposal. */
  eps: number;
  /** M: entries in the memory. */
  size: number;
}

function logSumExp(xs: readonly number[]): number {
  if (xs.length === 0) return -Infinity;
  let mx = -Infinity;
  for (const x of xs) if (x > mx) mx = x;
  let s = 0;
  for (const x of xs) s += Math.exp(x - mx);
  return mx + Math.log(s);
}

/**
 * The proposal from the top-k entries with their scores and the scores of a uniform sample of the
 * other entries (see the module comment). `epsMin` > 0 keeps every entry reachable.
 */
export function truncatedProposal(
  top: readonly number[],
  scores: readonly number[],
  tailScores: readonly number[],
  size: number,
  o: { epsMin?: number; epsMax?: number } = {},
): TruncatedProposal {
  const epsMin = o.epsMin ?? 0.01;
  const epsMax = o.epsMax ?? 0.5;
  if (top.length !== scores.length || top.length === 0) throw new RangeError('truncatedProposal: give the top entries and one score each');
  if (new Set(top).size !== top.length || top.some((a) => !Number.isInteger(a) || a < 0 || a >= size)) throw new RangeError('truncatedProposal: the top entries must be distinct entries of the memory');
  if (!(epsMin > 0 && epsMin <= epsMax && epsMax < 1)) throw new RangeError(`truncatedProposal: need 0 < epsMin <= epsMax < 1, got ${epsMin}, ${epsMax}`);
  const logZTop = logSumExp(scores);
  const rest = size - top.length;
  let eps = 0;
  if (rest > 0) {
    const logZRest = tailScores.length ? logSumExp(tailScores) + Math.log(rest / tailScores.length) : -Infinity;
    const share = Number.isFinite(logZRest) ? 1 / (1 + Math.exp(logZTop - logZRest)) : 0;
    eps = Math.min(epsMax, Math.max(epsMin, share));
  }
  return { top, scores, logZTop, eps, size };
}

/** log r_S(a) for any entry a of the memory. */
export function proposalLogProb(p: TruncatedProposal, a: number): number {
  const j = p.top.indexOf(a);
  if (j >= 0) return Math.log1p(-p.eps) + p.scores[j]! - p.logZTop;
  return Math.log(p.eps) - Math.log(p.size - p.top.length);
}

/** One address drawn from r_S. */
export function sampleProposal(p: TruncatedProposal, rng: Rng): number {
  const rest = p.size - p.top.length;
  if (rest > 0 && rng.next() < p.eps) {
    // Uniform over the entries outside T: the k-th entry not in T.
    const sorted = [...p.top].sort((x, y) => x - y);
    let a = rng.int(rest);
    for (const t of sorted) if (t <= a) a++;
    return a;
  }
  let u = rng.next();
  for (let j = 0; j < p.top.length; j++) {
    u -= Math.exp(p.scores[j]! - p.logZTop);
    if (u <= 0) return p.top[j]!;
  }
  return p.top[p.top.length - 1]!;
}

/**
 * The K-sample importance-weighted bound with addresses from r_S:
 * log (1/K) sum_k p(x, a_k) / r_S(a_k), given `logJoint(a)` = log p(x, a) (for a model with more
 * latents, any unbiased estimate of p(x | a) p(a) inside keeps it a bound).
 */
export function truncatedBound(p: TruncatedProposal, logJoint: (a: number) => number, k: number, rng: Rng): number {
  const lw: number[] = [];
  for (let i = 0; i < k; i++) {
    const a = sampleProposal(p, rng);
    lw.push(logJoint(a) - proposalLogProb(p, a));
  }
  return logSumExp(lw) - Math.log(k);
}
