/**
 * The native module's own single-precision exp and log1p (src/runtime/blas/vmm_blas.c, Cephes'
 * algorithms, vectorized), through the Bernoulli log-density kernels that use them, against double
 * precision: per element (d = 1), over logits from -100 to 100, both values of x.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadBlas } from '../../src/runtime/blas.ts';

const blas = loadBlas();
const logits = (() => {
  const v: number[] = [0, 1e-8, -1e-8, 1e-3, -1e-3, 87, -87, 88, -88, 100, -100, 20.5, -20.5];
  for (let i = -4000; i <= 4000; i++) v.push(i / 40); // -100 .. 100 in steps of 0.025
  for (let i = 0; i < 2000; i++) v.push(Math.sin(i * 12.9898) * 43758.5453 % 30); // scattered
  return Float32Array.from(v);
})();
const softplus = (l: number) => Math.max(l, 0) + Math.log1p(Math.exp(-Math.abs(l)));

describe.skipIf(!blas?.bernoulli_logprob)('native exp/log1p in the Bernoulli log-density', () => {
  it('x l - softplus(l) to float32 rounding of its terms, for x = 0 and 1', () => {
    for (const xv of [0, 1]) {
      const x = new Float32Array(1).fill(xv);
      const out = new Float32Array(logits.length);
      blas!.bernoulli_logprob!(logits, x, out);
      let worst = 0;
      logits.forEach((l, i) => {
        const want = xv * l - softplus(l);
        // The float32 terms x l and max(l, 0) + log1p(.) are each rounded once: the error scales with |l| + 1.
        worst = Math.max(worst, Math.abs(out[i]! - want) / (Math.abs(l) + 1));
      });
      expect(worst, `x = ${xv}`).toBeLessThan(3e-7);
    }
  });

  it('its gradient dy (x - sigmoid(l)) to float32 rounding of values in [-1, 1] (times dy)', () => {
    for (const xv of [0, 1]) {
      const x = new Float32Array(1).fill(xv);
      const dy = Float32Array.from(logits, (_, i) => (i % 2 ? 1 : -0.5));
      const out = new Float32Array(logits.length);
      blas!.bernoulli_logprob_grad!(dy, logits, x, out);
      let worst = 0;
      logits.forEach((l, i) => {
        const want = dy[i]! * (xv - 1 / (1 + Math.exp(-l)));
        // x - sigmoid(l) is formed in float32, as tfjs's ops do: near x its difference cancels, so the
        // error is absolute (a few 2^-24), relative to dy.
        worst = Math.max(worst, Math.abs(out[i]! - want) / Math.abs(dy[i]!));
      });
      expect(worst, `x = ${xv}`).toBeLessThan(2.5e-7);
    }
  });
});

describe.skipIf(!blas?.finite)('native finite (the trainer’s test of a gradient before its update)', () => {
  it('agrees with Number.isFinite on arrays of any float32, with NaN and infinities anywhere', () => {
    const special = [NaN, Infinity, -Infinity];
    fc.assert(
      fc.property(
        fc.float32Array({ noDefaultInfinity: true, noNaN: true, maxLength: 300 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...special)), { maxLength: 3 }),
        (base, holes) => {
          const a = Float32Array.from(base);
          if (a.length) for (const [i, v] of holes) a[i % a.length] = v;
          expect(blas!.finite!(a)).toBe(a.every((v) => Number.isFinite(v)));
        },
      ),
      { numRuns: 500 },
    );
    // The edges of the exponent: the largest float, subnormals, -0; a NaN as the last of many entries.
    expect(blas!.finite!(Float32Array.of(3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0))).toBe(true);
    const long = new Float32Array(100_003);
    expect(blas!.finite!(long)).toBe(true);
    long[100_002] = NaN;
    expect(blas!.finite!(long)).toBe(false);
  });
});
