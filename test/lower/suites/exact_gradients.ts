/**
 * The estimators against exact gradients through a compiled model, shared by the backend tests
 * (test/lower/pipeline.test.ts, test/lower/enumerate_shared.test.ts: every backend, vmm's own
 * kernels) and test/runtime/generic_path.test.ts (cpu without them, the path native TensorFlow
 * takes). Each function registers its tests inside the caller's describe, on the backend the
 * caller selected.
 *
 * - `exactGradientChecks`: on a model small enough to enumerate, the mean of many VIMCO /
 *   REINFORCE / RWS gradient draws matches the exact gradient of the same objective (all K-tuples
 *   of addresses enumerated) within 4 standard errors; the K-sample bound is below the exact
 *   log p(x) and rises with K; enumeration gives the exact log-likelihood.
 * - `sharedEntriesCheck`: enumeration with learned entries shared by the model and the address
 *   guide (`stack(mem, dummies)`, as in the Omniglot models): the guide-training term
 *   sum_i stop(post_i) log q(a = i | x) must move the guide only, so the learned entries follow the
 *   exact gradient of the bound. With no continuous latent the enumerated bound is log p(x)
 *   itself, whose gradient is computed here directly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { EstimatorKind, IrProgram } from '../../../src/ir/types.ts';
import { CompiledModel } from '../../../src/lower/compile.ts';
import { runTrace, toSampleBatch } from '../../../src/lower/trace.ts';
import { enumerate } from '../../../src/lower/handlers.ts';
import { stopGradient } from '../../../src/kernels/stop_gradient.ts';
import { estimateObjective } from '../../../src/lower/objective.ts';
import { makeEstimator } from '../../../src/estimators/index.ts';
import { Rng } from '../../../src/random/rng.ts';
import type { EstimatorResult } from '../../../src/estimators/types.ts';
import { fakeBatch, gradsOf, irOf, repeatExample, withEstimator, worstDeviation, TINY_VMA as TINY } from '../helpers.ts';

/**
 * The exact objective E_{a_1..a_K ~ q}[log (1/K) sum_k p(x, a_k) / q(a_k | x)] of the tiny model,
 * by summing over all M^K tuples; differentiable in every variable.
 */
function exactObjective(model: CompiledModel, ir: IrProgram, batch: ReturnType<typeof fakeBatch>, k: number, wake = false): tf.Scalar {
  const inputs = model.inputs(batch);
  const trace = runTrace(ir, inputs, model.applyNet, { k: 1, rng: new Rng(0), handlers: [enumerate()] });
  const b = batch.inputs[0]!.shape[0]!;
  const e = trace.logQEnum!.t.shape[0]!;
  const lp = tf.squeeze(toSampleBatch(trace.logP, 1, b, e), [1]); // [M, B]: log p(x, a = i)
  const lq = trace.logQEnum!.t; // [M, B]: log q(a = i | x)
  const m = lp.shape[0]!;
  const terms: tf.Tensor[] = [];
  const tuple = new Array<number>(k).fill(0);
  for (let t = 0; t < m ** k; t++) {
    let r = t;
    for (let j = 0; j < k; j++) {
      tuple[j] = r % m;
      r = Math.floor(r / m);
    }
    const rows = tuple.map((i) => tf.slice(lp, [i, 0], [1, b]));
    const qs = tuple.map((i) => tf.slice(lq, [i, 0], [1, b]));
    const logW = tf.sub(tf.concat(rows, 0), tf.concat(qs, 0)); // [K, B]
    const L = tf.sub(tf.logSumExp(logW, 0), Math.log(k)); // [B]
    const prob = tf.exp(tf.sum(tf.concat(qs, 0), 0)); // [B]
    if (!wake) {
      terms.push(tf.mul(prob, L));
      continue;
    }
    // Reweighted wake-sleep's expected update: the model follows the bound's gradient with the
    // guide held fixed, the guide follows sum_k ŵ_k ∇ log q(a_k) (Bornschein & Bengio 2015).
    const lqK = tf.concat(qs, 0);
    const Lp = tf.sub(tf.logSumExp(tf.sub(tf.concat(rows, 0), stopGradient(lqK)), 0), Math.log(k));
    const w = stopGradient(tf.softmax(tf.transpose(logW))); // [B, K]
    const wakeQ = tf.sum(tf.mul(tf.transpose(w), lqK), 0);
    terms.push(tf.mul(stopGradient(prob), tf.add(Lp, wakeQ)));
  }
  return tf.mean(tf.addN(terms)) as tf.Scalar;
}

/** The estimators `exactGradientChecks` compares with the exact gradient, by label. */
export type ExactCase = 'vimco geometric' | 'vimco arithmetic' | 'reinforce, no baseline' | 'reinforce, running baseline' | 'rws (wake-phase expectation)';

/**
 * Registers the exact-gradient checks of the estimators through the compiled tiny model: of
 * every estimator setting, or of those in `only`.
 */
export function exactGradientChecks(only?: readonly ExactCase[]): void {
  const ir0 = irOf(TINY);
  const M = 3;
  const one = fakeBatch(ir0, 1, { M }, 11);
  /** `n` copies of the same example: the batch mean of the surrogate averages n gradient draws. */
  const copies = (n: number) => repeatExample(one, n);

  const all: [ExactCase, EstimatorKind, IrProgram['train']['estimator']['args']][] = [
    ['vimco geometric', 'vimco', { baseline: 'geometric' }],
    ['vimco arithmetic', 'vimco', { baseline: 'arithmetic' }],
    ['reinforce, no baseline', 'reinforce', { baseline: 'none' }],
    ['reinforce, running baseline', 'reinforce', { baseline: 'running' }],
    ['rws (wake-phase expectation)', 'rws', {}],
  ];
  const cases = all.filter(([label]) => !only || only.includes(label));
  for (const [label, kind, extra] of cases) {
    it(`${label}: mean gradient within 4 standard errors of the exact one`, async () => {
      const K = 3;
      const ir = withEstimator(ir0, kind, K, extra);
      const model = new CompiledModel(ir, 5);
      const exact = await gradsOf(model, () => exactObjective(model, ir, one, K, kind === 'rws'));
      const est = makeEstimator(ir.train.estimator);
      let state = est.initState();
      const rng = new Rng(99);
      const groups = 30;
      const perGroup = 400;
      const batch = copies(perGroup);
      const draws: Map<string, Float32Array>[] = [];
      for (let g = 0; g < groups; g++) {
        let settle: EstimatorResult['settle'];
        draws.push(
          await gradsOf(model, () => {
            const r = estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state, rng });
            state = r.state;
            settle = r.settle;
            return r.surrogate;
          }),
        );
        // State computed on the device (webgpu: REINFORCE's running mean) is settled as the trainer does.
        if (settle) {
          state = settle.state((await settle.value.data())[0]!);
          settle.value.dispose();
        }
      }
      expect(worstDeviation(exact, draws), `${label}: worst |mean - exact| / SE`).toBeLessThan(4);
      model.dispose();
    });
  }

  it('the K-sample bound is below log p(x), rises with K, and enumeration is exact', async () => {
    const ir = withEstimator(ir0, 'enumerate', 1);
    const model = new CompiledModel(ir, 5);
    const t = tf.tidy(() => {
      const inputs = model.inputs(one);
      const trace = runTrace(ir, inputs, model.applyNet, { k: 1, rng: new Rng(0), handlers: [enumerate()] });
      const logPx = tf.logSumExp(toSampleBatch(trace.logP, 1, 1, M), [0, 1]);
      const est = makeEstimator(ir.train.estimator);
      const r = estimateObjective({ ir, inputs, applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(1) });
      const byK = [1, 2, 3, 4].map((k) => exactObjective(model, ir, one, k));
      return tf.concat([tf.reshape(logPx, [1]), tf.reshape(r.bound, [1]), ...byK.map((b) => tf.reshape(b, [1]))]);
    });
    const read = Array.from(await t.data());
    t.dispose();
    const values = { logPx: read[0]!, enumBound: read[1]!, byK: read.slice(2) };
    expect(values.enumBound).toBeCloseTo(values.logPx, 4);
    for (const b of values.byK) expect(b).toBeLessThanOrEqual(values.logPx + 1e-5);
    for (let i = 1; i < values.byK.length; i++) expect(values.byK[i]!).toBeGreaterThanOrEqual(values.byK[i - 1]! - 1e-6);
    expect(values.byK[3]! - values.byK[0]!).toBeGreaterThan(1e-3);
    model.dispose();
  });
}

const MODEL = `
model shared_entries
const D = 5
size M
data x : binary[D]
memory mem : binary[M, D]
param dummies : real[2, D] = normal(0.5)
net h = linear(D, 3)
net f = linear(D, D)
let full = stack(mem, dummies)
discrete address a ~ Categorical(full)
observe x ~ Bernoulli(logits: f(full[a]))
guide {
  let entries = stack(mem, dummies)
  a ~ Categorical(logits: h(entries) @ h(x))
}
train {
  estimator = enumerate(k: 1)
}
`;

/** Registers the check of the gradient of learned entries shared by model and guide. */
export function sharedEntriesCheck(): void {
  it('the learned entries get exactly the gradient of log p(x); the guide still trains', async () => {
    const ir = irOf(MODEL);
    const model = new CompiledModel(ir, 6);
    const batch = fakeBatch(ir, 3, { M: 4 }, 8);
    const est = makeEstimator(ir.train.estimator);
    const vars = model.trainableVariables();
    const { grads } = tf.variableGrads(() => estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(1) }).surrogate, vars);
    // Exact: log p(x) = logsumexp_a [log p(a) + log p(x | full[a])], mean over the batch.
    const exact = tf.variableGrads(() => {
      const inputs = model.inputs(batch);
      const mem = inputs.get('mem')!.t; // [B, M, D]
      const dummies = model.variables.get('param/dummies')!;
      const full = tf.concat([mem, tf.broadcastTo(tf.expandDims(dummies, 0), [3, 2, 5])], 1); // [B, M + 2, D]
      const logits = model.applyNet('f', full); // [B, M + 2, D]
      const x = tf.expandDims(inputs.get('x')!.t, 1); // [B, 1, D]
      const lik = tf.sum(tf.sub(tf.mul(x, logits), tf.softplus(logits)), -1); // [B, M + 2]
      return tf.mean(tf.sub(tf.logSumExp(lik, 1), Math.log(6))) as tf.Scalar;
    }, vars);
    const dName = model.variables.get('param/dummies')!.name;
    const hName = [...model.variables.entries()].find(([k]) => k.startsWith('net/h/'))![1].name;
    const got = (await grads[dName]!.array()) as number[][];
    const want = (await exact.grads[dName]!.array()) as number[][];
    got.forEach((row, i) => row.forEach((g, j) => expect(g).toBeCloseTo(want[i]![j]!, 5)));
    // The guide's own net is trained by the guide term (a nonzero gradient the exact bound lacks).
    expect(Math.max(...Array.from(exact.grads[hName] ? await exact.grads[hName].data() : [0]).map(Math.abs))).toBe(0);
    expect(Math.max(...Array.from(await grads[hName]!.data()).map(Math.abs))).toBeGreaterThan(1e-6);
    tf.dispose([grads, exact.grads, exact.value]);
    model.dispose();
  });
}
