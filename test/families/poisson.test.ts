/**
 * The Poisson family (src/families/poisson.ts), added as one file and one registry line: its
 * log-probability against hand-computed values, its draws' moments (both samplers), the closed-form
 * KL against Monte Carlo, a Poisson likelihood that trains, a Poisson latent trained by VIMCO with
 * its derived guide, and `enumerate` refused for it (its support cannot be listed).
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { applySettings } from '../../src/check/settings.ts';
import { family } from '../../src/families/registry.ts';
import { poissonDraw } from '../../src/families/poisson.ts';
import type { IrProgram } from '../../src/ir/types.ts';
import { Rng } from '../../src/random/rng.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { describeBackends } from '../estimators/backends.ts';

const spec = () => family('Poisson')!;

function stats(xs: number[]) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, variance, se: Math.sqrt(variance / n) };
}

function irOf(source: string): IrProgram {
  const r = frontEnd(source);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  expect(errors.map((d) => d.message)).toEqual([]);
  return r.ir!;
}

describeBackends('Poisson family', () => {
  it('log-probability: x log λ - λ - log x!, by hand', () => {
    // λ = 2.5: p(0) = e^-2.5; p(3) = 2.5^3 e^-2.5 / 6 = 0.213763...; p(7) = 2.5^7 e^-2.5 / 5040 = 610.3515625 * 0.0820849986 / 5040 = 0.00994065...
    const want = [-2.5, Math.log(0.2137630172), Math.log(0.00994065)];
    tf.tidy(() => {
      const d = spec().create([tf.fill([3, 1], 2.5)]);
      const got = Array.from(d.logProb(tf.tensor2d([[0], [3], [7]])).dataSync());
      got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 4));
      // Summed over the event axis: two coordinates with rates 1 and 4 at x = (2, 0): log(e^-1 / 2) + (-4).
      const two = spec().create([tf.tensor2d([[1, 4]])]);
      expect(two.logProb(tf.tensor2d([[2, 0]])).dataSync()[0]!).toBeCloseTo(-1 - Math.log(2) - 4, 4);
    });
  });

  it('draws have mean and variance λ (Knuth below 10, PTRS above), and a differentiable log-probability in λ', () => {
    const rng = new Rng(3);
    for (const lam of [0.7, 4, 25, 300]) {
      const xs = Array.from({ length: 40000 }, () => poissonDraw(lam, rng));
      expect(xs.every((x) => Number.isInteger(x) && x >= 0)).toBe(true);
      const s = stats(xs);
      expect(Math.abs(s.mean - lam), `λ = ${lam}`).toBeLessThan(4 * s.se);
      expect(Math.abs(s.variance - lam) / lam, `λ = ${lam}`).toBeLessThan(0.05);
    }
    tf.tidy(() => {
      const draws = spec().create([tf.tensor2d([[3, 0.5]])]).sample(new Rng(9), [2000]);
      expect(draws.shape).toEqual([2000, 1, 2]);
      const m = tf.mean(draws, [0, 1]).dataSync();
      expect(m[0]!).toBeCloseTo(3, 0);
      expect(m[1]!).toBeCloseTo(0.5, 0);
      // d/dλ log p(x) = x / λ - 1
      const g = tf.grad((rate: tf.Tensor) => spec().create([rate]).logProb(tf.tensor2d([[5]])))(tf.tensor2d([[2]]));
      expect(g.dataSync()[0]!).toBeCloseTo(5 / 2 - 1, 4);
    });
  });

  it('KL in closed form matches Monte Carlo', () => {
    tf.tidy(() => {
      const p = spec().create([tf.tensor2d([[3, 0.8]])]);
      const q = spec().create([tf.tensor2d([[1.5, 2]])]);
      const n = 40000;
      const x = tf.reshape(p.sample(new Rng(4), [n]), [n, 2]);
      const diff = Array.from(tf.sub(p.logProb(x), q.logProb(x)).dataSync());
      const s = stats(diff);
      const closed = spec().kl!([tf.tensor2d([[3, 0.8]])], [tf.tensor2d([[1.5, 2]])]).dataSync()[0]!;
      expect(Math.abs(closed - s.mean)).toBeLessThan(4 * s.se);
    });
  });

  it('a Poisson likelihood trains: the bound rises on count data', () => {
    const ir = applySettings(
      irOf('model counts\ndata y : real[4]\nnet dec = mlp(2, 8, 4)\nlatent z : real[2] ~ Normal(0, 1)\nobserve y ~ Poisson(softplus(dec(z)) + 1e-3)\n'),
      { estimator: 'iwae', k: 2 },
    );
    const rng = new Rng(7);
    const rates = [1, 3, 6, 10];
    const batch = () => ({ inputs: [{ name: 'y', data: Float32Array.from({ length: 16 * 4 }, (_, i) => poissonDraw(rates[i % 4]!, rng)), shape: [16, 4], plates: ['batch' as const] }] });
    const trainer = new Trainer(ir, 1);
    try {
      const bounds: number[] = [];
      for (let s = 0; s < 150; s++) bounds.push(trainer.step(batch()).bound);
      expect(bounds.every(Number.isFinite)).toBe(true);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(bounds.slice(-20))).toBeGreaterThan(mean(bounds.slice(0, 20)) + 1);
    } finally {
      trainer.dispose();
    }
  }, 120_000);

  it('a Poisson latent: a score-function estimator by default with a derived Poisson guide, and enumerate refused at the latent', () => {
    const source = 'model countlatent\ndata x : real[3]\nnet dec = mlp(2, 8, 3)\ndiscrete n : real[2] ~ Poisson(2)\nobserve x ~ Normal(dec(n), 1)\n';
    const ir = irOf(source);
    expect(ir.train.estimator.kind).toBe('vimco');
    const guide = ir.guide.stmts.find((s) => s.stmt === 'site' && s.name === 'n');
    expect(guide).toMatchObject({ dist: { kind: 'family', family: 'Poisson', paramNames: ['rate'] } });
    const trainer = new Trainer(ir, 1);
    try {
      const batch = { inputs: [{ name: 'x', data: Float32Array.from({ length: 8 * 3 }, (_, i) => (i % 3) - 1), shape: [8, 3], plates: ['batch' as const] }] };
      for (let s = 0; s < 5; s++) expect(Number.isFinite(trainer.step(batch).bound)).toBe(true);
    } finally {
      trainer.dispose();
    }
    const refused = frontEnd(source + 'train {\n  estimator = enumerate\n}\n').diagnostics.filter((d) => d.severity === 'error');
    expect(refused.map((d) => d.code)).toEqual(['VMM3010']);
    expect(refused[0]!.message).toContain('cannot be listed');
  });
});
