/**
 * Exact enumeration of one discrete address, IWAE in the continuous latents z
 * (background.md §3, "Enumeration"; the gold standard for small memories).
 *
 * Input (E = number of address values, K = z-samples per address, B = examples):
 * - `logJoint [E, K, B]`: `log p(a=i) + log p(x, z_ik | a=i) - log q(z_ik | x, a=i)`, with z_ik drawn
 *   (reparameterized) from the guide given a = i. It must NOT contain `log q(a=i | x)`.
 * - `logQAddress [E, B]`: `log q(a=i | x)` of the address guide.
 *
 * Bound (per example):
 *
 *   L = log sum_i (1/K) sum_k exp(logJoint_ik) = logsumexp_{i,k} logJoint - log K  <=  log p(x)
 *
 * which is exact in a and importance-weighted in z; with no z (K = 1, deterministic given a) it
 * equals log p(x). The reported bound does NOT involve q(a|x) at all: its gradient trains the model
 * and the z-guides only.
 *
 * The address guide q(a|x) (needed for fast amortized addressing at test time, and for the
 * `KL(q(a|x) || p(a))` memory-use metric) is trained by an auxiliary term added to the surrogate:
 *
 *   aux = sum_i stop(post_i) * logQAddress_i,   post_i = softmax_i( logsumexp_k logJoint_ik - log K )
 *
 * `post` is the (IWAE-in-z) estimate of the exact posterior p(a=i | x). Maximizing aux is minimizing
 * the cross-entropy from post to q(a|x), i.e. `KL(post || q)` up to a constant, which pulls q(a|x)
 * to the posterior. Since `post` is stopped and `logQAddress` depends only on the address guide,
 * aux has zero effect on the model parameters.
 *
 * surrogate = mean_B (L + aux). (Its value is therefore below the bound; report `bound`.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { familyName, type EstimatorKind } from '../ir/types.ts';
import { family } from '../families/registry.ts';
import { checkEnumerated, checkK, checkState, initialState, logMeanExp, nextState } from './common.ts';
import { stopGradient } from '../kernels/stop_gradient.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import type { EstimatorSpec } from './spec.ts';
import { err, guideSitesIn, names, scoreFunctionSites } from './fits.ts';

export class EnumerateEstimator implements Estimator {
  readonly kind: EstimatorKind = 'enumerate';
  readonly discrete: DiscreteMode = 'enumerate';
  readonly needsBaselineNet = false;
  constructor(readonly k: number) {
    checkK('enumerate', k);
  }
  initState(): EstimatorState {
    return initialState();
  }
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    checkState('enumerate', state);
    const { logJoint, logQAddress } = checkEnumerated('enumerate', terms, this.k);
    const out = tf.tidy(() => {
      const perAddress = logMeanExp(logJoint, 1); // [E, B]: IWAE-in-z estimate of log p(x, a=i)
      const bound = tf.logSumExp(perAddress, 0); // [B]
      const logPost = tf.sub(stopGradient(perAddress), stopGradient(bound)); // [E, B]
      const aux = tf.sum(tf.mul(tf.exp(logPost), logQAddress), 0); // [B]
      const surrogate = tf.mean(tf.add(bound, aux)) as tf.Scalar;
      return { surrogate, bound };
    });
    return { ...out, state: nextState(state) };
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const enumerateSpec: EstimatorSpec = {
  kind: 'enumerate',
  args: [{ name: 'k', kind: 'count', min: 1 }],
  defaultK: 1,
  handlers: ['enumerate'],
  terms: 'enumerated',
  summary: 'exact sum over one Categorical latent (the address)',
  fits: (ir) => {
    const score = scoreFunctionSites(ir);
    // Enumerable: the entry says its support is finite and how to list it (a Categorical's N values).
    const cats = score.filter((s) => family(familyName(s.dist))?.enumerable !== undefined);
    if (score.length === 0) {
      return [err('VMM3010', '`enumerate` sums exactly over one discrete address (or Categorical latent), but the model has no discrete latent', [{ message: 'every latent is continuous: use `iwae(k: 1)`' }])];
    }
    if (score.length === 1 && cats.length === 0) {
      const only = score[0]!;
      const fam = familyName(only.dist);
      return [
        err('VMM3010', `\`enumerate\` sums exactly over the values of a discrete latent, but \`${only.name}\` is a ${fam}, whose values cannot be listed (its family has no finite, enumerable support)`, [
          { message: `\`${only.name}\` is declared here`, site: only.name },
          { message: `use \`vimco(k: 4)\` or \`reinforce(k: 4)\` (score-function gradients)` },
        ]),
      ];
    }
    if (score.length > 1 || cats.length !== 1) {
      const first = score.find((s) => s.role !== 'address') ?? score[1] ?? score[0]!;
      return [
        err('VMM3010', `\`enumerate\` sums exactly over one discrete address (or Categorical latent) and nothing else, but the model has the discrete latents ${names(score)}${cats.length ? '' : ', none of them Categorical'}`, [
          { message: `\`${first.name}\` is declared here`, site: first.name },
          { message: 'use `vimco(k: 4)` or `reinforce(k: 4)` for several discrete latents' },
        ]),
      ];
    }
    const site = cats[0]!;
    const drawn = guideSitesIn(ir, site.name);
    if (drawn.length) {
      return [
        err('VMM3010', `\`enumerate\` sums over \`${site.name}\` with weights q(${site.name} | x), but its guide depends on the sampled ${names(drawn)}`, [
          { message: `\`${site.name}\` is declared here`, site: site.name },
          { message: 'use `vimco(k: 4)` or `rws(k: 4)`' },
        ]),
      ];
    }
    return [];
  },
  make: (s) => new EnumerateEstimator(s.k),
  torch: `def estimate(t, state, args):
    lj = t.term('logP') - t.term('logQ')
    lqa = t.term('logQEnum')[:, 0, :]
    per = rt.logmeanexp(lj, 1)
    bound = torch.logsumexp(per, 0)
    post = torch.exp(per.detach() - bound.detach())
    aux = (post * lqa).sum(0)
    return {'surrogate': (bound + aux).mean(), 'bound': bound, 'state': {**state, 'steps': state['steps'] + 1}}
`,
  explain: (_s, l) => `${l.what}; summed exactly over its ${l.values} values (enumeration)`,
  plan: {
    site: (_s, site) => (site.discrete ? 'enumerated: every value on the enum plate, summed exactly' : undefined),
    reads: 'runs on every entry (enum plate)',
    objective: (s) => [
      `L = log sum_a p(a) (1/K) sum_k p(x, z_k | a) / q(z_k | x, a)    exact in a, K=${s.k} samples of z; a lower bound on log p(x)`,
      'q(a | x) trained towards the exact posterior p(a | x) (sum_a stop(p(a|x)) log q(a|x)); it does not enter L',
    ],
  },
};
