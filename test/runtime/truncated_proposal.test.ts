/**
 * The truncated address proposal (src/runtime/truncated_proposal.ts) against exact enumeration on
 * a memory small enough to enumerate: it is a distribution over every entry, its importance
 * weights are unbiased for p(x) (as the full posterior's are), and the K-sample bound stays below
 * the exact log p(x) within Monte Carlo error while approaching it as K grows.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';
import { proposalLogProb, sampleProposal, truncatedBound, truncatedProposal } from '../../src/runtime/truncated_proposal.ts';

const lse = (xs: number[]) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
};
const meanSe = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
  return { mean: m, se: Math.sqrt(v / xs.length) };
};

/** A toy memory model: M entries, guide scores s (q = softmax(s)), log p(x | a) = ll[a], uniform prior. */
function toy(M: number, seed: number) {
  const rng = new Rng(seed);
  const ll = Array.from({ length: M }, () => -60 + 4 * rng.normal());
  // The target resembles a few entries; the guide's scores know it, roughly.
  for (const a of [3, 17, 42]) ll[a] = -45 + rng.normal();
  const s = ll.map((l) => 0.3 * l + 0.5 * rng.normal());
  const logJoint = (a: number) => ll[a]! - Math.log(M);
  const logPx = lse(ll) - Math.log(M);
  return { rng, ll, s, logJoint, logPx };
}

/** The proposal with the k best scores and a uniform sample of `tail` other entries. */
function proposal(s: number[], k: number, tail: number, rng: Rng) {
  const order = s.map((_, i) => i).sort((a, b) => s[b]! - s[a]!);
  const top = order.slice(0, k);
  const rest = order.slice(k);
  const sample = Array.from(rng.sample(rest.length, tail), (j) => rest[j]!);
  return truncatedProposal(top, top.map((i) => s[i]!), sample.map((i) => s[i]!), s.length);
}

describe('truncated address proposal vs exact enumeration', () => {
  const M = 300;

  it('is a distribution over every entry, and sampling follows its density', () => {
    const { rng, s } = toy(M, 1);
    const p = proposal(s, 16, 8, rng);
    const probs = Array.from({ length: M }, (_, a) => Math.exp(proposalLogProb(p, a)));
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    expect(Math.min(...probs)).toBeGreaterThan(0);
    const n = 40_000;
    const counts = new Float64Array(M);
    for (let i = 0; i < n; i++) counts[sampleProposal(p, rng)]!++;
    // The tail's share and the top entry's frequency within 4 standard errors.
    const inTop = p.top.reduce((c, a) => c + counts[a]!, 0) / n;
    expect(Math.abs(inTop - (1 - p.eps))).toBeLessThan(4 * Math.sqrt((p.eps * (1 - p.eps)) / n));
    const a0 = p.top[0]!;
    const p0 = probs[a0]!;
    expect(Math.abs(counts[a0]! / n - p0)).toBeLessThan(4 * Math.sqrt((p0 * (1 - p0)) / n));
  });

  it('weights are unbiased for p(x), as the full posterior q(a | x) is: E[w] = p(x) within Monte Carlo error', () => {
    const { rng, s, logJoint, logPx } = toy(M, 2);
    const n = 20_000;
    // Truncated: a fresh tail sample S per draw (S is auxiliary randomness).
    const wt: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = proposal(s, 16, 8, rng);
      const a = sampleProposal(p, rng);
      wt.push(Math.exp(logJoint(a) - proposalLogProb(p, a) - logPx));
    }
    // Full memory: a ~ q = softmax(s).
    const logZ = lse(s);
    const q = s.map((x) => Math.exp(x - logZ));
    const wf: number[] = [];
    for (let i = 0; i < n; i++) {
      let u = rng.next();
      let a = 0;
      while (a < M - 1 && (u -= q[a]!) > 0) a++;
      wf.push(Math.exp(logJoint(a) - (s[a]! - logZ) - logPx));
    }
    for (const w of [wt, wf]) {
      const { mean, se } = meanSe(w);
      expect(Math.abs(mean - 1)).toBeLessThan(4 * se + 1e-9);
    }
  });

  it('the K-sample bound is <= the exact log p(x) within noise, and tightens with K', () => {
    const { rng, s, logJoint, logPx } = toy(M, 3);
    const draws = 3000;
    const means: number[] = [];
    for (const K of [1, 4, 32]) {
      const b: number[] = [];
      for (let i = 0; i < draws; i++) b.push(truncatedBound(proposal(s, 16, 8, rng), logJoint, K, rng));
      const { mean, se } = meanSe(b);
      expect(mean).toBeLessThanOrEqual(logPx + 3 * se);
      means.push(mean);
    }
    expect(means[0]!).toBeLessThan(means[1]!);
    expect(means[1]!).toBeLessThan(means[2]!);
    expect(logPx - means[2]!).toBeLessThan(0.5);
  });
});
