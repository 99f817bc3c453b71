/**
 * Families of the registry (src/families/): densities against closed forms computed here in
 * float64, draws tested statistically (means and variances within standard errors), Laplace's KL
 * against a Monte Carlo estimate, lgamma against known values, and every family's spec consistent
 * with what the lowering does with it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';
import { gammaDraw } from '../../src/families/beta.ts';
import { families, family } from '../../src/families/registry.ts';
import { lgamma } from '../../src/families/special.ts';
import { describeBackends } from '../estimators/backends.ts';

/** log Γ by Lanczos (g = 7, n = 9) in float64, an independent reference. */
function lgammaRef(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgammaRef(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

const data = (t: tf.Tensor) => Array.from(t.dataSync());

function stats(xs: number[]) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, variance, se: Math.sqrt(variance / n) };
}

describeBackends('distribution families', () => {
  it('lgamma matches a float64 Lanczos reference from 1e-3 to 1e3', () => {
    const xs = [1e-3, 0.1, 0.5, 1, 1.5, 2, 3.7, 10, 123.4, 1000];
    const got = tf.tidy(() => data(lgamma(tf.tensor1d(xs))));
    xs.forEach((x, i) => expect(got[i]!).toBeCloseTo(lgammaRef(x), x > 100 ? 1 : 4));
  });

  it('Laplace log-density, mean and variance of draws, and KL against Monte Carlo', () => {
    const spec = family('Laplace')!;
    const loc = [0.3, -1.2];
    const scale = [0.5, 2.0];
    tf.tidy(() => {
      const d = spec.create([tf.tensor2d([loc]), tf.tensor2d([scale])]);
      const x = [1.1, -4.0];
      const want = x.reduce((a, v, i) => a - Math.abs(v - loc[i]!) / scale[i]! - Math.log(2 * scale[i]!), 0);
      expect(d.logProb(tf.tensor2d([x])).dataSync()[0]!).toBeCloseTo(want, 4);
      const n = 20000;
      const draws = tf.reshape(d.rsample!(new Rng(5), [n]), [n, 2]).arraySync() as number[][];
      for (let j = 0; j < 2; j++) {
        const s = stats(draws.map((r) => r[j]!));
        expect(Math.abs(s.mean - loc[j]!)).toBeLessThan(4 * s.se);
        // Var = 2 b^2; the SE of a sample variance of a Laplace is about sqrt((kurtosis - 1) / n) Var = sqrt(5/n) Var.
        expect(Math.abs(s.variance - 2 * scale[j]! ** 2)).toBeLessThan(4 * Math.sqrt(5 / n) * 2 * scale[j]! ** 2);
      }
      // KL(p || q) closed form against the Monte Carlo mean of log p - log q under p.
      const q = spec.create([tf.tensor2d([[0, 0]]), tf.tensor2d([[1, 1]])]);
      const sample = d.rsample!(new Rng(9), [n]); // [n, 1, 2]
      const diffs = data(tf.sub(d.logProb(sample), q.logProb(sample)));
      const mc = stats(diffs);
      const kl = spec.kl!([tf.tensor2d([loc]), tf.tensor2d([scale])], [tf.tensor2d([[0, 0]]), tf.tensor2d([[1, 1]])]).dataSync()[0]!;
      expect(Math.abs(kl - mc.mean)).toBeLessThan(4 * mc.se);
    });
  });

  it('Laplace draws are differentiable in loc and scale (reparameterized)', () => {
    const spec = family('Laplace')!;
    const g = tf.tidy(() =>
      tf.grads((l: tf.Tensor, s: tf.Tensor) => tf.mean(spec.create([l, s]).rsample!(new Rng(1), [1000])))([tf.tensor1d([0.5]), tf.tensor1d([1.5])]).map(data),
    );
    expect(g[0]![0]!).toBeCloseTo(1, 4); // d mean / d loc = 1
    expect(Math.abs(g[1]![0]!)).toBeLessThan(0.15); // E[noise] = 0: small but nonzero for 1000 draws
  });

  it('Beta log-density matches the closed form, and draws have the right mean and variance', () => {
    const spec = family('Beta')!;
    const a = [2, 0.7];
    const b = [5, 0.4];
    tf.tidy(() => {
      const d = spec.create([tf.tensor2d([a]), tf.tensor2d([b])]);
      const x = [0.25, 0.9];
      const want = x.reduce((s, v, i) => s + (a[i]! - 1) * Math.log(v) + (b[i]! - 1) * Math.log(1 - v) - (lgammaRef(a[i]!) + lgammaRef(b[i]!) - lgammaRef(a[i]! + b[i]!)), 0);
      expect(d.logProb(tf.tensor2d([x])).dataSync()[0]!).toBeCloseTo(want, 3);
      const n = 20000;
      const draws = tf.reshape(d.sample(new Rng(3), [n]), [n, 2]).arraySync() as number[][];
      for (let j = 0; j < 2; j++) {
        const s = stats(draws.map((r) => r[j]!));
        const m = a[j]! / (a[j]! + b[j]!);
        const v = (a[j]! * b[j]!) / ((a[j]! + b[j]!) ** 2 * (a[j]! + b[j]! + 1));
        expect(Math.abs(s.mean - m)).toBeLessThan(4 * s.se);
        expect(Math.abs(s.variance - v) / v).toBeLessThan(0.05);
      }
    });
  });
});

it('Gamma draws (Marsaglia & Tsang) have mean and variance equal to the shape', () => {
  const rng = new Rng(11);
  for (const shape of [0.3, 1, 4.5]) {
    const xs = Array.from({ length: 40000 }, () => gammaDraw(shape, rng));
    const s = stats(xs);
    expect(Math.abs(s.mean - shape)).toBeLessThan(4 * s.se);
    expect(Math.abs(s.variance - shape) / shape).toBeLessThan(0.06);
  }
});

it('every family in the registry has a usage text, parameters, and rsample exactly when reparameterized', () => {
  for (const f of families()) {
    expect(f.usage.length).toBeGreaterThan(0);
    expect(f.params.length).toBeGreaterThan(0);
    const params = f.params.map(() => tf.ones([1, 2]));
    expect(typeof f.create(params).rsample === 'function', f.name).toBe(f.reparameterized);
    tf.dispose(params);
  }
});
