/**
 * RLOO (src/estimators/rloo.ts) on the enumerable toy (test/estimators/toy.ts): its objective is
 * the ELBO averaged over K samples, whose exact gradient is J_1's (the K = 1 bound), for every
 * weight of the leave-one-out baseline; the baseline lowers the variance. Plus its registry entry:
 * the argument's limit, the k it needs, a model trained with it through the compiled pipeline.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { argProblem, estimatorSpec } from '../../src/estimators/registry.ts';
import { RlooEstimator } from '../../src/estimators/rloo.ts';
import { Rng } from '../../src/random/rng.ts';
import { describeBackends } from './backends.ts';
import { columnStats, exactGradient, logEvidence, makeDraws, type Toy } from './toy.ts';

/** The toy of test/estimators/unbiased.test.ts: a guide far from the posterior, large log-weights. */
const TOY: Toy = { theta: [0.5, -0.3, 1.0, -1.2], ell: [-6.0, -8.0, -4.5, -7.0] };
const M = TOY.theta.length;
const K = 3;
const N = 20000;
const SEED = 4321;

/** N per-draw gradients (θ and ℓ) and bounds of RLOO with baseline weight `c`. */
function draws(c: number) {
  return tf.tidy(() => {
    const est = new RlooEstimator(K, c);
    const state = est.initState();
    const d = makeDraws(TOY, K, N, new Rng(SEED));
    const f = (th: tf.Tensor, el: tf.Tensor): tf.Scalar => tf.mul(est.estimate(d.terms(th, el), state).surrogate, N) as tf.Scalar;
    const [gTheta, gEll] = tf.grads(f)([d.thetaN, d.ellN]);
    const bound = est.estimate(d.terms(d.thetaN, d.ellN), state).bound;
    return {
      dTheta: columnStats(gTheta!.dataSync() as Float32Array, N, M),
      dEll: columnStats(gEll!.dataSync() as Float32Array, N, M),
      bound: columnStats(bound.dataSync() as Float32Array, N, 1),
    };
  });
}

function expectWithin4Se(label: string, got: ReturnType<typeof columnStats>, exact: number[]): void {
  for (let j = 0; j < exact.length; j++) {
    const z = Math.abs(got.mean[j]! - exact[j]!) / got.se[j]!;
    expect(z, `${label}[${j}]: mean ${got.mean[j]} vs exact ${exact[j]} (SE ${got.se[j]})`).toBeLessThan(4);
  }
}

describeBackends('rloo on an enumerable toy model', () => {
  let elbo: ReturnType<typeof exactGradient>;
  beforeAll(() => {
    elbo = exactGradient(TOY, 1); // the ELBO: J_1, after the backend is selected
  });
  const results = new Map<number, ReturnType<typeof draws>>();
  const at = (c: number) => results.get(c) ?? results.set(c, draws(c)).get(c)!;

  for (const c of [1, 0.5, 0]) {
    it(`baseline_weight ${c}: the mean of ${N} gradient draws is the exact ELBO gradient within 4 SE`, () => {
      const r = at(c);
      expectWithin4Se(`dθ (c = ${c})`, r.dTheta, elbo.dTheta);
      expectWithin4Se(`dℓ (c = ${c})`, r.dEll, elbo.dEll);
      // The reported bound is the K-sample average of ELBOs: its mean is the exact ELBO, below log p(x).
      expect(Math.abs(r.bound.mean[0]! - elbo.value)).toBeLessThan(4 * r.bound.se[0]! + 1e-5);
      expect(r.bound.mean[0]!).toBeLessThan(logEvidence(TOY));
    });
  }

  it('the leave-one-out baseline lowers the total dθ variance at least 2x against no baseline', () => {
    const total = (c: number) => at(c).dTheta.variance.reduce((a, v) => a + v, 0);
    const ratio = total(0) / total(1);
    console.log(`rloo: total dθ variance, baseline weight 0 / 1 = ${ratio.toFixed(1)}`);
    expect(ratio).toBeGreaterThan(2);
  });
});

it('rloo: its argument has a limit, k >= 2, and a model checks with it and plans it', () => {
  const spec = estimatorSpec('rloo')!;
  expect(argProblem(spec, 'baseline_weight', 0.25)).toBeUndefined();
  expect(argProblem(spec, 'baseline_weight', 1.5)).toMatch(/baseline_weight must be a number from 0 to 1/);
  expect(() => new RlooEstimator(1)).toThrow(/K \(samples per example\) must be an integer >= 2/);
  // The mixture of models/gmm.vmm with RLOO instead of exact enumeration.
  const model = (est: string) => `model gmm
const K = 4
const D = 2
data x : real[D]
param means : real[K, D] = normal(1.0)
net q_c = mlp(D, 32, K)
discrete c ~ Categorical(K)
observe x ~ Normal(loc: means[c], scale: 0.5)
guide {
  c ~ Categorical(logits: q_c(x))
}
train {
  estimator = ${est}
}
`;
  const ok = frontEnd(model('rloo(k: 3, baseline_weight: 0.5)'));
  expect(ok.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(ok.ir!.train.estimator).toEqual({ kind: 'rloo', k: 3, args: { baseline_weight: 0.5 } });
  const bad = frontEnd(model('rloo(k: 1)'));
  expect(bad.diagnostics.map((d) => d.code)).toContain('VMM3012');
});
