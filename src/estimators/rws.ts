/**
 * Reweighted wake-sleep, wake phase (Bornschein & Bengio 2015, arXiv:1406.2751): every latent is
 * drawn from the guide WITHOUT a gradient (the `wake` handler), and with self-normalized
 * importance weights ŵ_k = softmax_k(l_k), l_k = log p(x, h_k) - log q(h_k | x):
 *
 *   model:  ∇θ log (1/K) sum_k p(x, h_k) / q(h_k | x)  =  sum_k ŵ_k ∇θ log p(x, h_k)
 *   guide:  sum_k ŵ_k ∇φ log q(h_k | x)    (wake-q: towards the posterior, a biased but
 *                                          consistent estimate of -∇φ KL(p(h | x) || q(h | x)))
 *
 * Surrogate: `logmeanexp_k(l_k + q_k - stop(q_k)) + sum_k stop(ŵ_k) q_k` with q_k = log q(h_k | x)
 * (`logQDiscrete`: with the wake handler every guide draw is in it). Its first term has the model
 * gradient (the guide's part cancels), its second the wake-q gradient. `bound` is the K-sample bound.
 * A natural peer of VIMCO for discrete addresses: no score-function variance, at the price of the
 * guide not maximizing the bound itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, checkSampled, checkState, initialState, logMeanExp, nextState } from './common.ts';
import { stopGradient } from '../kernels/stop_gradient.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import type { EstimatorSpec } from './spec.ts';

export class RwsEstimator implements Estimator {
  readonly kind: EstimatorKind = 'rws';
  readonly discrete: DiscreteMode = 'wake';
  readonly needsBaselineNet = false;
  constructor(readonly k: number) {
    checkK('rws', k);
  }
  initState(): EstimatorState {
    return initialState();
  }
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    checkState('rws', state);
    const { logWeights, logQDiscrete } = checkSampled('rws', terms, this.k, { logQDiscrete: 'required', baseline: 'forbidden' });
    const out = tf.tidy(() => {
      const q = logQDiscrete!;
      const modelPart = logMeanExp(tf.add(logWeights, tf.sub(q, stopGradient(q))), 0); // [B]
      const w = stopGradient(tf.softmax(tf.transpose(logWeights))); // [B, K]
      const wakeQ = tf.sum(tf.mul(tf.transpose(w), q), 0); // [B]
      return { surrogate: tf.mean(tf.add(modelPart, wakeQ)) as tf.Scalar, bound: logMeanExp(logWeights, 0) };
    });
    return { ...out, state: nextState(state) };
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const rwsSpec: EstimatorSpec = {
  kind: 'rws',
  args: [{ name: 'k', kind: 'count', min: 1 }],
  defaultK: 4,
  handlers: ['wake'],
  terms: 'sampled',
  summary: 'reweighted wake-sleep, wake phase (Bornschein & Bengio 2015)',
  fits: () => [],
  make: (s) => new RwsEstimator(s.k),
  torch: `def estimate(t, state, args):
    lw = t.term('logP') - t.term('logQ')
    q = t.term('logQScore')
    model_part = rt.logmeanexp(lw + q - q.detach(), 0)
    w = torch.softmax(lw.detach(), 0)
    wake_q = (w * q).sum(0)
    return {'surrogate': (model_part + wake_q).mean(), 'bound': rt.logmeanexp(lw, 0), 'state': {**state, 'steps': state['steps'] + 1}}
`,
  explain: (s, l) => `${l.what}; drawn without gradient; the guide follows the self-normalized weights (reweighted wake-sleep, k = ${s.k})`,
};
