/**
 * The Titans neural memory (src/lower/neural_memory.ts) against a slow per-step transcription of
 * its equations in plain float64 JS (Behrouz et al. 2025, arXiv:2501.00663, Sec. 3.1-3.2):
 *   S_t = eta_t S_{t-1} - theta_t grad l(Mem_{t-1}; k_t, v_t),  Mem_t = (1 - alpha_t) Mem_{t-1} + S_t,
 * sequentially (chunk 1) and chunked (every gradient of a chunk at the chunk's starting weights);
 * the closed-form gradient against tfjs autodiff; outer gradients against central finite differences.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  ALPHA_OFFSET,
  assocGrads,
  gatesFromLogits,
  initialState,
  readMemory,
  writeMemory,
  type MemoryActivation,
  type MlpWeights,
} from '../../src/lower/neural_memory.ts';
import { describeBackends, maxRelDiff, values } from '../runtime/backends.ts';

// ---------------------------------------------------------------- a slow float64 reference

type Mat = number[][];
interface JsMlp {
  w: Mat[];
  b: number[][];
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const randn = (r: () => number) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
const actJs = (fn: MemoryActivation, a: number) =>
  fn === 'relu' ? Math.max(0, a) : fn === 'tanh' ? Math.tanh(a) : fn === 'sigmoid' ? 1 / (1 + Math.exp(-a)) : fn === 'softplus' ? Math.log1p(Math.exp(a)) : a;
const actGradJs = (fn: MemoryActivation, a: number) =>
  fn === 'relu' ? (a > 0 ? 1 : 0) : fn === 'tanh' ? 1 - Math.tanh(a) ** 2 : fn === 'sigmoid' ? actJs('sigmoid', a) * (1 - actJs('sigmoid', a)) : fn === 'softplus' ? actJs('sigmoid', a) : 1;

/** Gradient of ||Mem(k) - v||^2 w.r.t. every weight, by backprop written out with loops. */
function gradJs(m: JsMlp, k: number[], v: number[], fn: MemoryActivation): JsMlp {
  const L = m.w.length;
  const hs: number[][] = [k];
  const pre: number[][] = [];
  let h = k;
  for (let l = 0; l < L; l++) {
    const W = m.w[l]!;
    const a = m.b[l]!.map((bj, j) => bj + h.reduce((s, hi, i) => s + hi * W[i]![j]!, 0));
    pre.push(a);
    h = l === L - 1 ? a : a.map((x) => actJs(fn, x));
    if (l < L - 1) hs.push(h);
  }
  const g: JsMlp = { w: [], b: [] };
  let d = h.map((o, j) => 2 * (o - v[j]!));
  for (let l = L - 1; l >= 0; l--) {
    g.w[l] = hs[l]!.map((hi) => d.map((dj) => hi * dj));
    g.b[l] = [...d];
    if (l > 0) {
      const W = m.w[l]!;
      d = hs[l]!.map((_, i) => d.reduce((s, dj, j) => s + dj * W[i]![j]!, 0) * actGradJs(fn, pre[l - 1]![i]!));
    }
  }
  return g;
}

const mapMlp = (a: JsMlp, b: JsMlp, f: (x: number, y: number) => number): JsMlp => ({
  w: a.w.map((W, l) => W.map((row, i) => row.map((x, j) => f(x, b.w[l]![i]![j]!)))),
  b: a.b.map((bb, l) => bb.map((x, j) => f(x, b.b[l]![j]!))),
});
const scale = (a: JsMlp, c: number): JsMlp => mapMlp(a, a, (x) => c * x);
const normalize = (x: number[]) => {
  const n = Math.sqrt(x.reduce((s, y) => s + y * y, 0) + 1e-12);
  return x.map((y) => y / n);
};

/** The equations, one item after another; within a chunk every gradient is taken at the chunk's first weights. */
function writeJs(m0: JsMlp, ks: number[][], vs: number[][], theta: number[], eta: number[], alpha: number[], fn: MemoryActivation, chunk: number): { mem: JsMlp; s: JsMlp } {
  let mem = m0;
  let s = scale(m0, 0);
  for (let t0 = 0; t0 < ks.length; t0 += chunk) {
    const start = mem;
    for (let t = t0; t < Math.min(t0 + chunk, ks.length); t++) {
      const g = gradJs(start, normalize(ks[t]!), vs[t]!, fn);
      s = mapMlp(scale(s, eta[t]!), g, (x, y) => x - theta[t]! * y);
      mem = mapMlp(scale(mem, 1 - alpha[t]!), s, (x, y) => x + y);
    }
  }
  return { mem, s };
}

const flatMlp = (m: JsMlp) => [...m.w.flatMap((W) => W.flat()), ...m.b.flat()];

// ---------------------------------------------------------------- random problems

interface Problem {
  sizes: number[];
  m0: JsMlp;
  ks: number[][][]; // [B][T][in]
  vs: number[][][];
  gl: number[][][]; // gate logits [B][T][3]
}

function problem(seed: number, sizes: number[], B: number, T: number): Problem {
  const r = rng(seed);
  const m0: JsMlp = { w: [], b: [] };
  for (let l = 0; l + 1 < sizes.length; l++) {
    m0.w.push(Array.from({ length: sizes[l]! }, () => Array.from({ length: sizes[l + 1]! }, () => randn(r) / Math.sqrt(sizes[l]!))));
    m0.b.push(Array.from({ length: sizes[l + 1]! }, () => 0.1 * randn(r)));
  }
  const arr = (n: number) => Array.from({ length: n }, () => randn(r));
  const ks = Array.from({ length: B }, () => Array.from({ length: T }, () => arr(sizes[0]!)));
  const vs = Array.from({ length: B }, () => Array.from({ length: T }, () => arr(sizes.at(-1)!)));
  const gl = Array.from({ length: B }, () => Array.from({ length: T }, () => arr(3)));
  return { sizes, m0, ks, vs, gl };
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const LR = 0.7;

function tfInputs(p: Problem) {
  const w0 = p.m0.w.map((W) => tf.tensor2d(W));
  const b0 = p.m0.b.map((b) => tf.tensor1d(b));
  return { w0, b0, k: tf.tensor3d(p.ks), v: tf.tensor3d(p.vs), g: tf.tensor3d(p.gl) };
}

function flatState(m: MlpWeights, b: number): number[] {
  const pick = (t: tf.Tensor) => values(tf.gather(t, [b]));
  return [...m.w.flatMap(pick), ...m.b.flatMap(pick)];
}

describeBackends('neural memory write equals the per-step equations', () => {
  for (const [fn, sizes, chunk] of [
    ['identity', [3, 2], 1],
    ['relu', [4, 5, 3], 1],
    ['tanh', [4, 6, 3], 1],
    ['tanh', [4, 6, 3], 3],
    ['sigmoid', [3, 4, 4, 2], 4],
    ['relu', [4, 5, 3], 8],
  ] as [MemoryActivation, number[], number][]) {
    it(`${fn} mlp(${sizes.join(', ')}), chunk ${chunk}`, () => {
      const B = 2;
      const T = 7;
      const p = problem(11 + chunk + sizes.length, sizes, B, T);
      tf.tidy(() => {
        const x = tfInputs(p);
        const gates = gatesFromLogits(x.g, LR);
        const out = writeMemory(initialState(x.w0, x.b0, B), x.k, x.v, gates, fn, chunk);
        for (let b = 0; b < B; b++) {
          const gl = p.gl[b]!;
          const ref = writeJs(p.m0, p.ks[b]!, p.vs[b]!, gl.map((g) => LR * sig(g[0]!)), gl.map((g) => sig(g[1]!)), gl.map((g) => sig(g[2]! + ALPHA_OFFSET)), fn, chunk);
          expect(maxRelDiff(flatState(out.mem, b), flatMlp(ref.mem))).toBeLessThan(2e-4);
          expect(maxRelDiff(flatState(out.surprise, b), flatMlp(ref.s))).toBeLessThan(2e-4);
        }
      });
    });
  }

  it('momentum 0, forget 0 and unwritten biases make a linear memory the delta rule', () => {
    // W_t = W_{t-1} - theta_t 2 (W k_t - v_t) k_t^T with normalized keys and the bias left alone;
    // chunked: every gradient of a chunk at the chunk's first W. Not under a tape, so each chunk's
    // intermediates are freed as it ends while the unwritten bias passes from state to state.
    const p = problem(17, [4, 3], 2, 7);
    for (const chunk of [1, 3]) {
      tf.tidy(() => {
        const x = tfInputs(p);
        const gates = gatesFromLogits(x.g, LR, 0, 0);
        expect(values(gates.eta).every((e) => e === 0) && values(gates.alpha).every((a) => a === 0)).toBe(true);
        const out = writeMemory(initialState(x.w0, x.b0, 2), x.k, x.v, gates, 'identity', chunk, false);
        for (let b = 0; b < 2; b++) {
          const W = p.m0.w[0]!.map((row) => [...row]);
          const bias = p.m0.b[0]!;
          const ks = p.ks[b]!.map((k) => {
            const n = Math.sqrt(k.reduce((a, x) => a + x * x, 0) + 1e-12);
            return k.map((x) => x / n);
          });
          for (let t0 = 0; t0 < ks.length; t0 += chunk) {
            const W0 = W.map((row) => [...row]);
            for (let t = t0; t < Math.min(ks.length, t0 + chunk); t++) {
              const k = ks[t]!;
              const theta = LR * sig(p.gl[b]![t]![0]!);
              const err = bias.map((bj, j) => bj + k.reduce((a, ki, i) => a + ki * W0[i]![j]!, 0) - p.vs[b]![t]![j]!);
              for (let i = 0; i < k.length; i++) for (let j = 0; j < err.length; j++) W[i]![j]! -= theta * 2 * err[j]! * k[i]!;
            }
          }
          expect(maxRelDiff(flatState(out.mem, b), [...W.flat(), ...bias])).toBeLessThan(2e-4);
        }
      });
    }
  });

  it('chunked writes differ from sequential ones (gradients at the chunk start)', () => {
    const p = problem(5, [4, 6, 3], 1, 6);
    tf.tidy(() => {
      const x = tfInputs(p);
      const gates = gatesFromLogits(x.g, LR);
      const seq = writeMemory(initialState(x.w0, x.b0, 1), x.k, x.v, gates, 'tanh', 1);
      const chk = writeMemory(initialState(x.w0, x.b0, 1), x.k, x.v, gates, 'tanh', 6);
      expect(maxRelDiff(flatState(seq.mem, 0), flatState(chk.mem, 0))).toBeGreaterThan(1e-4);
    });
  });

  it('the closed-form gradient equals tfjs autodiff of ||Mem(k) - v||^2', () => {
    const p = problem(3, [4, 5, 3], 1, 1);
    tf.tidy(() => {
      const x = tfInputs(p);
      const st = initialState(x.w0, x.b0, 1);
      const { h, delta } = assocGrads(st.mem, x.k, x.v, 'tanh');
      const loss = (...ws: tf.Tensor[]) => {
        let a = tf.reshape(x.k, [1, 4]);
        for (let l = 0; l < 2; l++) {
          a = tf.add(tf.matMul(a, ws[l] as tf.Tensor2D), ws[2 + l]!);
          if (l === 0) a = tf.tanh(a);
        }
        return tf.sum(tf.square(tf.sub(a, tf.reshape(x.v, [1, 3]))));
      };
      const grads = tf.grads(loss)([...x.w0, ...x.b0]);
      for (let l = 0; l < 2; l++) {
        const gw = tf.matMul(h[l]!, delta[l]!, true, false);
        expect(maxRelDiff(values(gw), values(grads[l]!))).toBeLessThan(1e-4);
        expect(maxRelDiff(values(delta[l]!), values(grads[2 + l]!))).toBeLessThan(1e-4);
      }
    });
  });
});

describeBackends('outer gradients through the inner updates match finite differences', () => {
  for (const chunk of [1, 3]) {
    it(`chunk ${chunk}`, () => {
      const p = problem(21, [3, 4, 2], 2, 5);
      const r = rng(99);
      const q = tf.tensor3d(Array.from({ length: 2 }, () => Array.from({ length: 2 }, () => [randn(r), randn(r), randn(r)])));
      const c = tf.tensor3d(Array.from({ length: 2 }, () => Array.from({ length: 2 }, () => [randn(r), randn(r)])));
      const x = tfInputs(p);
      // A well-conditioned problem (inner step <= 0.3): with large steps the inner dynamics are
      // chaotic and central differences stop approximating the derivative at any float32 eps.
      // Objective: a fixed projection of the read after the write; differentiated w.r.t. the
      // initial weights, keys, values and gate logits.
      const f = (w0a: tf.Tensor, w0b: tf.Tensor, b0a: tf.Tensor, b0b: tf.Tensor, k: tf.Tensor, v: tf.Tensor, g: tf.Tensor) => {
        const st = writeMemory(initialState([w0a, w0b], [b0a, b0b], 2), k, v, gatesFromLogits(g, 0.3), 'tanh', chunk);
        return tf.sum(tf.mul(readMemory(st.mem, q, 'tanh'), c));
      };
      const args = [x.w0[0]!, x.w0[1]!, x.b0[0]!, x.b0[1]!, x.k, x.v, x.g];
      const grads = tf.grads(f)(args);
      const eps = 2e-3;
      let checked = 0;
      args.forEach((a, ai) => {
        const base = values(a);
        const ga = values(grads[ai]!);
        for (let i = 0; i < base.length; i += Math.max(1, Math.floor(base.length / 4))) {
          const at = (d: number) => {
            const moved = base.slice();
            moved[i] = moved[i]! + d;
            const t = tf.tensor(moved, a.shape);
            const out = tf.tidy(() => f(...(args.map((x, j) => (j === ai ? t : x)) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])).dataSync()[0]!);
            t.dispose();
            return out;
          };
          const fd = (at(eps) - at(-eps)) / (2 * eps);
          expect(Math.abs(fd - ga[i]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
          checked++;
        }
      });
      expect(checked).toBeGreaterThan(20);
    });
  }
});

describeBackends('the momentum cap keeps saturated gates from blowing up the writes', () => {
  it('eta -> 1 with theta at its cap diverges over 32 items; momentum: 0.5 keeps the memory bounded', () => {
    // The regime the outer optimizer reaches within a few steps on titans_omniglot.vmm: every gate
    // logit large, so theta = lr, eta ~ 1 (momentum never decays) and alpha ~ 0 (nothing forgotten),
    // the memory's widths (128, 256, 128) and values of scale 10.
    const r = rng(5);
    const T = 32;
    const [inW, hid, outW] = [128, 256, 128];
    const mat = (a: number, b: number, s: number) => tf.tensor2d(Array.from({ length: a }, () => Array.from({ length: b }, () => s * randn(r))));
    const w0 = [mat(inW, hid, 1 / Math.sqrt(inW)), mat(hid, outW, 1 / Math.sqrt(hid))];
    const b0 = [tf.zeros([hid]), tf.zeros([outW])];
    const k = tf.tensor3d([Array.from({ length: T }, () => Array.from({ length: inW }, () => randn(r)))]);
    const v = tf.tensor3d([Array.from({ length: T }, () => Array.from({ length: outW }, () => 10 * randn(r)))]);
    const g = tf.tensor3d([Array.from({ length: T }, () => [8, 8, -8])]);
    const size = (momentum: number) =>
      tf.tidy(() => {
        const st = writeMemory(initialState(w0, b0, 1), k, v, gatesFromLogits(g, 0.02, momentum), 'relu', 4);
        return Math.max(...st.mem.w.map((w) => tf.max(tf.abs(w)).dataSync()[0]!));
      });
    const free = size(1);
    const capped = size(0.5);
    // Initial weights are O(0.1); after the writes the free memory is orders of magnitude larger.
    expect(Number.isFinite(free) ? free : Infinity).toBeGreaterThan(1e3);
    expect(capped).toBeLessThan(Math.min(1e3, free / 10));
  });
});
