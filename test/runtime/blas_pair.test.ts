/**
 * Two products at once (src/runtime/blas/vmm_blas.c, the pair helper): a dense layer's dw and dx
 * and an Adam update's two halves, run on the helper thread and the caller at once, give the
 * same bits as on one thread; a forward product split into two halves of its rows agrees to
 * float32 rounding (OpenBLAS blocks a half otherwise than the whole). Over sizes where the pair
 * runs (between its lower bound and the serial threshold), odd row counts, a transposed operand,
 * and many calls in a row (a lost wake-up would hang the test).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadBlas } from '../../src/runtime/blas.ts';

const blas = loadBlas();
// The tests run with OPENBLAS_NUM_THREADS=1 (vitest.config.ts), where pairs are off by default:
// mode 2 turns them on anyway.
const paired = !!blas?.pair;

/** Deterministic values in [-0.5, 0.5) (a sine hash), so both runs see the same inputs. */
const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => ((Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453) % 1) / 2);

/** Runs `f` with pairs off, then in `mode` (2: pairs of serial size; 3: the pool), each into fresh outputs; returns both. */
function offOn<T>(f: () => T, mode = 2): [T, T] {
  const before = blas!.pair!(0);
  try {
    const off = f();
    blas!.pair!(mode);
    const tasks = blas!.paired!();
    const on = f();
    expect(blas!.paired!(), 'the helper ran part of it').toBeGreaterThan(tasks);
    return [off, on];
  } finally {
    blas!.pair!(before);
  }
}

/** The largest difference between a and b over the size of one of k-term sums of values() products. */
function rounding(a: Float32Array, b: Float32Array, k: number): number {
  let worst = 0;
  a.forEach((v, i) => (worst = Math.max(worst, Math.abs(b[i]! - v))));
  return worst / (Math.sqrt(k) / 4);
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe.skipIf(!paired)('native products run two at a time (pair)', () => {
  const initial = blas?.pair?.(-1);
  afterAll(() => {
    if (initial !== undefined) blas!.pair!(initial);
  });

  it('pair() reports and changes the setting', () => {
    const was = blas!.pair!(0);
    expect(blas!.pair!(-1)).toBe(0);
    expect(blas!.pair!(2)).toBe(0);
    expect(blas!.pair!(-1)).toBe(2);
    expect(blas!.pair!(1)).toBe(2);
    expect(blas!.pair!(3)).toBe(1);
    expect(blas!.pair!(-1)).toBe(3);
    blas!.pair!(was);
    const spin = blas!.spin!(0);
    expect(spin).toBeGreaterThanOrEqual(0);
    expect(blas!.spin!(-1)).toBe(0);
    blas!.spin!(spin);
  });

  it('a forward product with bias and relu, in two halves of its rows: the same bits', () => {
    // [n, k] x [k, m], n odd, 2^21..2^25 multiply-adds (the pair's range); and a transposed a.
    for (const [n, k, m, ta] of [[129, 400, 400, false], [128, 256, 400, false], [67, 784, 256, false], [128, 400, 128, true]] as const) {
      const a = values(n * k, 1);
      const b = values(k * m, 2);
      const bias = values(m, 3);
      const [off, on] = offOn(() => {
        const out = new Float32Array(n * m);
        blas!.gemm(a, b, out, 1, n, m, k, ta, false, bias, true);
        return out;
      });
      // Not the same bits: OpenBLAS picks its blocking by the product's shape, and a half has
      // another, so the sums of k terms round differently; they agree to float32 rounding.
      const scale = Math.sqrt(k) / 4; // the size of one output: k terms of sd 1/sqrt(12)^2
      let worst = 0;
      off.forEach((v, i) => (worst = Math.max(worst, Math.abs(on[i]! - v))));
      expect(worst / scale, `${n}x${k}x${m}${ta ? ' (a transposed)' : ''}`).toBeLessThan(k * 2 ** -24);
      expect(off.some((v) => v > 0) && off.some((v) => v === 0)).toBe(true); // the relu did something
    }
  });

  it("a dense layer's backward pass (dw and dx at once), with and without the relu: the same bits", () => {
    for (const [n, k, m] of [[128, 400, 400], [129, 256, 128], [256, 256, 128]] as const) {
      const dy = values(n * m, 4);
      const y = values(n * m, 5);
      const x = values(n * k, 6);
      const w = values(k * m, 7);
      for (const relu of [true, false]) {
        const [off, on] = offOn(() => {
          const dx = new Float32Array(n * k);
          const dw = new Float32Array(k * m);
          const db = new Float32Array(m);
          blas!.dense_grad(dy, relu ? y : null, x, w, dx, dw, db, n, k, m);
          return { dx, dw, db };
        });
        for (const key of ['dx', 'dw', 'db'] as const) expect(bits(on[key]), `${n}x${k}x${m} ${key}${relu ? ' relu' : ''}`).toEqual(bits(off[key]));
      }
    }
  });

  it('an Adam update in place, in two halves: the same bits', () => {
    const n = 313_601; // over the pair's lower bound (2^16), odd
    const [off, on] = offOn(() => {
      const w = values(n, 8);
      const g = values(n, 9);
      const m = values(n, 10).map(Math.abs);
      const v = values(n, 11).map(Math.abs);
      for (let t = 0; t < 3; t++) blas!.adam(w, g, m, v, w, m, v, 0.9, 0.999, 1e-3, 0.5, 1e-8);
      return { w, m, v };
    });
    for (const key of ['w', 'm', 'v'] as const) expect(bits(on[key]), key).toEqual(bits(off[key]));
  });

  it('many paired calls in a row finish (no lost wake-up) and give the same bits each time', () => {
    const [n, k, m] = [64, 256, 256];
    const dy = values(n * m, 12);
    const x = values(n * k, 13);
    const w = values(k * m, 14);
    const [off, on] = offOn(() => {
      const dx = new Float32Array(n * k);
      const dw = new Float32Array(k * m);
      const db = new Float32Array(m);
      const first = new Float32Array(n * k);
      let same = true;
      for (let i = 0; i < 2000; i++) {
        blas!.dense_grad(dy, null, x, w, dx, dw, db, n, k, m);
        if (i === 0) first.set(dx);
        else if (i % 250 === 0) same &&= bits(dx).every((b, j) => b === bits(first)[j]);
      }
      return { dx, same };
    });
    expect(on.same && off.same).toBe(true);
    expect(bits(on.dx)).toEqual(bits(off.dx));
  });
  describe('the pool (mode 3): every product in two halves of its rows', () => {
    it('a product of any size, either operand transposed, with bias and relu: agrees to float32 rounding', () => {
      // Above the serial threshold too (2^25): the pool splits what OpenBLAS would thread.
      for (const [n, k, m, ta, tb] of [[1024, 784, 256, false, false], [129, 400, 400, true, false], [67, 784, 256, false, true], [5, 784, 2048, false, false]] as const) {
        const a = values(n * k, 1);
        const b = values(k * m, 2);
        const bias = values(m, 3);
        const [off, on] = offOn(() => {
          const out = new Float32Array(n * m);
          blas!.gemm(a, b, out, 1, n, m, k, ta, tb, bias, true);
          return out;
        }, 3);
        expect(rounding(off, on, k), `${n}x${k}x${m}`).toBeLessThan(k * 2 ** -24);
      }
    });

    it("a dense layer's backward pass: dw and dx at once give the same bits; dw alone in halves agrees to rounding", () => {
      for (const [n, k, m] of [[128, 400, 400], [256, 256, 256], [64, 256, 128]] as const) {
        const dy = values(n * m, 4);
        const y = values(n * m, 5);
        const x = values(n * k, 6);
        const w = values(k * m, 7);
        for (const wantDx of [true, false]) {
          const [off, on] = offOn(() => {
            const dx = wantDx ? new Float32Array(n * k) : null;
            const dw = new Float32Array(k * m);
            const db = new Float32Array(m);
            blas!.dense_grad(dy, y, x, w, dx, dw, db, n, k, m);
            return { dx, dw, db };
          }, 3);
          expect(bits(on.db)).toEqual(bits(off.db));
          if (wantDx) {
            expect(bits(on.dx!), `${n}x${k}x${m} dx`).toEqual(bits(off.dx!));
            expect(bits(on.dw), `${n}x${k}x${m} dw`).toEqual(bits(off.dw));
          } else {
            expect(rounding(off.dw, on.dw, n), `${n}x${k}x${m} dw alone`).toBeLessThan(n * 2 ** -24);
          }
        }
      }
    });

    it('convolutions (the three kernels) agree to float32 rounding', () => {
      // x [8, 14, 14, 16], filter [3, 3, 16, 32], stride 1, padding 1 (same): y [8, 14, 14, 32].
      const dims = Int32Array.from([8, 14, 14, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1]);
      const x = values(8 * 14 * 14 * 16, 15);
      const f = values(3 * 3 * 16 * 32, 16);
      const dy = values(8 * 14 * 14 * 32, 17);
      const kk = 3 * 3 * 16;
      const run = (mode: number, a: Float32Array, b: Float32Array, size: number) =>
        offOn(() => {
          const out = new Float32Array(size);
          blas!.conv2d!(mode as 0 | 1 | 2, a, b, out, dims);
          return out;
        }, 3);
      const [y0, y1] = run(0, x, f, dy.length);
      expect(rounding(y0, y1, kk)).toBeLessThan(kk * 2 ** -24);
      const [dx0, dx1] = run(1, dy, f, x.length);
      expect(rounding(dx0, dx1, 32 * 9)).toBeLessThan(32 * 9 * 2 ** -24);
      const [df0, df1] = run(2, x, dy, f.length);
      expect(rounding(df0, df1, 8 * 14 * 14)).toBeLessThan(8 * 14 * 14 * 2 ** -24);
    });

    it('the Bernoulli log-density and its gradient, in two halves of rows: the same bits', () => {
      const [rows, d] = [128, 784];
      const l = values(rows * d, 18).map((v) => v * 20);
      const x = values(32 * d, 19).map((v) => (v > 0 ? 1 : 0));
      const dy = values(rows, 20);
      const [lp0, lp1] = offOn(() => {
        const out = new Float32Array(rows);
        blas!.bernoulli_logprob!(l, x, out);
        return out;
      }, 3);
      expect(bits(lp1)).toEqual(bits(lp0));
      const [g0, g1] = offOn(() => {
        const out = new Float32Array(rows * d);
        blas!.bernoulli_logprob_grad!(dy, l, x, out);
        return out;
      }, 3);
      expect(bits(g1)).toEqual(bits(g0));
    });

    it('the finiteness test in two halves finds a NaN or an infinity in either half', () => {
      const a = values(1 << 20, 21);
      const test = () => offOn(() => blas!.finite!(a), 3);
      expect(test()).toEqual([true, true]);
      for (const [i, bad] of [[5, NaN], [(1 << 20) - 3, Infinity], [1 << 19, -Infinity]] as const) {
        const was = a[i]!;
        a[i] = bad;
        expect(test(), `${bad} at ${i}`).toEqual([false, false]);
        a[i] = was;
      }
    });

    it('many calls in a row, the helper sleeping between every two (spin 0) or spinning: all finish, the same bits', () => {
      const [n, k, m] = [64, 256, 256];
      const dy = values(n * m, 22);
      const x = values(n * k, 23);
      const w = values(k * m, 24);
      const spin = blas!.spin!(-1);
      try {
        for (const us of [0, 2000]) {
          blas!.spin!(us);
          const [off, on] = offOn(() => {
            const dx = new Float32Array(n * k);
            const dw = new Float32Array(k * m);
            const db = new Float32Array(m);
            let same = true;
            let first: Uint32Array | undefined;
            for (let i = 0; i < 1500; i++) {
              blas!.dense_grad(dy, null, x, w, dx, dw, db, n, k, m);
              if (!first) first = bits(dx).slice();
              else if (i % 250 === 0) same &&= bits(dx).every((b, j) => b === first![j]);
            }
            return { dx, same };
          }, 3);
          expect(on.same && off.same, `spin ${us}`).toBe(true);
          expect(bits(on.dx), `spin ${us}`).toEqual(bits(off.dx));
        }
      } finally {
        blas!.spin!(spin);
      }
    });
  });
});
