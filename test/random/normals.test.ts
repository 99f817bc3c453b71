import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';

describe('Rng.normals', () => {
  it('is standard normal: mean, variance, tails and skew within 4 standard errors, odd and even lengths', () => {
    for (const n of [200_001, 200_000]) {
      const z = new Rng(11).normals(n);
      expect(z.length).toBe(n);
      let m1 = 0;
      let m2 = 0;
      let m3 = 0;
      let m4 = 0;
      let tail = 0;
      for (const x of z) {
        expect(Number.isFinite(x)).toBe(true);
        m1 += x;
        m2 += x * x;
        m3 += x ** 3;
        m4 += x ** 4;
        if (Math.abs(x) > 1.959964) tail++;
      }
      // Var(z) = 1, Var(z^2) = 2, Var(z^3) = 15, Var(z^4) = 96; P(|z| > 1.96) = 0.05.
      const se = (v: number) => 4 * Math.sqrt(v / n);
      expect(Math.abs(m1 / n)).toBeLessThan(se(1));
      expect(Math.abs(m2 / n - 1)).toBeLessThan(se(2));
      expect(Math.abs(m3 / n)).toBeLessThan(se(15));
      expect(Math.abs(m4 / n - 3)).toBeLessThan(se(96));
      expect(Math.abs(tail / n - 0.05)).toBeLessThan(se(0.05 * 0.95));
      // The two normals of one accepted pair are independent: lag-1 covariance within 4 SE of 0.
      let cov = 0;
      for (let i = 1; i < n; i++) cov += z[i]! * z[i - 1]!;
      expect(Math.abs(cov / (n - 1))).toBeLessThan(4 / Math.sqrt(n - 1));
    }
  });

  it('is reproducible from the state and costs its generator one step', () => {
    const a = new Rng(5);
    const b = Rng.fromState(a.state());
    expect(Array.from(a.normals(9))).toEqual(Array.from(b.normals(9)));
    const c = Rng.fromState(a.state());
    a.normals(1001);
    c.nextUint32();
    expect(a.state()).toEqual(c.state());
    expect(Array.from(a.normals(5))).not.toEqual(Array.from(a.normals(5)));
  });
});
