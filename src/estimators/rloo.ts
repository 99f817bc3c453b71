/**
 * REINFORCE with the leave-one-out baseline (RLOO): Kool, van Hoof & Welling 2019, "Buy 4
 * REINFORCE Samples, Get a Baseline for Free!" (ICLR 2019 workshop DeepRLStructPred).
 *
 * Objective: the ELBO averaged over K independent samples, `L = mean_k l_k` (l = `logWeights
 * [K, B]`), not the K-sample bound of VIMCO: the K samples are spent on a baseline instead of a
 * tighter bound. Each sample's learning signal is its log-weight minus the mean of the others',
 * scaled by the control variate's weight `c` (the argument `baseline_weight`):
 *
 *   signal_k = l_k - c * mean_{j != k} l_j
 *   surrogate = mean_B [ mean_k l_k + (1/K) sum_k stop(signal_k) * logQDiscrete_k ]
 *
 * Unbiased for every c: the baseline of sample k is a function of the other samples only, which
 * are independent of it, so `E[b_k ∇ log q(a_k)] = 0`. c = 1 is Kool et al.'s estimator, where
 * `signal_k = K/(K-1) (l_k - mean_j l_j)`; c = 0 is plain multi-sample REINFORCE, kept for
 * comparison (and to measure what the baseline buys). `∇ mean_k l_k` supplies the pathwise part and
 * the `-∇ log q(a_k)` terms (zero in expectation), as in ./reinforce.ts. Requires K >= 2.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, checkSampled, checkState, fail, initialState, nextState } from './common.ts';
import { stopGradient } from '../kernels/stop_gradient.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import { argValue, type EstimatorSpec } from './spec.ts';
import { err, pointless } from './fits.ts';

export class RlooEstimator implements Estimator {
  readonly kind: EstimatorKind = 'rloo';
  readonly discrete: DiscreteMode = 'score';
  readonly needsBaselineNet = false;
  constructor(
    readonly k: number,
    readonly baselineWeight = 1,
  ) {
    checkK('rloo', k, 2);
    if (!(baselineWeight >= 0 && baselineWeight <= 1)) fail('rloo', `baseline_weight must be in [0, 1], got ${baselineWeight}`);
  }
  initState(): EstimatorState {
    return initialState();
  }
  /** Needs `logWeights [K, B]` and `logQDiscrete [K, B]` (see the module comment). */
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    checkState('rloo', state);
    const { logWeights, logQDiscrete } = checkSampled('rloo', terms, this.k, { logQDiscrete: 'required', baseline: 'forbidden' });
    const k = this.k;
    const out = tf.tidy(() => {
      const bound = tf.mean(logWeights, 0); // [B]: the ELBO averaged over the K samples
      const l = stopGradient(logWeights);
      const others = tf.div(tf.sub(tf.sum(l, 0, true), l), k - 1); // [K, B]: mean_{j != k} l_j
      const signal = tf.sub(l, tf.mul(others, this.baselineWeight));
      const score = tf.div(tf.sum(tf.mul(signal, logQDiscrete!), 0), k); // [B]
      return { surrogate: tf.mean(tf.add(bound, score)) as tf.Scalar, bound };
    });
    return { ...out, state: nextState(state) };
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const rlooSpec: EstimatorSpec = {
  kind: 'rloo',
  args: [
    { name: 'k', kind: 'count', min: 2, below: { code: 'VMM3012', why: 'the baseline of each sample is the mean of the other samples' } },
    {
      name: 'baseline_weight',
      kind: 'number',
      limit: { what: 'the weight of the leave-one-out baseline', integer: false, min: 0, max: 1 },
      default: 1,
      help: 'the weight c of the leave-one-out baseline, signal l_k - c * mean of the others (1: Kool et al. 2019; 0: no baseline)',
    },
  ],
  defaultK: 4,
  handlers: [],
  terms: 'sampled',
  summary: 'REINFORCE on the ELBO with the leave-one-out baseline (Kool et al. 2019)',
  fits: (ir, s) =>
    s.k < 2
      ? [{ ...err('VMM3012', `\`rloo\` needs k >= 2 samples: the baseline of each sample is the mean of the other samples; found k = ${s.k}`), atK: true }]
      : pointless(ir, s),
  make: (s) => new RlooEstimator(s.k, argValue(s, 'baseline_weight') as number),
  torch: `def estimate(t, state, args):
    lw = t.term('logP') - t.term('logQ')
    K = lw.shape[0]
    bound = lw.mean(0)
    l = lw.detach()
    others = (l.sum(0, keepdim=True) - l) / (K - 1)
    signal = l - others * args['baseline_weight']
    score = (signal * t.term('logQScore')).sum(0) / K
    return {'surrogate': (bound + score).mean(), 'bound': bound, 'state': {**state, 'steps': state['steps'] + 1}}
`,
  explain: (s, l) => `${l.what}; not reparameterizable: score function with the leave-one-out baseline (RLOO, k = ${s.k}, baseline weight ${argValue(s, 'baseline_weight')})`,
  plan: {
    signal: (s) => `RLOO learning signal l_k - ${argValue(s, 'baseline_weight')} * mean_{j != k} l_j (leave-one-out baseline)`,
    objective: (s, memory) => [
      `L = (1/K) sum_k log p(x, latents_k) / q(latents_k | x)    K=${s.k}; the ELBO averaged over K samples, a lower bound on log p(x${memory ? ' | memory' : ''})`,
      `surrogate = mean_k l_k + (1/K) sum_k stop(l_k - ${argValue(s, 'baseline_weight')} * mean_{j != k} l_j) log q(discrete_k | x)    (Kool et al. 2019)`,
    ],
  },
};
