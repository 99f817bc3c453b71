/**
 * Soft attention: the IWAE bound (in z) of a model whose memory read was replaced by its
 * expectation, `r = sum_i q(a=i | x) g(m_i)` (background.md §2; Bornschein et al. 2017,
 * arXiv:1709.07116, use it as the baseline that hard addressing is compared against).
 *
 * Input: `logWeights [K, B]` computed by the lowering on that soft model, with K samples of the
 * continuous latents only; there is no discrete site, hence no score-function term.
 *
 * What the value means: `bound` is a lower bound on log p_soft(x), the likelihood of the SOFT
 * model, whose read depends on q(a|x), i.e. on x itself. That model is not a proper generative
 * model of x (at generation time the read must use p(a) instead), so this number is NOT a bound on
 * the hard model's log p(x) and should not be compared with the hard variants' bounds as if it were.
 * To compare, evaluate the trained soft model with reads under p(a) (or the hard model) separately.
 */
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, initialState } from './common.ts';
import { iwaeObjective, iwaeSpec } from './iwae.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import type { EstimatorSpec } from './spec.ts';
import { readsOnly } from './fits.ts';

export class SoftEstimator implements Estimator {
  readonly kind: EstimatorKind = 'soft';
  readonly discrete: DiscreteMode = 'soft';
  readonly needsBaselineNet = false;
  constructor(readonly k: number) {
    checkK('soft', k);
  }
  initState(): EstimatorState {
    return initialState();
  }
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    return iwaeObjective('soft', this.k, terms, state);
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const softSpec: EstimatorSpec = {
  kind: 'soft',
  args: [{ name: 'k', kind: 'count', min: 1 }],
  defaultK: 1,
  handlers: ['soft'],
  terms: 'sampled',
  summary: 'soft attention: a model with a latent query u ~ N(0, I); reads are averages over entries weighted by softmax(keys @ u)',
  fits: (ir) => readsOnly(ir, 'soft'),
  make: (s) => new SoftEstimator(s.k),
  explain: (_s, l) =>
    `${l.what}; soft attention: a latent query u ~ N(0, I) (its guide from the address's guide), and every read of \`${l.name}\` becomes the average over entries weighted by softmax(keys @ u)`,
  plan: {
    site: (_s, site) => (site.role === 'address' ? 'soft attention: w = softmax(keys @ u) for the query latent u; reads become sum_i w_i f(mem[i]); no density term' : undefined),
    reads: 'runs on all entries, blended by the attention weights',
    objective: (s) => [
      `L = log (1/K) sum_k p(x, u_k, z_k | r_k) / q(u_k, z_k | x)    r_k = sum_i softmax(keys @ u_k)_i f(m_i), K=${s.k}`,
      'the soft-attention model: its query u ~ N(0, I) is a latent (src/ir/addressing.ts), so L is a lower bound on its log p(x | memory)',
    ],
  },
  // The IWAE surrogate on the soft-attention model; the `soft` handler is the exporter's reads.
  torch: iwaeSpec.torch,
};
