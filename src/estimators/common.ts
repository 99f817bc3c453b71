/** Small shared helpers for the estimators: argument validation and the K-sample log-mean-exp. */
import * as tf from '@tensorflow/tfjs-core';
import type { EnumeratedTerms, EstimatorState, EstimatorTerms, SampledTerms } from './types.ts';

export function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

export function initialState(): EstimatorState {
  return { steps: 0, runningMean: null };
}

export function checkK(where: string, k: number, min = 1): void {
  if (!Number.isInteger(k) || k < min) {
    fail(where, `K (samples per example) must be an integer >= ${min}, got ${k}`);
  }
}

export function checkState(where: string, state: EstimatorState): void {
  if (state === null || typeof state !== 'object' || !Number.isInteger(state.steps)) {
    fail(where, 'invalid estimator state: pass the `state` returned by initState() or by the previous estimate()');
  }
}

function shapeStr(t: tf.Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

function checkFloat(where: string, name: string, t: tf.Tensor): void {
  if (!(t instanceof tf.Tensor)) fail(where, `${name} must be a tf.Tensor`);
  if (t.dtype !== 'float32') fail(where, `${name} must be float32, got ${t.dtype}`);
}

/**
 * Checks sampled terms: `logWeights [K, B]` with the estimator's K, and the optional
 * `logQDiscrete [K, B]` / `baseline [B]` according to `need` ('required' | 'forbidden').
 * Returns B.
 */
export function checkSampled(
  where: string,
  terms: EstimatorTerms,
  k: number,
  need: { logQDiscrete: 'required' | 'forbidden'; baseline: 'required' | 'forbidden' },
): SampledTerms & { b: number } {
  if (terms.kind !== 'sampled') fail(where, `expects sampled terms (logWeights [K, B]), got '${terms.kind}' terms`);
  const { logWeights, logQDiscrete, baseline } = terms;
  checkFloat(where, 'logWeights', logWeights);
  if (logWeights.rank !== 2) fail(where, `logWeights must be [K, B], got ${shapeStr(logWeights)}`);
  const [kk, b] = logWeights.shape as [number, number];
  if (kk !== k) fail(where, `logWeights has ${kk} samples on axis 0 but the estimator was built for K = ${k}`);
  if (logQDiscrete !== undefined) {
    if (need.logQDiscrete === 'forbidden') {
      fail(where, 'got logQDiscrete, but this estimator has no score-function term: discrete guide sites need vimco, reinforce or enumerate');
    }
    checkFloat(where, 'logQDiscrete', logQDiscrete);
    if (logQDiscrete.rank !== 2 || logQDiscrete.shape[0] !== k || logQDiscrete.shape[1] !== b) {
      fail(where, `logQDiscrete must be [K, B] = [${k}, ${b}], got ${shapeStr(logQDiscrete)}`);
    }
  } else if (need.logQDiscrete === 'required') {
    fail(where, 'needs logQDiscrete [K, B] (the summed guide log-probs of the sampled discrete sites)');
  }
  if (baseline !== undefined) {
    if (need.baseline === 'forbidden') fail(where, 'got a learned baseline, but this estimator does not use one');
    checkFloat(where, 'baseline', baseline);
    if (baseline.rank !== 1 || baseline.shape[0] !== b) fail(where, `baseline must be [B] = [${b}], got ${shapeStr(baseline)}`);
  } else if (need.baseline === 'required') {
    fail(where, 'needs a learned baseline b(x) [B] (reinforce(baseline: nvil))');
  }
  return { ...terms, b };
}

/** Checks enumerated terms: `logJoint [E, K, B]` and `logQAddress [E, B]`. */
export function checkEnumerated(where: string, terms: EstimatorTerms, k: number): EnumeratedTerms {
  if (terms.kind !== 'enumerated') fail(where, `expects enumerated terms (logJoint [E, K, B], logQAddress [E, B]), got '${terms.kind}' terms`);
  const { logJoint, logQAddress } = terms;
  checkFloat(where, 'logJoint', logJoint);
  checkFloat(where, 'logQAddress', logQAddress);
  if (logJoint.rank !== 3) fail(where, `logJoint must be [E, K, B], got ${shapeStr(logJoint)}`);
  const [e, kk, b] = logJoint.shape as [number, number, number];
  if (kk !== k) fail(where, `logJoint has ${kk} samples on axis 1 but the estimator was built for K = ${k}`);
  if (logQAddress.rank !== 2 || logQAddress.shape[0] !== e || logQAddress.shape[1] !== b) {
    fail(where, `logQAddress must be [E, B] = [${e}, ${b}], got ${shapeStr(logQAddress)}`);
  }
  return terms;
}

/** `log (1/K) sum_k exp(l_k)` over `axis` (the K-sample importance-weighted bound of its samples). */
export function logMeanExp(l: tf.Tensor, axis: number | number[] = 0): tf.Tensor {
  const axes = Array.isArray(axis) ? axis : [axis];
  let k = 1;
  for (const a of axes) k *= l.shape[a < 0 ? l.rank + a : a]!;
  return tf.sub(tf.logSumExp(l, axes), Math.log(k));
}

export function nextState(state: EstimatorState, runningMean: number | null = state.runningMean): EstimatorState {
  return { steps: state.steps + 1, runningMean };
}
