/**
 * VSM-style latent slots (models/vsm_mnist.vmm): semantic slots `sem : real[S, H]` inferred from the
 * episode's entries by attention, addressed by a discrete latent.
 * - The slots' KL term: with every other site blocked (the `block` handler), the trace's
 *   log q(sem) - log p(sem) averages to the closed-form KL(q || p) of the two Gaussians.
 * - On a model small enough for an exact marginal (x ~ Normal(sem[a], σ), sem ~ N(0, 1), a uniform:
 *   p(x) = N(x; 0, 1 + σ²)), the K-sample bound lies below log p(x) and approaches it as K grows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.ts';
import { block } from '../../src/lower/handlers.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { importanceBound } from '../../src/lower/objective.ts';
import { runTrace, toSampleBatch } from '../../src/lower/trace.ts';
import { describeBackends } from '../estimators/backends.ts';
import { fakeBatch, irOf } from './helpers.ts';

const SLOTS = `
model slots
const D = 6
const H = 3
const S = 4
size M
data x : binary[D]
memory mem : binary[M, D]
net key = linear(D, H)
net val = linear(D, H)
param queries : real[S, H] = normal(0.5)
net prior_sem = linear(H, 2 * H)
net post_sem = linear(H, 2 * H)
net dec = linear(H, D)
let ev = attend(queries, key(mem), val(mem))
latent sem : real[S, H] ~ Normal(prior_sem(ev))
discrete address a ~ Categorical(sem)
observe x ~ Bernoulli(logits: dec(sem[a]))
guide {
  let e = attend(queries, key(mem), val(mem))
  sem ~ Normal(post_sem(e + key(x)))
  a ~ Categorical(logits: sem @ key(x))
}
`;

const EXACT = `
model exact_slots
const S = 3
data x : real[1]
param loc : real[S, 1] = normal(0.3)
latent sem : real[S, 1] ~ Normal(0, 1)
discrete address a ~ Categorical(sem)
observe x ~ Normal(sem[a], 0.5)
guide {
  sem ~ Normal(loc * 0, 1)
  a ~ Categorical(S)
}
`;

describeBackends('latent slots', () => {
  it("the slots' KL term averages to the closed-form KL of the two Gaussians", () => {
    const ir = irOf(SLOTS);
    const model = new CompiledModel(ir, 2);
    const batch = fakeBatch(ir, 3, { M: 5 }, 4);
    const k = 4000;
    tf.tidy(() => {
      const t = runTrace(ir, model.inputs(batch), model.applyNet, { k, rng: new Rng(1), handlers: [block(new Set(['a', 'x']))] });
      const diff = tf.sub(toSampleBatch(t.logQ, k, 3), toSampleBatch(t.logP, k, 3)); // [K, B]
      const q = t.guideDists.get('sem')!;
      const p = t.modelDists.get('sem')!;
      if (q.spec.name !== 'Normal' || p.spec !== q.spec) throw new Error('expected Normal slots');
      // Closed form (the entry's), summed over the slot's coordinates and the slots: [B].
      const closed = tf.sum(q.spec.kl!(q.params.map((v) => v.t), p.params.map((v) => v.t)), -1).dataSync();
      const d = diff.arraySync() as number[][];
      for (let b = 0; b < 3; b++) {
        const xs = d.map((row) => row[b]!);
        const mean = xs.reduce((s, v) => s + v, 0) / k;
        const se = Math.sqrt(xs.reduce((s, v) => s + (v - mean) ** 2, 0) / (k - 1) / k);
        expect(Math.abs(mean - closed[b]!)).toBeLessThan(4 * se + 1e-4);
        expect(closed[b]!).toBeGreaterThan(0);
      }
    });
    model.dispose();
  });

  it('the K-sample bound lies below the exact log-likelihood and approaches it as K grows', () => {
    const ir = irOf(EXACT);
    const model = new CompiledModel(ir, 3);
    const xs = [-1.3, 0.2, 2.1];
    const batch = { inputs: [{ name: 'x', data: Float32Array.from(xs), shape: [3, 1], plates: ['batch' as const] }] };
    const exact = xs.map((x) => -0.5 * Math.log(2 * Math.PI * 1.25) - (x * x) / (2 * 1.25));
    const bound = (k: number, reps: number) => {
      const out = xs.map(() => [] as number[]);
      for (let r = 0; r < reps; r++) {
        const v = tf.tidy(() => importanceBound(ir, model.inputs(batch), model.applyNet, { k, chunk: k, rng: new Rng(100 + r), reads: 'sample' }));
        v.forEach((b, i) => out[i]!.push(b));
      }
      return out.map((vs) => {
        const m = vs.reduce((a, b) => a + b, 0) / vs.length;
        return { m, se: Math.sqrt(vs.reduce((a, b) => a + (b - m) ** 2, 0) / (vs.length - 1) / vs.length) };
      });
    };
    const small = bound(2, 400);
    const large = bound(2000, 20);
    xs.forEach((_, i) => {
      expect(small[i]!.m + 2 * small[i]!.se).toBeLessThan(exact[i]!);
      expect(small[i]!.m).toBeLessThan(large[i]!.m);
      expect(Math.abs(large[i]!.m - exact[i]!)).toBeLessThan(0.02 + 4 * large[i]!.se);
    });
    model.dispose();
  });
});
