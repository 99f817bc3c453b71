/**
 * The relaxed (Gumbel-softmax) estimator through a compiled model: its bound and gradient against
 * the relaxed objective computed by quadrature. With two entries a relaxed draw is fixed by one
 * logistic variable, y = logSoftmax((logits + g) / τ) with g_1 - g_2 = logit(u), u ~ U(0, 1), so
 * E_q[log p(x, y) - log q(y)] is a one-dimensional integral over u, evaluated on a midpoint grid by
 * a handler that places the grid's draws on the sample plate.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { makeEstimator } from '../../src/estimators/registry.ts';
import { Rng } from '../../src/random/rng.ts';
import { relaxed, type Handler } from '../../src/lower/handlers.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { relaxedLogProb } from '../../src/lower/sites.ts';
import { runTrace, toSampleBatch } from '../../src/lower/trace.ts';
import { describeBackends } from '../estimators/backends.ts';
import { fakeBatch, irOf, TINY_VMA } from './helpers.ts';

const TINY = `${TINY_VMA}
train {
  estimator = relaxed(k: 1, temperature: 0.7)
}
`;
const TAU = 0.7;
const G = 4000;

/** Guide draws fixed at the grid: y = logSoftmax((logits + [L, 0]) / τ), L = logit(u_i), one per sample slot. */
function gridDraws(): Handler {
  const u = Array.from({ length: G }, (_, i) => (i + 0.5) / G);
  return {
    name: 'grid',
    process(msg) {
      if (msg.phase !== 'guide' || msg.site.role !== 'address' || !msg.dist.spec.enumerable) return;
      const logits = msg.dist.params[0]!; // the table of log-probabilities: plates [batch], event [2]
      const noise = tf.tensor(u.flatMap((x) => [Math.log(x / (1 - x)), 0]), [G, 1, 2]);
      const y = { t: tf.logSoftmax(tf.div(tf.add(tf.expandDims(logits.t, 0), noise), TAU)), plates: ['sample', ...logits.plates] };
      msg.value = { soft: { t: tf.exp(y.t), plates: y.plates }, logY: y };
      msg.logProb = relaxedLogProb(msg.dist, y, TAU);
    },
  };
}

describeBackends('relaxed estimator through a compiled model', () => {
  it('its bound and gradient match the relaxed objective computed by quadrature', () => {
    const ir = irOf(TINY);
    const model = new CompiledModel(ir, 4);
    const one = fakeBatch(ir, 1, { M: 2 }, 21);
    // Quadrature: the relaxed handler scores the model's y; the grid handler draws the guide's.
    const exact = tf.variableGrads(() => {
      const inputs = model.inputs(one);
      const handlers = [gridDraws(), relaxed(TAU)];
      const t = runTrace(ir, inputs, model.applyNet, { k: G, rng: new Rng(0), handlers });
      return tf.mean(tf.sub(toSampleBatch(t.logP, G, 1), toSampleBatch(t.logQ, G, 1))) as tf.Scalar;
    }, model.trainableVariables());
    const exactValue = exact.value.dataSync()[0]!;
    // Monte Carlo through the estimator: groups of n copies of the example, each group one draw of the mean gradient.
    const est = makeEstimator(ir.train.estimator);
    const n = 500;
    const groups = 24;
    const batch = { inputs: one.inputs.map((i) => ({ ...i, data: Float32Array.from({ length: i.data.length * n }, (_, j) => i.data[j % i.data.length]!), shape: [n, ...i.shape.slice(1)] })) };
    const rng = new Rng(5);
    const bounds: number[] = [];
    const grads: Record<string, number[]>[] = [];
    for (let g = 0; g < groups; g++) {
      let bound = 0;
      const r = tf.variableGrads(() => {
        const o = estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator: est, state: est.initState(), rng });
        bound = tf.mean(o.bound).dataSync()[0]!;
        return o.surrogate;
      }, model.trainableVariables());
      bounds.push(bound);
      grads.push(Object.fromEntries(Object.entries(r.grads).map(([k, v]) => [k, Array.from(v.dataSync())])));
      r.value.dispose();
      tf.dispose(r.grads);
    }
    const meanSe = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
      return { m, se: sd / Math.sqrt(xs.length) };
    };
    const b = meanSe(bounds);
    expect(Math.abs(b.m - exactValue)).toBeLessThan(4 * b.se + 1e-3);
    let worst = 0;
    for (const [name, g] of Object.entries(exact.grads)) {
      const ex = g.dataSync();
      for (let i = 0; i < ex.length; i++) {
        const s = meanSe(grads.map((d) => d[name]![i]!));
        worst = Math.max(worst, Math.abs(s.m - ex[i]!) / Math.max(s.se, 1e-5));
      }
    }
    expect(worst, 'worst |mean - quadrature| / SE over all gradient coordinates').toBeLessThan(4.5);
    exact.value.dispose();
    tf.dispose(exact.grads);
    model.dispose();
  });
});
