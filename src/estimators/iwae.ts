/**
 * IWAE: the K-sample importance-weighted bound with reparameterized latents only.
 * Burda, Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders", arXiv:1509.00519.
 *
 *   L = log (1/K) sum_k exp(l_k) = logsumexp_k l_k - log K  <=  log p(x)
 *
 * `surrogate = mean_B L`: its gradient is the IWAE gradient (pathwise through the reparameterized
 * samples). There is no score-function term, so every latent must be reparameterized; passing
 * `logQDiscrete` is an error (a model with discrete guide sites needs vimco, reinforce or enumerate).
 * With K = 1 this is the ELBO (single-sample estimate).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, checkSampled, checkState, initialState, logMeanExp, nextState } from './common.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import type { EstimatorSpec } from './spec.ts';
import { err, names, scoreFunctionSites } from './fits.ts';

/** Shared by iwae, soft and relaxed: the IWAE objective on `logWeights [K, B]`. */
export function iwaeObjective(where: string, k: number, terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
  checkState(where, state);
  const { logWeights } = checkSampled(where, terms, k, { logQDiscrete: 'forbidden', baseline: 'forbidden' });
  const out = tf.tidy(() => {
    const bound = logMeanExp(logWeights, 0);
    return { surrogate: tf.mean(bound) as tf.Scalar, bound };
  });
  return { ...out, state: nextState(state) };
}

export class IwaeEstimator implements Estimator {
  readonly kind: EstimatorKind = 'iwae';
  readonly discrete: DiscreteMode = 'none';
  readonly needsBaselineNet = false;
  constructor(readonly k: number) {
    checkK('iwae', k);
  }
  initState(): EstimatorState {
    return initialState();
  }
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    return iwaeObjective('iwae', this.k, terms, state);
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const iwaeSpec: EstimatorSpec = {
  kind: 'iwae',
  args: [{ name: 'k', kind: 'count', min: 1 }],
  defaultK: 1,
  handlers: [],
  terms: 'sampled',
  summary: 'importance-weighted bound with reparameterized latents only (Burda et al. 2015)',
  fits: (ir) => {
    const score = scoreFunctionSites(ir);
    if (!score.length) return [];
    return [
      err(
        'VMM3015',
        `\`iwae\` differentiates through reparameterized samples only, so the guide of the discrete latents ${names(score)} would get no gradient: use \`vimco\`, \`reinforce\`, \`rws\`, \`enumerate\`, \`relaxed\` or \`soft\``,
      ),
    ];
  },
  make: (s) => new IwaeEstimator(s.k),
  explain: (_s, l) => `${l.what}; not reparameterizable`,
  torch: `def estimate(t, state, args):
    lw = t.term('logP') - t.term('logQ')
    bound = rt.logmeanexp(lw, 0)
    return {'surrogate': bound.mean(), 'bound': bound, 'state': {**state, 'steps': state['steps'] + 1}}
`,
};
