/**
 * Statistical checks of the score-function estimators on a model small enough to enumerate
 * (test/estimators/toy.ts): unbiasedness against the exact gradient (tf.grad of the enumerated
 * objective), the bound's relation to log p(x) and to K, and variance reduction by the baselines.
 * Seeded and deterministic.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';
import { ReinforceEstimator } from '../../src/estimators/reinforce.ts';
import type { Estimator, EstimatorState } from '../../src/estimators/types.ts';
import { VimcoEstimator } from '../../src/estimators/vimco.ts';
import { describeBackends } from './backends.ts';
import { columnStats, exactGradient, exactObjectiveJs, logEvidence, makeDraws, type Toy } from './toy.ts';

/** Guide far from the posterior, log-likelihoods offset by -5 so that an un-baselined signal is large. */
const TOY: Toy = { theta: [0.5, -0.3, 1.0, -1.2], ell: [-6.0, -8.0, -4.5, -7.0] };
const M = TOY.theta.length;
const K = 3;
const N = 20000;
const SEED = 1234;

interface DrawResult {
  dTheta: ReturnType<typeof columnStats>;
  dEll: ReturnType<typeof columnStats>;
  bound: ReturnType<typeof columnStats>;
  /** Raw per-draw theta gradients [N, M]. */
  rawTheta: Float32Array;
  extraLossGradZero: boolean;
}

/** N per-draw gradients of one estimator on the toy, all draws sharing the seed. */
function drawGradients(est: Estimator, state: EstimatorState, opts: { baseline?: number } = {}): DrawResult {
  return tf.tidy(() => {
    const d = makeDraws(TOY, K, N, new Rng(SEED));
    const baseline = opts.baseline === undefined ? undefined : tf.fill([N], opts.baseline);
    const f = (th: tf.Tensor, el: tf.Tensor): tf.Scalar => {
      const terms = { ...d.terms(th, el), ...(baseline ? { baseline } : {}) };
      const r = est.estimate(terms, state);
      return tf.mul(r.surrogate, N) as tf.Scalar;
    };
    const [gTheta, gEll] = tf.grads(f)([d.thetaN, d.ellN]);
    const r = est.estimate({ ...d.terms(d.thetaN, d.ellN), ...(baseline ? { baseline } : {}) }, state);
    let extraLossGradZero = true;
    if (r.extraLoss) {
      const eg = tf.grads((th: tf.Tensor, el: tf.Tensor) => est.estimate({ ...d.terms(th, el), baseline: baseline! }, state).extraLoss!)([
        d.thetaN,
        d.ellN,
      ]);
      extraLossGradZero = eg.every((g) => tf.max(tf.abs(g)).dataSync()[0] === 0);
    }
    const rawTheta = gTheta!.dataSync() as Float32Array;
    return {
      dTheta: columnStats(rawTheta, N, M),
      dEll: columnStats(gEll!.dataSync() as Float32Array, N, M),
      bound: columnStats(r.bound.dataSync() as Float32Array, N, 1),
      rawTheta: Float32Array.from(rawTheta),
      extraLossGradZero,
    };
  });
}

function expectUnbiased(label: string, got: ReturnType<typeof columnStats>, exact: number[]): void {
  const zs = exact.map((e, j) => Math.abs(got.mean[j]! - e) / got.se[j]!);
  console.log(`${label}: max |mean - exact| / SE = ${Math.max(...zs).toFixed(2)}`);
  for (let j = 0; j < exact.length; j++) {
    const z = Math.abs(got.mean[j]! - exact[j]!) / got.se[j]!;
    expect(z, `${label}[${j}]: mean ${got.mean[j]} vs exact ${exact[j]} (SE ${got.se[j]})`).toBeLessThan(4);
  }
}

/** A running-baseline state as a trainer would have it after some steps: c near (not at) E[L]. */
function warmState(): EstimatorState {
  return { steps: 10, runningMean: exactObjectiveJs(TOY, K) + 0.3 };
}

describeBackends('score-function estimators on an enumerable toy model', () => {
  let exact: ReturnType<typeof exactGradient>;
  beforeAll(() => {
    exact = exactGradient(TOY, K); // after the backend is selected
  });
  const results = new Map<string, DrawResult>();
  const resultFor = (label: string): DrawResult => {
    if (!results.has(label)) {
      const [, make, state, baseline] = cases.find((c) => c[0] === label)!;
      results.set(label, drawGradients(make(), state(), baseline === undefined ? {} : { baseline }));
    }
    return results.get(label)!;
  };
  const totalVar = (label: string): number => resultFor(label).dTheta.variance.reduce((a, v) => a + v, 0);

  const cases: [string, () => Estimator, () => EstimatorState, number | undefined][] = [
    ['vimco geometric', () => new VimcoEstimator(K, 'geometric'), () => ({ steps: 0, runningMean: null }), undefined],
    ['vimco arithmetic', () => new VimcoEstimator(K, 'arithmetic'), () => ({ steps: 0, runningMean: null }), undefined],
    ['reinforce none', () => new ReinforceEstimator(K, { baseline: 'none' }), () => ({ steps: 0, runningMean: null }), undefined],
    ['reinforce running', () => new ReinforceEstimator(K, { baseline: 'running' }), warmState, undefined],
    ['reinforce nvil', () => new ReinforceEstimator(K, { baseline: 'nvil' }), warmState, -0.2],
  ];

  for (const [label] of cases) {
    it(`${label}: mean of ${N} gradient draws matches the exact gradient within 4 SE`, () => {
      const r = resultFor(label);
      expectUnbiased(`${label} dθ`, r.dTheta, exact.dTheta);
      expectUnbiased(`${label} dℓ`, r.dEll, exact.dEll);
      // The bound is the K-sample IWAE bound: its mean matches the exact E[L_K], below log p(x).
      expect(Math.abs(r.bound.mean[0]! - exact.value)).toBeLessThan(4 * r.bound.se[0]! + 1e-5);
      expect(r.bound.mean[0]!).toBeLessThan(logEvidence(TOY));
      expect(r.extraLossGradZero).toBe(true);
    });
  }

  it('variance: VIMCO and REINFORCE+running baseline have >= 2x lower total dθ variance than plain REINFORCE', () => {
    const none = totalVar('reinforce none');
    for (const label of ['vimco geometric', 'vimco arithmetic', 'reinforce running', 'reinforce nvil']) {
      const ratio = none / totalVar(label);
      console.log(`variance ratio reinforce-none / ${label}: ${ratio.toFixed(1)} (total var ${totalVar(label).toExponential(3)} vs ${none.toExponential(3)})`);
      expect(ratio, label).toBeGreaterThan(2);
    }
  });

  it('negative control: dropping the score-function term gives a gradient the 4-SE check rejects', () => {
    const zs = tf.tidy(() => {
      const d = makeDraws(TOY, K, N, new Rng(SEED));
      const [g] = tf.grads((th: tf.Tensor) => {
        const l = d.terms(th, d.ellN).logWeights;
        return tf.mul(tf.sum(tf.sub(tf.logSumExp(l, 0), Math.log(K))), 1) as tf.Scalar; // pathwise only
      })([d.thetaN]);
      const st = columnStats(g!.dataSync() as Float32Array, N, M);
      return st.mean.map((m, j) => Math.abs(m - exact.dTheta[j]!) / st.se[j]!);
    });
    console.log(`negative control (no score term): max |mean - exact| / SE = ${Math.max(...zs).toFixed(1)}`);
    expect(Math.max(...zs)).toBeGreaterThan(10);
  });

  it('exact E[L_K] increases with K = 1, 2, 4, 8 and stays below log p(x)', () => {
    const logpx = logEvidence(TOY);
    const values = [1, 2, 4, 8].map((k) => exactObjectiveJs(TOY, k));
    console.log(`E[L_K], K = 1, 2, 4, 8: ${values.map((v) => v.toFixed(4)).join(', ')}; log p(x) = ${logpx.toFixed(4)}`);
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThan(values[i - 1]!);
    for (const v of values) expect(v).toBeLessThan(logpx);
    // The tf enumeration agrees with the float64 one.
    expect(exact.value).toBeCloseTo(exactObjectiveJs(TOY, K), 4);
  });
});
