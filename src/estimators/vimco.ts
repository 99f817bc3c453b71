/**
 * VIMCO: the multi-sample score-function estimator with leave-one-out baselines.
 * Mnih & Rezende 2016, "Variational Inference for Monte Carlo Objectives", arXiv:1602.06725.
 *
 * Objective: the K-sample bound `L = logsumexp_k l_k - log K` (l = `logWeights [K, B]`).
 * Learning signal for `∇ log q(a_k)` (a = the sampled discrete guide sites):
 *
 *   signal_k = L - L^{-k}
 *   geometric  (paper's default): L^{-k} = L with l_k replaced by mean_{j≠k} l_j
 *   arithmetic:                   L^{-k} = L with w_k replaced by mean_{j≠k} w_j
 *                                        = logsumexp_{j≠k} l_j - log(K - 1)
 *
 * Surrogate (per example, then averaged over the batch):
 *
 *   surrogate = L + sum_k stop(signal_k) * logQDiscrete_k
 *
 * Its gradient is the VIMCO estimator: `∇L` supplies the pathwise gradient through reparameterized
 * latents and net parameters, and, because `l_k` contains `-log q(a_k | x)`, also the
 * `-ŵ_k ∇ log q(a_k)` half of the per-sample signal `(L - L^{-k}) - ŵ_k` (background.md §3).
 * `signal_k` does not depend on sample k's own weight beyond what the leave-one-out removes, so
 * the estimator stays unbiased. Requires K >= 2 (with K = 1 there is nothing to leave out).
 * Log-weights must be finite.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EstimatorKind } from '../ir/types.ts';
import { checkK, checkSampled, checkState, fail, initialState, logMeanExp, nextState } from './common.ts';
import { withoutGradient } from '../kernels/stop_gradient.ts';
import { syncReads } from '../kernels/readback.ts';
import type { DiscreteMode, Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from './types.ts';
import { argValue, type EstimatorSpec } from './spec.ts';
import { err, pointless } from './fits.ts';

export type VimcoBaseline = 'geometric' | 'arithmetic';

/**
 * The VIMCO learning signals `L - L^{-k}` for `l [K, B]`: `[K, B]`, no gradient.
 * Vectorized: builds the K leave-one-out copies `[K (left out), K, B]` of the log-weights.
 */
export function vimcoSignals(l: tf.Tensor, baseline: VimcoBaseline): tf.Tensor {
  if (l.rank !== 2) fail('vimcoSignals', `log-weights must be [K, B], got [${l.shape.join(', ')}]`);
  const [k, b] = l.shape as [number, number];
  if (k < 2) fail('vimcoSignals', `VIMCO needs K >= 2 samples per example, got K = ${k}`);
  if (baseline !== 'geometric' && baseline !== 'arithmetic') {
    fail('vimcoSignals', `unknown baseline '${String(baseline)}' (geometric | arithmetic)`);
  }
  // Computed off the gradient tape (the signals are stopped; see withoutGradient).
  return withoutGradient((raw) => (syncReads() ? signalsOf(raw, k, b, baseline) : signalsOnDevice(raw, k, baseline)), l);
}

/**
 * The same signals as tensor ops, for backends that cannot read synchronously (webgpu; see
 * src/kernels/readback.ts): the K leave-one-out copies `[K (left out), K, B]` of the log-weights,
 * entry k of copy k replaced by the geometric mean's log (the mean of the other l_j) or dropped
 * (-Infinity: the arithmetic baseline), then one logsumexp over the middle axis.
 */
export function signalsOnDevice(l: tf.Tensor, k: number, baseline: VimcoBaseline): tf.Tensor {
  return tf.tidy(() => {
    const full = tf.sub(tf.logSumExp(l, 0), Math.log(k)); // [B]
    const copies = tf.tile(tf.expandDims(l, 0), [k, 1, 1]); // [K, K, B]
    const diag = tf.expandDims(tf.cast(tf.eye(k), 'bool'), 2); // [K, K, 1]
    const at = baseline === 'geometric' ? tf.div(tf.sub(tf.sum(l, 0, true), l), k - 1) : tf.fill(l.shape, -Infinity); // [K, B]
    const replaced = tf.where(tf.broadcastTo(diag, copies.shape), tf.broadcastTo(tf.expandDims(at, 1), copies.shape), copies);
    const n = baseline === 'geometric' ? k : k - 1;
    const loo = tf.sub(tf.logSumExp(replaced, 1), Math.log(n)); // [K, B]
    return tf.sub(full, loo);
  });
}

/**
 * The signals from the log-weights read back to the host: `[K, B]` is a few hundred numbers, and
 * computed there (in float64, one pass per example) they take no kernel, where the same
 * arithmetic as tensor ops took about 20 small kernels per step (bench/results/kernels.md).
 */
function signalsOf(raw: tf.Tensor, k: number, b: number, baseline: VimcoBaseline): tf.Tensor {
  return tf.tensor2d(hostSignals(raw.dataSync() as Float32Array, k, b, baseline), [k, b]);
}

/** The signals of log-weights `l` (`[K, B]` row-major) in float64, one pass per example. */
function hostSignals(l: Float32Array, k: number, b: number, baseline: VimcoBaseline): Float32Array {
  const out = new Float32Array(k * b);
  const col = new Float64Array(k);
  // log (1/K) sum_j exp(c_j), with c_k replaced by `at` when `skip` = k (or left out with at = -Infinity).
  const logMeanExp = (c: Float64Array, skip: number, at: number, n: number): number => {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, j === skip ? at : c[j]!);
    if (m === -Infinity) return -Infinity;
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp((j === skip ? at : c[j]!) - m);
    return m + Math.log(s / n);
  };
  for (let e = 0; e < b; e++) {
    let sum = 0;
    for (let j = 0; j < k; j++) {
      col[j] = l[j * b + e]!;
      sum += col[j]!;
    }
    const full = logMeanExp(col, -1, 0, k);
    for (let j = 0; j < k; j++) {
      // geometric: l_j replaced by the mean of the others; arithmetic: w_j by the mean of the other
      // w's, i.e. L^{-j} = logsumexp_{i != j} l_i - log(K - 1).
      const loo = baseline === 'geometric' ? logMeanExp(col, j, (sum - col[j]!) / (k - 1), k) : logMeanExp(col, j, -Infinity, k - 1);
      out[j * b + e] = full - loo;
    }
  }
  return out;
}

/**
 * The VIMCO surrogate and bound from the log-weights and discrete log-densities read back to the
 * host (float64, one pass per example), each one op with its own gradient:
 *
 *   bound_b     = log (1/K) sum_k exp(l_kb)             d/dl_kb = w_kb = softmax_k(l)_b
 *   surrogate   = mean_b (bound_b + sum_k s_kb lq_kb)   d/dl = w / B, d/dlq = s / B (s stopped)
 *
 * As tensor ops these were ~14 kernels forward (logsumexp, the score's product and sums, means)
 * and ~35 backward (their gradients' broadcasts, same-shape reshapes and casts); here the forward
 * takes none and the backward one product per input (bench/results/kernels.md, 2026-12-06).
 */
function vimcoOnHost(l: tf.Tensor, lq: tf.Tensor, baseline: VimcoBaseline): { surrogate: tf.Scalar; bound: tf.Tensor } {
  if (l.rank !== 2 || lq.rank !== 2 || l.shape[0] !== lq.shape[0] || l.shape[1] !== lq.shape[1]) {
    fail('vimco', `log-weights and discrete log-densities must both be [K, B], got [${l.shape.join(', ')}] and [${lq.shape.join(', ')}]`);
  }
  const [k, b] = l.shape as [number, number];
  const lv = l.dataSync() as Float32Array;
  const lqv = lq.dataSync() as Float32Array;
  const signals = hostSignals(lv, k, b, baseline);
  const boundV = new Float32Array(b);
  const w = new Float32Array(k * b); // softmax over k, per example
  let total = 0;
  for (let e = 0; e < b; e++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, lv[j * b + e]!);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(lv[j * b + e]! - m);
    const lse = m + Math.log(s);
    boundV[e] = lse - Math.log(k);
    let score = 0;
    for (let j = 0; j < k; j++) {
      w[j * b + e] = Math.exp(lv[j * b + e]! - lse);
      score += signals[j * b + e]! * lqv[j * b + e]!;
    }
    total += boundV[e]! + score;
  }
  const surrogateOp = tf.customGrad(() => ({
    value: tf.scalar(total / b),
    gradFunc: (dy: tf.Tensor) => [tf.mul(dy, tf.tensor2d(w.map((x) => x / b), [k, b])), tf.mul(dy, tf.tensor2d(signals.map((x) => x / b), [k, b]))],
  }));
  const boundOp = tf.customGrad(() => ({
    value: tf.tensor1d(boundV),
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.tensor2d(w, [k, b])),
  }));
  return { surrogate: surrogateOp(l, lq) as tf.Scalar, bound: boundOp(l) };
}

/**
 * A slow, direct transcription of the VIMCO signals in plain JS (float64), for tests:
 * `l[k][b]` -> `signal[k][b] = L_b - L_b^{-k}`.
 */
export function vimcoSignalsReference(l: number[][], baseline: VimcoBaseline = 'geometric'): number[][] {
  const K = l.length;
  if (K < 2) throw new Error('vimcoSignalsReference: needs K >= 2');
  const B = l[0]!.length;
  const logMeanExpJs = (xs: number[]): number => {
    const m = Math.max(...xs);
    let s = 0;
    for (const x of xs) s += Math.exp(x - m);
    return m + Math.log(s / xs.length);
  };
  const out: number[][] = [];
  for (let k = 0; k < K; k++) {
    const row: number[] = [];
    for (let b = 0; b < B; b++) {
      const col: number[] = [];
      for (let j = 0; j < K; j++) col.push(l[j]![b]!);
      const L = logMeanExpJs(col);
      const others = col.filter((_, j) => j !== k);
      let Lk: number;
      if (baseline === 'geometric') {
        const meanLog = others.reduce((a, x) => a + x, 0) / (K - 1);
        const replaced = col.slice();
        replaced[k] = meanLog;
        Lk = logMeanExpJs(replaced);
      } else {
        // w_k := mean of the other w_j, then L = log (1/K) sum_j w_j.
        const ws = col.map(Math.exp);
        const meanW = ws.filter((_, j) => j !== k).reduce((a, x) => a + x, 0) / (K - 1);
        ws[k] = meanW;
        Lk = Math.log(ws.reduce((a, x) => a + x, 0) / K);
      }
      row.push(L - Lk);
    }
    out.push(row);
  }
  return out;
}

export class VimcoEstimator implements Estimator {
  readonly kind: EstimatorKind = 'vimco';
  readonly discrete: DiscreteMode = 'score';
  readonly needsBaselineNet = false;
  constructor(
    readonly k: number,
    readonly baseline: VimcoBaseline = 'geometric',
  ) {
    checkK('vimco', k, 2);
    if (baseline !== 'geometric' && baseline !== 'arithmetic') {
      fail('vimco', `unknown baseline '${String(baseline)}' (geometric | arithmetic)`);
    }
  }
  initState(): EstimatorState {
    return initialState();
  }
  /** Needs `logWeights [K, B]` and `logQDiscrete [K, B]` (see the module comment). */
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    checkState('vimco', state);
    const { logWeights, logQDiscrete } = checkSampled('vimco', terms, this.k, { logQDiscrete: 'required', baseline: 'forbidden' });
    if (syncReads()) return { ...vimcoOnHost(logWeights, logQDiscrete!, this.baseline), state: nextState(state) };
    const out = tf.tidy(() => {
      const bound = logMeanExp(logWeights, 0); // [B]
      const signals = vimcoSignals(logWeights, this.baseline); // [K, B], stopped
      const score = tf.sum(tf.mul(signals, logQDiscrete!), 0); // [B]
      const surrogate = tf.mean(tf.add(bound, score)) as tf.Scalar;
      return { surrogate, bound };
    });
    return { ...out, state: nextState(state) };
  }
}

/** The registry entry (src/estimators/spec.ts). */
export const vimcoSpec: EstimatorSpec = {
  kind: 'vimco',
  args: [
    { name: 'k', kind: 'count', min: 2, below: { code: 'VMM3012', why: 'its baseline for each sample is built from the other samples' } },
    { name: 'baseline', kind: 'choice', choices: ['geometric', 'arithmetic'], default: 'geometric' },
  ],
  defaultK: 4,
  handlers: [],
  terms: 'sampled',
  summary: 'VIMCO: score function with leave-one-out baselines (Mnih & Rezende 2016)',
  fits: (ir, s) =>
    s.k < 2
      ? [{ ...err('VMM3012', `\`vimco\` needs k >= 2 samples: its baseline for each sample is built from the other samples; found k = ${s.k}`), atK: true }]
      : pointless(ir, s),
  make: (s) => new VimcoEstimator(s.k, argValue(s, 'baseline') as VimcoBaseline),
  explain: (s, l) => `${l.what}; not reparameterizable: score function with the VIMCO leave-one-out baseline (k = ${s.k}, ${argValue(s, 'baseline')})`,
  // The signals in float64, as vimcoSignals computes them on the host.
  torch: `def estimate(t, state, args):
    lw = t.term('logP') - t.term('logQ')
    bound = rt.logmeanexp(lw, 0)
    l = lw.detach().double()
    K = l.shape[0]
    full = torch.logsumexp(l, 0) - math.log(K)
    copies = l.unsqueeze(0).repeat(K, 1, 1)
    i = torch.arange(K)
    if args['baseline'] == 'geometric':
        copies[i, i] = (l.sum(0, keepdim=True) - l) / (K - 1)
        loo = torch.logsumexp(copies, 1) - math.log(K)
    else:
        copies[i, i] = -math.inf
        loo = torch.logsumexp(copies, 1) - math.log(K - 1)
    signals = (full - loo).float()
    score = (signals * t.term('logQScore')).sum(0)
    return {'surrogate': (bound + score).mean(), 'bound': bound, 'state': {**state, 'steps': state['steps'] + 1}}
`,
  plan: {
    signal: (s) => `VIMCO learning signal L - L^{-k} (${argValue(s, 'baseline')} leave-one-out)`,
    surrogate: () => 'surrogate = L + sum_k stop(L - L^{-k}) log q(discrete_k | x)    (Mnih & Rezende 2016)',
  },
};
