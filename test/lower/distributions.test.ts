/**
 * Distributions: log-probs against closed forms, moments of samples within standard-error
 * tolerances, KL closed form vs Monte Carlo, relaxed samples, reproducibility. Seeded; every test
 * runs on every available backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { Bernoulli, Categorical, kl, Normal, RelaxedCategorical } from '../../src/families/distributions.ts';
import { Rng } from '../../src/random/rng.ts';
import { describeBackends, toArray } from '../estimators/backends.ts';

const LOG_2PI = Math.log(2 * Math.PI);
const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

function meanVar(xs: number[]): { mean: number; variance: number } {
  const n = xs.length;
  const mean = xs.reduce((a, x) => a + x, 0) / n;
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  return { mean, variance };
}

/** Column `d` of a row-major [N, D] array. */
function column(a: number[], d: number, D: number): number[] {
  const out: number[] = [];
  for (let i = d; i < a.length; i += D) out.push(a[i]!);
  return out;
}

/** Asserts |mean(xs) - expected| < z * SE. */
function expectMeanWithinSE(xs: number[], expected: number, z = 4, label = ''): void {
  const { mean, variance } = meanVar(xs);
  const se = Math.sqrt(variance / xs.length);
  expect(Math.abs(mean - expected), `${label}: mean ${mean} vs ${expected} (SE ${se})`).toBeLessThan(z * se + 1e-6);
}

const N = 20000;

describeBackends('distributions', () => {
  it('Rng is reproducible and its state round-trips', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const xs = [a.nextSeed(), a.nextSeed(), a.nextSeed()];
    expect([b.nextSeed(), b.nextSeed(), b.nextSeed()]).toEqual(xs);
    const c = Rng.fromState(a.state());
    expect(c.nextSeed()).toBe(a.nextSeed());
    expect(new Rng(8).nextSeed()).not.toBe(new Rng(7).nextSeed());
  });

  it('Normal.logProb, entropy and KL match the closed forms (summed over the last axis)', () => {
    const loc = [0.5, -1, 2];
    const scale = [1, 0.3, 2.5];
    const x = [[0.1, -1.2, 5], [3, 0, -2]];
    const d = new Normal(tf.tensor1d(loc), tf.tensor1d(scale));
    const lp = toArray(d.logProb(tf.tensor2d(x)));
    for (let r = 0; r < 2; r++) {
      let want = 0;
      for (let i = 0; i < 3; i++) want += -0.5 * ((x[r]![i]! - loc[i]!) / scale[i]!) ** 2 - Math.log(scale[i]!) - 0.5 * LOG_2PI;
      expect(lp[r]).toBeCloseTo(want, 4);
    }
    const h = toArray(d.entropy());
    expect(h).toHaveLength(1);
    expect(h[0]).toBeCloseTo(scale.reduce((a, s) => a + Math.log(s) + 0.5 * (1 + LOG_2PI), 0), 4);
    const q = new Normal(tf.tensor1d([0, 0, 1]), tf.tensor1d([1, 1, 1]));
    let want = 0;
    for (let i = 0; i < 3; i++) want += Math.log(1 / scale[i]!) + (scale[i]! ** 2 + (loc[i]! - [0, 0, 1][i]!) ** 2) / 2 - 0.5;
    expect(toArray(kl(d, q))[0]).toBeCloseTo(want, 4);
    expect(toArray(kl(d, d))[0]).toBeCloseTo(0, 5);
  });

  it('Normal.rsampleScored scores its draw as logProb does, also with a scale shared by the coordinates', () => {
    tf.tidy(() => {
      for (const [loc, scale] of [
        [tf.tensor2d([[0.5, -1, 2]]), tf.tensor2d([[0.3, 1.2, 2]])],
        [tf.tensor2d([[0.5, -1, 2]]), tf.scalar(0.7)],
        [tf.scalar(0), tf.tensor2d([[1, 2, 3]])],
      ] as [tf.Tensor, tf.Tensor][]) {
        const d = new Normal(loc, scale);
        const r = d.rsampleScored(new Rng(3), [5]);
        const direct = toArray(d.logProb(r.value));
        toArray(r.logProb).forEach((v, i) => expect(v).toBeCloseTo(direct[i]!, 4));
      }
    });
  });

  it('Bernoulli.logProb is exact and finite for extreme logits (-softplus form)', () => {
    const logits = [-100, -2, 0, 3, 100];
    const d = new Bernoulli(tf.tensor2d([logits]));
    for (const xs of [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]]) {
      const got = toArray(d.logProb(tf.tensor2d([xs])))[0]!;
      const want = xs.reduce((a, x, i) => a - (x === 1 ? softplus(-logits[i]!) : softplus(logits[i]!)), 0);
      expect(Number.isFinite(got)).toBe(true);
      expect(Math.abs(got - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
    }
    // Entropy and KL vs hand computation.
    const p = [0.2, 0.5, 0.9];
    const lg = p.map((v) => Math.log(v / (1 - v)));
    const qp = [0.5, 0.1, 0.6];
    const lq = qp.map((v) => Math.log(v / (1 - v)));
    const bp = new Bernoulli(tf.tensor1d(lg));
    const bq = new Bernoulli(tf.tensor1d(lq));
    const H = p.reduce((a, v) => a - v * Math.log(v) - (1 - v) * Math.log(1 - v), 0);
    expect(toArray(bp.entropy())[0]).toBeCloseTo(H, 4);
    const KL = p.reduce((a, v, i) => a + v * Math.log(v / qp[i]!) + (1 - v) * Math.log((1 - v) / (1 - qp[i]!)), 0);
    expect(toArray(kl(bp, bq))[0]).toBeCloseTo(KL, 4);
  });

  it('Categorical.logProb uses logSoftmax; uniform is -log N; entropy and KL by hand', () => {
    const logits = [[1, 2, 3, -1], [0, 0, 5, 0]];
    const d = new Categorical(tf.tensor2d(logits));
    const v = tf.tensor2d([[2, 0], [3, 2]], [2, 2], 'int32'); // [K=2, B=2]
    const got = toArray(d.logProb(v));
    const lse = (r: number[]): number => Math.log(r.reduce((a, x) => a + Math.exp(x), 0));
    const want = [[2, 0], [3, 2]].flatMap((row) => row.map((idx, b) => logits[b]![idx]! - lse(logits[b]!)));
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 4));
    const u = Categorical.uniform(5, [3]);
    toArray(u.logProb(tf.tensor1d([0, 4, 2], 'int32'))).forEach((g) => expect(g).toBeCloseTo(-Math.log(5), 5));
    toArray(u.entropy()).forEach((g) => expect(g).toBeCloseTo(Math.log(5), 5));
    const probs = logits.map((r) => r.map((x) => Math.exp(x - lse(r))));
    const H = probs.map((p) => -p.reduce((a, x) => a + x * Math.log(x), 0));
    toArray(d.entropy()).forEach((g, i) => expect(g).toBeCloseTo(H[i]!, 4));
    const klU = probs.map((p) => p.reduce((a, x) => a + x * (Math.log(x) + Math.log(4)), 0));
    toArray(kl(d, Categorical.uniform(4))).forEach((g, i) => expect(g).toBeCloseTo(klU[i]!, 4));
    expect(() => d.logProb(tf.tensor1d([0.5, 1]))).toThrow(/int32/);
    expect(() => kl(d, new Normal(tf.zeros([1]), tf.ones([1])))).toThrow(/no closed form/);
  });

  it('Normal samples: mean and variance within standard-error tolerance; rsample gradients', () => {
    const loc = [1.5, -2, 0];
    const scale = [0.5, 2, 1];
    const d = new Normal(tf.tensor1d(loc), tf.tensor1d(scale));
    const xs = d.sample(new Rng(1), [N]);
    expect(xs.shape).toEqual([N, 3]);
    const a = toArray(xs);
    for (let i = 0; i < 3; i++) {
      const col = column(a, i, 3);
      expectMeanWithinSE(col, loc[i]!, 4, `normal mean ${i}`);
      // Var of the sample variance of a Normal: 2 sigma^4 / (n - 1).
      const { variance } = meanVar(col);
      const seVar = scale[i]! ** 2 * Math.sqrt(2 / (N - 1));
      expect(Math.abs(variance - scale[i]! ** 2)).toBeLessThan(4 * seVar);
    }
    // Reparameterization: d/dloc sum(x) = n; d/dscale sum(x) = sum(eps) (recovered by the same seed).
    const locT = tf.tensor1d(loc);
    const scaleT = tf.tensor1d(scale);
    const [gl, gs] = tf.grads((l: tf.Tensor, s: tf.Tensor) => tf.sum(new Normal(l, s).rsample(new Rng(5), [10])))([locT, scaleT]);
    toArray(gl!).forEach((g) => expect(g).toBeCloseTo(10, 4));
    const eps = tf.div(tf.sub(new Normal(locT, scaleT).rsample(new Rng(5), [10]), locT), scaleT);
    const want = toArray(tf.sum(eps, 0));
    toArray(gs!).forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 3));
    // `sample` carries no gradient.
    const g0 = tf.grad((l: tf.Tensor) => tf.sum(new Normal(l, scaleT).sample(new Rng(5), [10])))(locT);
    toArray(g0).forEach((g) => expect(g).toBe(0));
  });

  it('Bernoulli and Categorical sample frequencies within standard-error tolerance', () => {
    const p = [0.1, 0.5, 0.97];
    const b = new Bernoulli(tf.tensor1d(p.map((v) => Math.log(v / (1 - v)))));
    const bs = toArray(b.sample(new Rng(2), [N]));
    p.forEach((v, i) => expectMeanWithinSE(column(bs, i, 3), v, 4, `bernoulli ${i}`));

    const logits = [0.3, -1, 2, 0];
    const c = new Categorical(tf.tensor1d(logits));
    const cs = c.sample(new Rng(3), [N]);
    expect(cs.dtype).toBe('int32');
    expect(cs.shape).toEqual([N]);
    const idx = toArray(cs);
    const z = logits.reduce((a, x) => a + Math.exp(x), 0);
    logits.forEach((l, i) => {
      expectMeanWithinSE(idx.map((v) => (v === i ? 1 : 0)), Math.exp(l) / z, 4, `categorical ${i}`);
    });
    // Batched logits [B, N] with sampleShape [K]: [K, B].
    const cb = new Categorical(tf.tensor2d([[0, 0, 9], [9, 0, 0]]));
    const s = cb.sample(new Rng(4), [5]);
    expect(s.shape).toEqual([5, 2]);
    const sv = toArray(s);
    for (let k = 0; k < 5; k++) expect([sv[2 * k], sv[2 * k + 1]]).toEqual([2, 0]);
  });

  it('sampling is reproducible from the seed', () => {
    const d = new Normal(tf.zeros([4]), tf.ones([4]));
    expect(toArray(d.sample(new Rng(11), [3]))).toEqual(toArray(d.sample(new Rng(11), [3])));
    const c = new Categorical(tf.zeros([6]));
    expect(toArray(c.sample(new Rng(12), [50]))).toEqual(toArray(c.sample(new Rng(12), [50])));
    expect(toArray(c.sample(new Rng(12), [50]))).not.toEqual(toArray(c.sample(new Rng(13), [50])));
  });

  it('KL closed form matches a Monte Carlo estimate, and entropy matches -E[log p]', () => {
    const pairs: [string, () => [import('../../src/families/distributions.ts').Distribution, import('../../src/families/distributions.ts').Distribution]][] = [
      ['Normal', () => [new Normal(tf.tensor1d([0.3, -1]), tf.tensor1d([0.7, 1.5])), new Normal(tf.tensor1d([0, 0]), tf.tensor1d([1, 1]))]],
      ['Bernoulli', () => [new Bernoulli(tf.tensor1d([1.2, -0.4, 0])), new Bernoulli(tf.tensor1d([-0.5, 0.5, 2]))]],
      ['Categorical', () => [new Categorical(tf.tensor1d([1, 0, -1, 2])), new Categorical(tf.tensor1d([0, 0.5, 0, 0]))]],
    ];
    let seed = 100;
    for (const [name, make] of pairs) {
      const [p, q] = make();
      const x = p.sample(new Rng(seed++), [N]);
      const diff = toArray(tf.sub(p.logProb(x), q.logProb(x)));
      expectMeanWithinSE(diff, toArray(kl(p, q))[0]!, 4, `KL ${name}`);
      const nlp = toArray(tf.neg(p.logProb(x)));
      expectMeanWithinSE(nlp, toArray(p.entropy())[0]!, 4, `entropy ${name}`);
    }
  });

  it('Gumbel-softmax samples are rows summing to 1; argmax is the Gumbel-max sample; low temperature is near one-hot', () => {
    const logits = tf.tensor2d([[0.5, -1, 2, 0], [0, 0, 0, 0], [3, -3, 0, 1]]);
    const c = new Categorical(logits);
    const y = c.gumbelSoftmax(new Rng(21), 0.5, [7]);
    expect(y.shape).toEqual([7, 3, 4]);
    const sums = toArray(tf.sum(y, -1));
    sums.forEach((s) => expect(s).toBeCloseTo(1, 5));
    // Same seed: the relaxed sample's argmax is the hard Gumbel-max sample.
    expect(toArray(tf.argMax(y, -1))).toEqual(toArray(c.sample(new Rng(21), [7])));
    // At temperature 0.001 a row is one-hot unless its two largest perturbed logits are within ~0.005.
    const cold = toArray(tf.max(c.gumbelSoftmax(new Rng(22), 0.001, [50]), -1));
    expect(cold.filter((m) => m > 0.99).length).toBeGreaterThanOrEqual(145);
    // Differentiable w.r.t. the logits.
    const g = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(new Categorical(l).gumbelSoftmax(new Rng(23), 1, [3]), tf.tensor1d([1, 2, 3, 4]))))(logits);
    expect(toArray(tf.sum(tf.abs(g)))[0]).toBeGreaterThan(0);
  });

  it('ExpConcrete density integrates to 1 over the log-ratio (n = 2), for several temperatures', () => {
    for (const lam of [0.5, 1, 2]) {
      const d = new RelaxedCategorical(tf.tensor1d([0.3, -0.5]), lam);
      // Grid over the log-ratio t = y_1 - y_2; y = logSoftmax([t, 0]).
      const G = 8000;
      const lo = -60;
      const hi = 60;
      const h = (hi - lo) / G;
      const t = tf.add(tf.mul(tf.range(0, G, 1, 'float32'), h), lo + h / 2);
      const y = tf.logSoftmax(tf.stack([t, tf.zerosLike(t)], 1));
      const total = toArray(tf.sum(tf.exp(d.logProb(y))))[0]! * h;
      expect(total).toBeCloseTo(1, 3);
    }
    // The density of its own samples is finite.
    const d = new RelaxedCategorical(tf.tensor1d([0.3, -0.5, 2, 0]), 0.3);
    const lp = toArray(d.logProb(d.rsample(new Rng(31), [100])));
    lp.forEach((v) => expect(Number.isFinite(v)).toBe(true));
  });

  it('validates arguments and names itself in errors', () => {
    expect(() => new Categorical(tf.scalar(1))).toThrow(/Categorical/);
    expect(() => new Normal(tf.zeros([2, 3]), tf.ones([4]))).toThrow(/Normal.*broadcast/);
    expect(() => new RelaxedCategorical(tf.zeros([3]), 0)).toThrow(/temperature/);
    expect(() => new Normal(tf.zeros([3]), tf.ones([3])).sample(new Rng(1), [0])).toThrow(/sampleShape/);
  });
});
