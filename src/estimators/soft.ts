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
import { iwaeObjective } from './iwae.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';

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
