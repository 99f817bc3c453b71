/**
 * Estimator unit tests: VIMCO signals against the plain-JS reference, stopGradient, the IWAE-family
 * objectives, REINFORCE state updates, makeEstimator, argument validation, and tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { estimatorSettings, makeEstimator } from '../../src/estimators/index.ts';
import { IwaeEstimator } from '../../src/estimators/iwae.ts';
import { ReinforceEstimator } from '../../src/estimators/reinforce.ts';
import { Rng } from '../../src/random/rng.ts';
import { stopGradient } from '../../src/kernels/stop_gradient.ts';
import type { Estimator, EstimatorTerms } from '../../src/estimators/types.ts';
import { VimcoEstimator, vimcoSignals, vimcoSignalsReference } from '../../src/estimators/vimco.ts';
import type { EstimatorSettings } from '../../src/ir/types.ts';
import { RelaxedCategorical } from '../../src/families/distributions.ts';
import { describeBackends, toArray } from './backends.ts';

/** Random l [K][B] from a seeded JS generator: roughly N(-3, 3^2) via Box-Muller. */
function randomLogWeights(k: number, b: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: k }, () =>
    Array.from({ length: b }, () => {
      const u = rng.nextFloat() + 1e-12;
      const v = rng.nextFloat();
      return -3 + 3 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }),
  );
}

const settings = (kind: EstimatorSettings['kind'], k: number, args: EstimatorSettings['args'] = {}): EstimatorSettings => estimatorSettings(kind, { k, args });

describeBackends('estimators', () => {
  it('stopGradient: identity forward, zero gradient backward', () => {
    const x = tf.tensor1d([1, 2, 3]);
    expect(toArray(stopGradient(x))).toEqual([1, 2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.add(tf.mul(stopGradient(v), v), v)))(x);
    expect(toArray(g)).toEqual([2, 3, 4]); // d/dv (stop(v) * v + v) = v + 1
    expect(stopGradient(tf.tensor1d([1, 2], 'int32')).dtype).toBe('int32');
  });

  for (const baseline of ['geometric', 'arithmetic'] as const) {
    it(`VIMCO ${baseline} signals match the plain-JS reference within 1e-5`, () => {
      for (const [k, b, seed] of [
        [2, 5, 1],
        [3, 7, 2],
        [5, 11, 3],
        [8, 4, 4],
      ] as const) {
        const l = randomLogWeights(k, b, seed);
        const want = vimcoSignalsReference(l, baseline);
        const got = toArray(vimcoSignals(tf.tensor2d(l), baseline));
        want.flat().forEach((w, i) => expect(Math.abs(got[i]! - w), `K=${k} entry ${i}`).toBeLessThan(1e-5));
      }
      // Large log-weights (image log-likelihoods are ~ -500): still accurate (the signals are
      // shift-invariant and computed on centred values). Reference on the float32-rounded inputs.
      const big = randomLogWeights(5, 6, 7).map((row) => row.map((x) => Math.fround(x - 500)));
      const wantBig = vimcoSignalsReference(big, baseline).flat();
      toArray(vimcoSignals(tf.tensor2d(big), baseline)).forEach((g, i) => expect(Math.abs(g - wantBig[i]!)).toBeLessThan(1e-5));
    });
  }

  it('VIMCO signals carry no gradient; the surrogate gradient w.r.t. logQDiscrete is the signal / B', () => {
    const l = randomLogWeights(4, 3, 9);
    const lw = tf.tensor2d(l);
    const g = tf.grad((x: tf.Tensor) => tf.sum(vimcoSignals(x, 'geometric')))(lw);
    toArray(g).forEach((v) => expect(v).toBe(0));
    const est = new VimcoEstimator(4);
    const gq = tf.grad((q: tf.Tensor) => est.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q }, est.initState()).surrogate)(tf.zeros([4, 3]));
    const sig = vimcoSignalsReference(l, 'geometric').flat();
    toArray(gq).forEach((v, i) => expect(v).toBeCloseTo(sig[i]! / 3, 5));
  });

  it('VIMCO requires K >= 2 and the declared K', () => {
    expect(() => new VimcoEstimator(1)).toThrow(/vimco: K .* >= 2/);
    expect(() => makeEstimator(settings('vimco', 1))).toThrow(/>= 2/);
    expect(() => vimcoSignals(tf.zeros([1, 3]), 'geometric')).toThrow(/K >= 2/);
    const est = new VimcoEstimator(3);
    expect(() => est.estimate({ kind: 'sampled', logWeights: tf.zeros([2, 4]), logQDiscrete: tf.zeros([2, 4]) }, est.initState())).toThrow(
      /built for K = 3/,
    );
    expect(() => est.estimate({ kind: 'sampled', logWeights: tf.zeros([3, 4]) }, est.initState())).toThrow(/needs logQDiscrete/);
  });

  it('IWAE / soft / relaxed: bound = logsumexp - log K, gradient of its mean, no discrete term allowed', () => {
    const l = randomLogWeights(4, 3, 5);
    for (const est of [makeEstimator(settings('iwae', 4)), makeEstimator(settings('soft', 4)), makeEstimator(settings('relaxed', 4))]) {
      const r = est.estimate({ kind: 'sampled', logWeights: tf.tensor2d(l) }, est.initState());
      const bound = toArray(r.bound);
      for (let b = 0; b < 3; b++) {
        const col = l.map((row) => row[b]!);
        const m = Math.max(...col);
        expect(bound[b]).toBeCloseTo(m + Math.log(col.reduce((a, x) => a + Math.exp(x - m), 0) / 4), 5);
      }
      expect(r.extraLoss).toBeUndefined();
      // d surrogate / d l_kb = softmax_k(l_.b)_k / B
      const g = toArray(tf.grad((x: tf.Tensor) => est.estimate({ kind: 'sampled', logWeights: x }, est.initState()).surrogate)(tf.tensor2d(l)));
      for (let b = 0; b < 3; b++) {
        const col = l.map((row) => row[b]!);
        const z = col.reduce((a, x) => a + Math.exp(x), 0);
        col.forEach((x, k) => expect(g[k * 3 + b]).toBeCloseTo(Math.exp(x) / z / 3, 5));
      }
      expect(() => est.estimate({ kind: 'sampled', logWeights: tf.tensor2d(l), logQDiscrete: tf.zeros([4, 3]) }, est.initState())).toThrow(
        new RegExp(`${est.kind}: got logQDiscrete`),
      );
    }
    expect(makeEstimator(settings('relaxed', 2, { temperature: 0.7 })).temperature).toBe(0.7);
    expect(() => makeEstimator(settings('relaxed', 2, { temperature: 0 }))).toThrow(/temperature/);
  });

  it('relaxed end to end: ExpConcrete log-weights on the toy give finite pathwise gradients', () => {
    const est = makeEstimator(settings('relaxed', 4, { temperature: 0.5 }));
    const B = 16;
    const theta = tf.tile(tf.tensor2d([[0.5, -0.3, 1.0, -1.2]]), [B, 1]);
    const ell = tf.tensor1d([-6.0, -8.0, -4.5, -7.0]);
    const [g] = tf.grads((th: tf.Tensor) => {
      const guide = new RelaxedCategorical(th, est.temperature!);
      const prior = new RelaxedCategorical(tf.zeros([4]), est.temperature!);
      const logY = guide.rsample(new Rng(17), [4]); // [K, B, 4]
      const logLik = tf.sum(tf.mul(tf.exp(logY), ell), -1); // the "read" with the soft one-hot
      const logWeights = tf.sub(tf.add(prior.logProb(logY), logLik), guide.logProb(logY));
      const r = est.estimate({ kind: 'sampled', logWeights }, est.initState());
      toArray(r.bound).forEach((v) => expect(Number.isFinite(v)).toBe(true));
      return r.surrogate;
    })([theta]);
    const gv = toArray(g!);
    gv.forEach((v) => expect(Number.isFinite(v)).toBe(true));
    expect(gv.some((v) => v !== 0)).toBe(true);
  });

  it('REINFORCE: running baseline state in/out, NVIL regression loss and its gradient', () => {
    const l = randomLogWeights(2, 4, 6);
    const lw = tf.tensor2d(l);
    const q = tf.zeros([2, 4]);
    const L = toArray(tf.sub(tf.logSumExp(lw, 0), Math.log(2)));
    const meanL = L.reduce((a, x) => a + x, 0) / 4;
    const running = new ReinforceEstimator(2, { baseline: 'running', decay: 0.9 });
    const s0 = running.initState();
    expect(s0).toEqual({ steps: 0, runningMean: null });
    const r1 = running.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q }, s0);
    expect(r1.state.runningMean).toBeCloseTo(meanL, 5); // first batch initializes c
    const r2 = running.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q }, { steps: 1, runningMean: 1 });
    expect(r2.state.runningMean).toBeCloseTo(0.9 * 1 + 0.1 * meanL, 5);
    expect(r2.state.steps).toBe(2);
    // The signal uses the incoming c: d surrogate / d logQDiscrete_kb = (L_b - c) / B.
    const gq = toArray(tf.grad((x: tf.Tensor) => running.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: x }, { steps: 1, runningMean: 1 }).surrogate)(q));
    gq.forEach((v, i) => expect(v).toBeCloseTo((L[i % 4]! - 1) / 4, 5));
    // 'none' ignores the state.
    const none = new ReinforceEstimator(2, { baseline: 'none' });
    const gn = toArray(tf.grad((x: tf.Tensor) => none.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: x }, { steps: 1, runningMean: 5 }).surrogate)(q));
    gn.forEach((v, i) => expect(v).toBeCloseTo(L[i % 4]! / 4, 5));
    expect(none.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q }, none.initState()).state.runningMean).toBeNull();
    // NVIL: extraLoss = mean (L - c - b)^2; gradient w.r.t. b is -2 (L - c - b) / B; c tracks mean(L - b).
    const nvil = new ReinforceEstimator(2, { baseline: 'nvil' });
    expect(nvil.needsBaselineNet).toBe(true);
    const b = tf.tensor1d([0.1, -0.2, 0.3, 0]);
    const st = { steps: 3, runningMean: -2 };
    const r = nvil.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q, baseline: b }, st);
    const bv = [0.1, -0.2, 0.3, 0];
    const resid = L.map((x, i) => x + 2 - bv[i]!);
    expect(toArray(r.extraLoss!)[0]).toBeCloseTo(resid.reduce((a, x) => a + x * x, 0) / 4, 4);
    const gb = toArray(tf.grad((x: tf.Tensor) => nvil.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q, baseline: x }, st).extraLoss!)(b));
    gb.forEach((v, i) => expect(v).toBeCloseTo((-2 * resid[i]!) / 4, 4));
    const gbs = toArray(tf.grad((x: tf.Tensor) => nvil.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q, baseline: x }, st).surrogate)(b));
    gbs.forEach((v) => expect(v).toBe(0)); // the surrogate does not train b
    expect(r.state.runningMean).toBeCloseTo(0.9 * -2 + 0.1 * (meanL - 0.05), 5);
    expect(() => nvil.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q }, st)).toThrow(/needs a learned baseline/);
    expect(() => running.estimate({ kind: 'sampled', logWeights: lw, logQDiscrete: q, baseline: b }, st)).toThrow(/does not use one/);
  });

  it('makeEstimator builds every kind with the right discrete mode', () => {
    const modes: Record<string, string> = { iwae: 'none', vimco: 'score', reinforce: 'score', enumerate: 'enumerate', soft: 'soft', relaxed: 'relaxed' };
    for (const [kind, mode] of Object.entries(modes)) {
      const est = makeEstimator(settings(kind as EstimatorSettings['kind'], 4));
      expect(est.kind).toBe(kind);
      expect(est.k).toBe(4);
      expect(est.discrete).toBe(mode);
      expect(est.needsBaselineNet).toBe(false);
    }
    expect(makeEstimator(settings('reinforce', 1, { baseline: 'nvil' })).needsBaselineNet).toBe(true);
    expect(() => makeEstimator(settings('iwae', 0))).toThrow(/iwae: K/);
    expect(() => makeEstimator({ ...settings('iwae', 2), kind: 'nope' as EstimatorSettings['kind'] })).toThrow(/unknown estimator kind 'nope'/);
    expect(() => new IwaeEstimator(2).estimate({ kind: 'sampled', logWeights: tf.zeros([2, 3, 1]) }, { steps: 0, runningMean: null })).toThrow(
      /logWeights must be \[K, B\]/,
    );
  });

  it('tensor hygiene: 50 estimate + gradient steps inside tf.tidy leave numTensors unchanged', () => {
    const K = 3;
    const B = 8;
    const theta = tf.variable(tf.randomNormal([B, 4], 0, 1, 'float32', 1));
    const ell = tf.variable(tf.randomNormal([B, 4], -3, 1, 'float32', 2));
    const nvilB = tf.variable(tf.zeros([B]));
    const rng = new Rng(3);
    const cases: [Estimator, (th: tf.Tensor, el: tf.Tensor, bl: tf.Tensor) => EstimatorTerms][] = [];
    const sampled = (th: tf.Tensor, el: tf.Tensor): { logWeights: tf.Tensor; logQDiscrete: tf.Tensor } => {
      const logq = tf.logSoftmax(th);
      const a = tf.argMax(tf.add(tf.randomUniform([K, B, 4], 0, 1, 'float32', rng.nextSeed()), stopGradient(logq)), -1);
      const oh = tf.cast(tf.oneHot(a, 4), 'float32');
      const lq = tf.sum(tf.mul(oh, logq), -1);
      return { logWeights: tf.sub(tf.sum(tf.mul(oh, el), -1), lq), logQDiscrete: lq };
    };
    for (const s of [settings('vimco', K), settings('vimco', K, { baseline: 'arithmetic' }), settings('reinforce', K), settings('reinforce', K, { baseline: 'nvil' })]) {
      const est = makeEstimator(s);
      cases.push([est, (th, el, bl) => ({ kind: 'sampled', ...sampled(th, el), ...(est.needsBaselineNet ? { baseline: bl } : {}) })]);
    }
    for (const s of [settings('iwae', K), settings('soft', K), settings('relaxed', K)]) {
      cases.push([makeEstimator(s), (_th, el) => ({ kind: 'sampled', logWeights: tf.tile(tf.reshape(tf.sum(el, 1), [1, B]), [K, 1]) })]);
    }
    cases.push([
      makeEstimator(settings('enumerate', K)),
      (th, el) => ({ kind: 'enumerated', logJoint: tf.tile(tf.reshape(tf.transpose(el), [4, 1, B]), [1, K, 1]), logQAddress: tf.transpose(tf.logSoftmax(th)) }),
    ]);
    for (const [est, terms] of cases) {
      let state = est.initState();
      const step = (): void => {
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(() => {
            const r = est.estimate(terms(theta, ell, nvilB), state);
            state = r.state;
            return (r.extraLoss ? tf.sub(r.extraLoss, r.surrogate) : tf.neg(r.surrogate)) as tf.Scalar;
          });
          expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
          expect(Object.keys(grads).length).toBeGreaterThan(0);
        });
      };
      step(); // warm-up (lazily created kernels / constants)
      const before = tf.memory().numTensors;
      for (let i = 0; i < 50; i++) step();
      expect(tf.memory().numTensors, est.kind).toBe(before);
      expect(state.steps).toBe(51);
    }
    tf.dispose([theta, ell, nvilB]);
  });
});
