/**
 * Enumeration with learned entries shared by the model and the address guide (`stack(mem, dummies)`,
 * as in the Omniglot models): the guide-training term sum_i stop(post_i) log q(a = i | x) must move
 * the guide only, so the learned entries follow the exact gradient of the bound. With no continuous
 * latent the enumerated bound is log p(x) itself, whose gradient is computed here directly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { makeEstimator } from '../../src/estimators/registry.ts';
import { Rng } from '../../src/random/rng.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { describeBackends } from '../estimators/backends.ts';
import { fakeBatch, irOf } from './helpers.ts';

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

describeBackends('enumerate with entries shared by model and guide', () => {
  it('the learned entries get exactly the gradient of log p(x); the guide still trains', () => {
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
    const got = grads[dName]!.arraySync() as number[][];
    const want = exact.grads[dName]!.arraySync() as number[][];
    got.forEach((row, i) => row.forEach((g, j) => expect(g).toBeCloseTo(want[i]![j]!, 5)));
    // The guide's own net is trained by the guide term (a nonzero gradient the exact bound lacks).
    expect(Math.max(...Array.from(exact.grads[hName]?.dataSync() ?? [0]).map(Math.abs))).toBe(0);
    expect(Math.max(...Array.from(grads[hName]!.dataSync()).map(Math.abs))).toBeGreaterThan(1e-6);
    tf.dispose([grads, exact.grads, exact.value]);
    model.dispose();
  });
});
