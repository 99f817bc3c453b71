/**
 * The Titans MAC architecture (memory as a context: Behrouz, Zhong & Mirrokni 2025,
 * arXiv:2501.00663, Sec. 4.1) as a vmm model: an attention over the episode's entries
 * (short-term memory), P persistent learned tokens and the neural memory's recall (long-term
 * memory). models/titans_mac_omniglot.vmm checks and trains with finite bounds; a tiny MAC model
 * with a two-valued discrete latent has K-sample bounds below the exact log p(x), and enumeration
 * gives log p(x) exactly.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { irOf, irOfFile, fakeBatch, withEstimator } from './helpers.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { runTrace, toSampleBatch } from '../../src/lower/trace.ts';
import { enumerate } from '../../src/lower/handlers.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { Rng } from '../../src/random/rng.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { describeBackends } from '../runtime/backends.ts';
import { selectBackend } from '../../src/runtime/backend.ts';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'titans_mac_omniglot.vmm');

// The MAC context of the Omniglot model in miniature: entries, persistent tokens, the recall.
const TINY = `
model tiny_mac
const D = 5
const H = 4
const P = 2
size M
data x : binary[D]
memory mem : binary[M, D]
param codes : real[2, D] = normal(1)
param query : real[H] = normal(0.5)
param persist : real[P, H] = normal(0.5)
net h = linear(D, H)
net kproj = linear(D, H)
net vproj = linear(D, H) >> tanh
net gate = linear(D, 3)
net row = reshape(1, H)
net dec = linear(2 * H, D)
net g = linear(2 * H, 2)
neural nm = mlp(H, 6, H, act: tanh) writes mem(key: kproj, value: vproj, gates: gate, chunk: 2, lr: 0.5, momentum: 0.5)
let lt = nm(query)
let tokens = stack(h(mem), persist, row(lt))
let c = attend(query, tokens, tokens)
discrete k ~ Categorical(codes)
observe x ~ Bernoulli(logits: dec(concat(c, lt)) + codes[k])
guide {
  let gt = stack(h(mem), persist, row(nm(query)))
  k ~ Categorical(logits: g(concat(attend(h(x), gt, gt), nm(h(x)))))
}
train {
  estimator = vimco(k: 2)
}
`;

// The Omniglot model's convolutions take minutes per step on the plain-JS cpu backend: this one
// runs on the backend training picks (wasm here, native TensorFlow where installed).
describe('models/titans_mac_omniglot.vmm', () => {
  beforeAll(() => selectBackend({}));

  it('models/titans_mac_omniglot.vmm checks and trains: finite bounds, every variable moves, no leak', () => {
    const ir0 = irOfFile(MODEL);
    const ir = { ...ir0, train: { ...ir0.train, batch: 2 } };
    const batch = fakeBatch(ir, 2, { M: 2 }, 5);
    const trainer = new Trainer(ir, 3);
    const before = new Map([...trainer.model.variables].map(([n, v]) => [n, v.dataSync().slice()]));
    const m = trainer.step(batch);
    expect(Number.isFinite(m.bound), JSON.stringify(m)).toBe(true);
    expect(m.bound).toBeLessThan(0);
    const tensors = tf.memory().numTensors;
    trainer.step(batch);
    expect(tf.memory().numTensors, 'tensors leaked by a step').toBe(tensors);
    const still = [...trainer.model.variables.keys()].filter((n) => {
      const now = trainer.model.variables.get(n)!.dataSync();
      return now.every((x, i) => x === before.get(n)![i]);
    });
    expect(still, 'variables that did not move').toEqual([]);
    trainer.dispose();
  });
});

describeBackends('a tiny Titans MAC model', () => {
  it('the K-sample bound of a tiny MAC model is below the exact log p(x); enumeration is exact', () => {
    const ir = withEstimator(irOf(TINY), 'enumerate', 1);
    const B = 3;
    const batch = fakeBatch(ir, B, { M: 4 }, 7);
    const model = new CompiledModel(ir, 11);
    const v = tf.tidy(() => {
      const inputs = model.inputs(batch);
      const trace = runTrace(ir, inputs, model.applyNet, { k: 1, rng: new Rng(0), handlers: [enumerate()] });
      const lp = tf.squeeze(toSampleBatch(trace.logP, 1, B, 2), [1]); // [2, B]: log p(x, k)
      const lq = trace.logQEnum!.t; // [2, B]: log q(k | x)
      const logPx = tf.logSumExp(lp, 0); // [B]
      // Exact K-sample bounds by enumerating the 2^K tuples of draws from q.
      const exact = (K: number) => {
        let total = tf.zeros([B]);
        for (let t = 0; t < 2 ** K; t++) {
          const idx = Array.from({ length: K }, (_, j) => (t >> j) & 1);
          const lw = tf.stack(idx.map((i) => tf.sub(tf.gather(lp, i), tf.gather(lq, i))));
          const prob = tf.exp(tf.addN(idx.map((i) => tf.gather(lq, i))));
          total = tf.add(total, tf.mul(prob, tf.sub(tf.logSumExp(lw, 0), Math.log(K))));
        }
        return Array.from(total.dataSync());
      };
      const est = makeEstimator(ir.train.estimator);
      const r = estimateObjective({ ir, inputs, applyNet: model.applyNet, estimator: est, state: est.initState(), rng: new Rng(1) });
      return { logPx: Array.from(logPx.dataSync()), enumBound: tf.mean(r.bound).dataSync()[0]!, byK: [1, 2, 4].map(exact) };
    });
    const mean = v.logPx.reduce((a, b) => a + b, 0) / B;
    expect(v.enumBound).toBeCloseTo(mean, 4);
    for (const bounds of v.byK) bounds.forEach((b, i) => expect(b).toBeLessThanOrEqual(v.logPx[i]! + 1e-5));
    expect(v.byK[0]!.reduce((a, b) => a + b, 0) / B).toBeLessThan(mean - 1e-4);
    v.byK[2]!.forEach((b, i) => expect(b).toBeGreaterThanOrEqual(v.byK[0]![i]! - 1e-6));
    model.dispose();
  });
});
