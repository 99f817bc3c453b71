import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';

describe('Rng.uniforms', () => {
  it('is uniform on (0, 1): mean and variance within 4 standard errors, nothing at 0 or 1', () => {
    const n = 200_000;
    const u = new Rng(7).uniforms(n);
    let sum = 0;
    let sq = 0;
    for (const x of u) {
      expect(x > 0 && x <= 1).toBe(true);
      sum += x;
      sq += (x - 0.5) ** 2;
    }
    // Var(u) = 1/12; Var((u - 1/2)^2) = 1/80 - 1/144.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(sq / n - 1 / 12)).toBeLessThan(4 * Math.sqrt((1 / 80 - 1 / 144) / n));
    // Neighbouring draws are uncorrelated (lag-1 covariance within 4 SE of 0).
    let cov = 0;
    for (let i = 1; i < n; i++) cov += (u[i]! - 0.5) * (u[i - 1]! - 0.5);
    expect(Math.abs(cov / (n - 1))).toBeLessThan(4 * (1 / 12) / Math.sqrt(n - 1));
  });

  it('is reproducible from the state and costs its generator one step', () => {
    const a = new Rng(3);
    const b = Rng.fromState(a.state());
    expect(Array.from(a.uniforms(10))).toEqual(Array.from(b.uniforms(10)));
    const c = Rng.fromState(a.state());
    a.uniforms(1000);
    c.nextUint32();
    expect(a.state()).toEqual(c.state());
    expect(Array.from(a.uniforms(5))).not.toEqual(Array.from(a.uniforms(5)));
  });
});
