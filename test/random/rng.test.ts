import { describe, expect, it } from 'vitest';
import { hashSeed, Rng } from '../../src/random/rng.ts';

const draws = (r: Rng, n: number) => Array.from({ length: n }, () => r.nextUint32());

describe('Rng (xoshiro128**)', () => {
  it('equal seeds give equal streams; different seeds and streams differ', () => {
    expect(draws(new Rng(42), 10)).toEqual(draws(new Rng(42), 10));
    expect(draws(new Rng('abc'), 10)).toEqual(draws(new Rng('abc'), 10));
    expect(draws(new Rng(42), 10)).not.toEqual(draws(new Rng(43), 10));
    expect(draws(new Rng(42, 'a'), 10)).not.toEqual(draws(new Rng(42, 'b'), 10));
    expect(hashSeed(1)).not.toBe(hashSeed(1.5));
    expect(hashSeed('a')).not.toBe(hashSeed(97));
  });

  it('next() is uniform on [0, 1): mean and variance within 5 standard errors', () => {
    const r = new Rng(1);
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.next();
      if (!(u >= 0 && u < 1)) outside++;
      s += u;
      s2 += u * u;
    }
    expect(outside).toBe(0);
    expect(Math.abs(s / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(s2 / n - 1 / 3)).toBeLessThan(0.01);
  });

  it('int(n) covers [0, n) evenly', () => {
    const r = new Rng(2);
    const counts = new Array(7).fill(0);
    const n = 70_000;
    for (let i = 0; i < n; i++) counts[r.int(7)]++;
    for (const c of counts) expect(Math.abs(c - n / 7)).toBeLessThan(5 * Math.sqrt((n * (1 / 7) * (6 / 7))));
    expect(() => r.int(0)).toThrow(RangeError);
  });

  it('sample(n, k) gives k distinct values in range (both algorithms)', () => {
    const r = new Rng(3);
    for (const [n, k] of [[1000, 5], [10, 9], [20, 20], [5, 0]] as const) {
      const s = r.sample(n, k);
      expect(s.length).toBe(k);
      expect(new Set(s).size).toBe(k);
      for (const v of s) expect(v >= 0 && v < n).toBe(true);
    }
    expect(() => r.sample(3, 4)).toThrow(RangeError);
    expect([...r.permutation(10)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('normal() has mean 0 and variance 1', () => {
    const r = new Rng(4);
    const n = 50_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
  });

  it('state() and fromState() resume the exact stream; fork() is deterministic', () => {
    const r = new Rng(5);
    draws(r, 3);
    const st = r.state();
    const a = draws(r, 5);
    expect(draws(Rng.fromState(st), 5)).toEqual(a);
    expect(JSON.parse(JSON.stringify(st))).toEqual(st);
    expect(draws(new Rng(6).fork('x'), 4)).toEqual(draws(new Rng(6).fork('x'), 4));
  });
});
