/**
 * Gumbel-softmax / Concrete relaxation: the IWAE bound on relaxed samples of the discrete sites.
 * Jang, Gu & Poole 2016, arXiv:1611.01144; Maddison, Mnih & Teh 2016, arXiv:1611.00712.
 *
 * The lowering draws each address as a relaxed one-hot `exp(y)`, `y ~ ExpConcrete(logits, τ)`
 * (`RelaxedCategorical.rsample` in src/families/distributions.ts, τ = `estimator.temperature`), reads
 * memory with the soft one-hot, and scores `y` with ExpConcrete densities in both the prior and the
 * guide. `logWeights [K, B]` are then fully reparameterized and this is plain IWAE on them.
 *
 * Biased, for comparison only: the gradient is that of the RELAXED model's bound, not of the
 * discrete model's. `bound` is a bound on the relaxed model's log-density of x, not on the hard
 * model's log p(x); the bias vanishes only as τ -> 0, where the gradient variance blows up.
 */
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, fail, initialState } from './common.ts';
import { iwaeObjective, iwaeSpec } from './iwae.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import { argValue, type EstimatorSpec } from './spec.ts';
import { readsOnly } from './fits.ts';

export class RelaxedEstimator implements Estimator {
  readonly kind: EstimatorKind = 'relaxed';
  readonly discrete: DiscreteMode = 'relaxed';
  readonly needsBaselineNet = false;
  constructor(
    readonly k: number,
    readonly temperature: number,
  ) {
    checkK('relaxed', k);
    if (!(temperature > 0) || !Number.isFinite(temperature)) {
      fail('relaxed', `temperature must be a positive finite number, got ${temperature}`);
    }
  }
  initState(): EstimatorState {
    return initialState();
  }
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    return iwaeObjective('relaxed', this.k, terms, state);
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const relaxedSpec: EstimatorSpec = {
  kind: 'relaxed',
  args: [
    { name: 'k', kind: 'count', min: 1 },
    { name: 'temperature', kind: 'number', limit: { what: 'the temperature', integer: false, min: 0, minExclusive: true, max: 1e6 }, default: 0.5, help: 'the Gumbel-softmax temperature' },
  ],
  defaultK: 1,
  handlers: ['relaxed'],
  terms: 'sampled',
  summary: 'Gumbel-softmax relaxation of the address (Jang et al. 2016; Maddison et al. 2016), biased',
  fits: (ir) => readsOnly(ir, 'relaxed'),
  make: (s) => new RelaxedEstimator(s.k, argValue(s, 'temperature') as number),
  explain: (s, l) => `${l.what}; Gumbel-softmax relaxation (temperature ${argValue(s, 'temperature')}), biased`,
  // The IWAE surrogate on relaxed draws; the `relaxed` handler is the exporter's draws and reads.
  torch: iwaeSpec.torch,
};
