/**
 * Score function (REINFORCE; Williams 1992) with the baselines of NVIL (Mnih & Gregor 2014,
 * "Neural Variational Inference and Learning in Belief Networks", arXiv:1402.0030).
 *
 * Objective: the K-sample bound `L = logsumexp_k l_k - log K` (l = `logWeights [K, B]`; K = 1
 * gives the ELBO). One learning signal per example, shared by its K samples:
 *
 *   signal = stop(L) - c - stop(b(x))
 *   surrogate = mean_B [ L + signal * sum_k logQDiscrete_k ]
 *
 * - `c` (options 'running' and 'nvil'): running average of the batch mean of `L - b(x)`, kept in
 *   the state (`runningMean`), with exponential decay (default 0.9):
 *   `c <- decay * c + (1 - decay) * mean_B(L - b)`, initialized with the first batch's mean. The
 *   signal always uses the `c` passed in (from earlier batches only), so the estimator is unbiased.
 *   Before the first update, c = 0.
 * - `b(x)` (option 'nvil'): a learned input-dependent baseline (a net evaluated by the lowering,
 *   passed as `baseline [B]`), trained by `extraLoss = mean_B (stop(L) - c - b(x))^2`, which
 *   reaches no other parameter.
 * - 'none': signal = L (plain REINFORCE; high variance, for comparison).
 *
 * `∇L` supplies the pathwise part and the `-∇ log q(a_k)` terms through `l_k`; the score term
 * supplies `E[L ∇ log q(a_1..a_K)]`. Together: the unbiased gradient of E[L].
 *
 * Updating c reads one scalar from the device (`dataSync`) per step when c is used.
 */
import * as tf from '@tensorflow/tfjs-core';
import { syncReads } from '../kernels/readback.ts';
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, checkSampled, checkState, fail, initialState, logMeanExp, nextState } from './common.ts';
import { stopGradient } from '../kernels/stop_gradient.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import { argValue, type EstimatorSpec } from './spec.ts';
import { pointless } from './fits.ts';

export type ReinforceBaseline = 'none' | 'running' | 'nvil';

export interface ReinforceOptions {
  baseline: ReinforceBaseline;
  /** Decay of the running average c (default 0.9). */
  decay?: number;
}

export class ReinforceEstimator implements Estimator {
  readonly kind: EstimatorKind = 'reinforce';
  readonly discrete: DiscreteMode = 'score';
  readonly needsBaselineNet: boolean;
  readonly baseline: ReinforceBaseline;
  readonly decay: number;

  constructor(
    readonly k: number,
    options: ReinforceOptions = { baseline: 'running' },
  ) {
    checkK('reinforce', k);
    const { baseline, decay = 0.9 } = options;
    if (baseline !== 'none' && baseline !== 'running' && baseline !== 'nvil') {
      fail('reinforce', `unknown baseline '${String(baseline)}' (none | running | nvil)`);
    }
    if (!(decay >= 0 && decay < 1)) fail('reinforce', `decay must be in [0, 1), got ${decay}`);
    this.baseline = baseline;
    this.decay = decay;
    this.needsBaselineNet = baseline === 'nvil';
  }

  initState(): EstimatorState {
    return initialState();
  }

  /** Needs `logWeights [K, B]`, `logQDiscrete [K, B]`, and `baseline [B]` iff 'nvil'. */
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    checkState('reinforce', state);
    const useC = this.baseline !== 'none';
    const { logWeights, logQDiscrete, baseline } = checkSampled('reinforce', terms, this.k, {
      logQDiscrete: 'required',
      baseline: this.needsBaselineNet ? 'required' : 'forbidden',
    });
    const c = useC ? (state.runningMean ?? 0) : 0;
    // The running mean needs the batch's mean signal on the host: read now where reads are
    // synchronous, else handed to the caller to read with the step's metrics (`settle`).
    const readNow = syncReads();
    let batchMean = 0;
    let pendingMean: tf.Scalar | undefined;
    const out = tf.tidy(() => {
      const bound = logMeanExp(logWeights, 0); // [B]
      const lStop = stopGradient(bound);
      const b = baseline !== undefined ? stopGradient(baseline) : null;
      const centred = b ? tf.sub(lStop, b) : lStop; // L - b(x), no gradient
      const signal = tf.sub(centred, c);
      const score = tf.mul(signal, tf.sum(logQDiscrete!, 0)); // [B]
      const surrogate = tf.mean(tf.add(bound, score)) as tf.Scalar;
      if (useC && readNow) batchMean = tf.mean(centred).dataSync()[0]!;
      else if (useC) pendingMean = tf.keep(tf.mean(centred) as tf.Scalar);
      let extraLoss: tf.Scalar | undefined;
      if (baseline !== undefined) {
        extraLoss = tf.mean(tf.square(tf.sub(tf.sub(lStop, c), baseline))) as tf.Scalar;
      }
      return extraLoss ? { surrogate, bound, extraLoss } : { surrogate, bound };
    });
    const update = (m: number): number | null =>
      !useC ? state.runningMean : state.runningMean === null ? m : this.decay * state.runningMean + (1 - this.decay) * m;
    if (pendingMean) return { ...out, state: nextState(state), settle: { value: pendingMean, state: (m) => nextState(state, update(m)) } };
    return { ...out, state: nextState(state, update(batchMean)) };
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const reinforceSpec: EstimatorSpec = {
  kind: 'reinforce',
  args: [
    { name: 'k', kind: 'count', min: 1 },
    { name: 'baseline', kind: 'choice', choices: ['running', 'nvil', 'none'], default: 'running' },
  ],
  defaultK: 1,
  handlers: [],
  terms: 'sampled',
  summary: 'REINFORCE with a running or learned (NVIL) baseline (Mnih & Gregor 2014)',
  fits: pointless,
  // The running mean c as ReinforceEstimator keeps it (decay 0.9, the first batch's mean first);
  // under torchrun the batch mean is all-reduced, so every rank keeps the c of the whole batch.
  torch: `def estimate(t, state, args):
    lw = t.term('logP') - t.term('logQ')
    bound = rt.logmeanexp(lw, 0)
    use_c = args['baseline'] != 'none'
    c = (state['runningMean'] or 0.0) if use_c else 0.0
    l_stop = bound.detach()
    b = t.baseline.detach() if args['baseline'] == 'nvil' else None
    centred = l_stop - b if b is not None else l_stop
    score = (centred - c) * t.term('logQScore').sum(0)
    out = {'surrogate': (bound + score).mean(), 'bound': bound}
    if args['baseline'] == 'nvil':
        out['extra_loss'] = ((l_stop - c - t.baseline) ** 2).mean()
    m = rt.global_mean(centred.mean())  # over every rank's batch under torchrun, as one process would
    rm = state['runningMean']
    rm = (m if rm is None else 0.9 * rm + 0.1 * m) if use_c else rm
    out['state'] = {'steps': state['steps'] + 1, 'runningMean': rm}
    return out
`,
  make: (s) => new ReinforceEstimator(s.k, { baseline: argValue(s, 'baseline') as ReinforceBaseline }),
  explain: (s, l) => `${l.what}; not reparameterizable: score function (REINFORCE, k = ${s.k}, baseline ${argValue(s, 'baseline')})`,
  plan: {
    signal: (s) => {
      const b = argValue(s, 'baseline');
      return `score function, signal L - c${b === 'nvil' ? ' - b(x)' : ''} (${b} baseline)`;
    },
    surrogate: (s) => `surrogate = L + sum_k stop(L - c${argValue(s, 'baseline') === 'nvil' ? ' - b(x)' : ''}) log q(discrete_k | x)    (Mnih & Gregor 2014)`,
  },
};
