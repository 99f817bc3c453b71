/**
 * Every reported NLL must be a bound on a real model's likelihood (issue #20).
 *
 * 1. Memory-independent random data: targets are uniform random bits, memories random bits drawn
 *    independently, so log p(x | mem) <= -H(x) = -D log 2 for every valid model. After training,
 *    the held-out bound of every addressing mode and estimator must stay below -D log 2 within its
 *    standard error. The old soft read (weights q(a | x), a function of the target) broke this.
 * 2. A model small enough to compute log p(x) exactly: enumeration over the address for hard
 *    reads; for the soft-attention model (a continuous query u ~ N(0, I) of width 1), quadrature
 *    over u. Every mode's importance-sampled bound must be <= the exact value within noise.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backend.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { applySettings } from '../../src/check/settings.ts';
import { importanceBound } from '../../src/lower/objective.ts';
import { runTrace, type Inputs } from '../../src/lower/trace.ts';
import { condition, readHandlers } from '../../src/lower/handlers.ts';
import { alignTo } from '../../src/lower/plates.ts';
import type { RawBatch } from '../../src/data/bind.ts';
import type { IrProgram } from '../../src/ir/types.ts';
import { Rng } from '../../src/random/rng.ts';
import { irOf, tinyVma } from './helpers.ts';

beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
});

const D = 8;
const M = 16;

const RANDOM_MODEL = `
model random_bits
const D = ${D}
const H = 8
size M
data x : binary[D]
memory mem : binary[M, D]
net h = mlp(D, 32, H)
net g = mlp(D, 32, H)
net dec = mlp(H, 32, D)
discrete address a ~ Categorical(mem)
observe x ~ Bernoulli(logits: dec(g(mem[a])))
guide {
  a ~ Categorical(logits: h(mem) @ h(x))
}
train {
  estimator = vimco(k: 4)
  optimizer = adam(lr: 3e-3)
  batch = 32
}
`;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Uniform random bits for the targets and, independently, for the memories. */
function randomBatch(batch: number, seed: number): RawBatch {
  const r = lcg(seed);
  const bits = (n: number) => Float32Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
  return {
    inputs: [
      { name: 'x', data: bits(batch * D), shape: [batch, D], plates: ['batch'] },
      { name: 'mem', data: bits(batch * M * D), shape: [batch, M, D], plates: ['batch'] },
    ],
  };
}

function heldOutBound(trainer: Trainer, ir: IrProgram, soft: boolean): { mean: number; se: number } {
  const rng = new Rng(7);
  const all: number[] = [];
  for (let i = 0; i < 4; i++) {
    const raw = randomBatch(64, 10_000 + i);
    const b = tf.tidy(() => importanceBound(ir, trainer.model.inputs(raw), trainer.model.applyNet, { k: 32, chunk: 32, rng, reads: soft ? 'soft' : 'sample' }));
    all.push(...b);
  }
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const sd = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / (all.length - 1));
  return { mean, se: sd / Math.sqrt(all.length) };
}

describe('bounds are bounds: memory-independent random data', () => {
  const entropy = D * Math.log(2);
  const modes: Array<{ name: string; o: Parameters<typeof applySettings>[1] }> = [
    { name: 'hard (vimco)', o: { estimator: 'vimco', k: 4 } },
    { name: 'soft attention', o: { addressing: 'soft', k: 4 } },
    { name: 'enumerate', o: { estimator: 'enumerate' } },
    { name: 'rws', o: { estimator: 'rws', k: 4 } },
    { name: 'relaxed', o: { estimator: 'relaxed', k: 4 } },
    { name: 'reinforce', o: { estimator: 'reinforce', k: 4 } },
  ];
  for (const { name, o } of modes) {
    it(`${name}: the held-out bound stays below -D log 2 = ${(-entropy).toFixed(2)}`, () => {
      const ir = applySettings(irOf(RANDOM_MODEL), o);
      const trainer = new Trainer(ir, 3);
      for (let step = 0; step < 250; step++) trainer.step(randomBatch(32, step + 1));
      const soft = ir.train.estimator.kind === 'soft';
      const { mean, se } = heldOutBound(trainer, ir, soft);
      // The bound is a lower bound on log p(x) <= -D log 2: allow three standard errors of noise.
      expect(mean, `${name}: held-out bound ${mean.toFixed(3)} ± ${se.toFixed(3)}`).toBeLessThan(-entropy + 3 * se);
      trainer.dispose();
    }, 60_000);
  }
});

/** One address over M entries of 3 pixels; a width-1 addressing embedding so soft attention's query is 1-D. */
const EXACT_MODEL = tinyVma(3, 1, 'exact');

describe('bounds are bounds: below the exact log-likelihood', () => {
  const batch = (): RawBatch => {
    const r = lcg(5);
    const bits = (n: number) => Float32Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
    return {
      inputs: [
        { name: 'x', data: bits(6 * 3), shape: [6, 3], plates: ['batch'] },
        { name: 'mem', data: bits(6 * 4 * 3), shape: [6, 4, 3], plates: ['batch'] },
      ],
    };
  };

  /** log p(x) of the hard model: log sum_i p(a = i) p(x | m_i), every address on the enum plate. */
  const exactHard = (ir: IrProgram, trainer: Trainer, raw: RawBatch): Float32Array =>
    tf.tidy(() => {
      const tr = runTrace(ir, trainer.model.inputs(raw), trainer.model.applyNet, { k: 1, rng: new Rng(1), handlers: readHandlers('enumerate') });
      // logP = log p(a = i) + log p(x | a = i) on the [enum, batch] plates.
      return tf.logSumExp(alignTo(tr.logP, ['enum', 'batch'], undefined, { batch: 6 }), 0).dataSync() as Float32Array;
    });

  /** R independent S-sample bounds per example: their mean and standard error. */
  const boundStats = (ir: IrProgram, trainer: Trainer, raw: RawBatch, reads: 'sample' | 'soft', s: number, r = 30) => {
    const rng = new Rng(3);
    const runs: Float32Array[] = [];
    for (let i = 0; i < r; i++) runs.push(tf.tidy(() => importanceBound(ir, trainer.model.inputs(raw), trainer.model.applyNet, { k: s, chunk: s, rng, reads })));
    return Array.from({ length: 6 }, (_, b) => {
      const v = runs.map((x) => x[b]!);
      const mean = v.reduce((p, q) => p + q, 0) / r;
      const sd = Math.sqrt(v.reduce((p, q) => p + (q - mean) ** 2, 0) / (r - 1));
      return { mean, se: sd / Math.sqrt(r) };
    });
  };

  it('hard reads, every estimator: the 8-sample bound is below exact log p(x) in expectation (enumeration)', () => {
    for (const est of ['vimco', 'enumerate', 'rws', 'relaxed', 'reinforce']) {
      const ir = applySettings(irOf(EXACT_MODEL), { estimator: est, k: 4 });
      const trainer = new Trainer(ir, 2);
      for (let s = 0; s < 30; s++) trainer.step(batch());
      const exact = exactHard(ir, trainer, batch());
      // A K-sample bound is below log p(x) in expectation: its mean over R runs, within 3 standard errors.
      const stats = boundStats(ir, trainer, batch(), 'sample', 8);
      for (let b = 0; b < 6; b++) expect(stats[b]!.mean, `${est}, example ${b}`).toBeLessThanOrEqual(exact[b]! + 3 * stats[b]!.se + 1e-4);
      trainer.dispose();
    }
  }, 60_000);

  it('soft attention: the bound is below exact log p(x) of the soft model (quadrature over the query)', () => {
    const ir = applySettings(irOf(EXACT_MODEL), { addressing: 'soft', k: 4 });
    const query = ir.model.find((s) => s.stmt === 'site' && s.role === 'latent');
    expect(query, 'soft addressing adds a query latent to the model').toBeDefined();
    const trainer = new Trainer(ir, 2);
    for (let s = 0; s < 30; s++) trainer.step(batch());
    // log p(x) = log ∫ N(u; 0, 1) p(x | u) du on a fine grid (p(x | u) is smooth and bounded).
    const quadrature = (raw: RawBatch): number[] => {
      const n = raw.inputs[0]!.shape[0]!;
      const grid = 2001;
      const du = 20 / (grid - 1);
      const logLik: number[][] = Array.from({ length: n }, () => []);
      tf.tidy(() => {
        const inputs: Inputs = trainer.model.inputs(raw);
        for (let g = 0; g < grid; g++) {
          const value = { t: tf.fill([n, 1], -10 + g * du), plates: ['batch' as const] };
          const tr = runTrace(ir, inputs, trainer.model.applyNet, { k: 1, rng: new Rng(1), handlers: [condition(new Map([[query!.name, value]])), ...readHandlers('soft')] });
          // logP holds log N(u; 0, 1) + log p(x | u) (the address has no density: a function of u).
          const lp = tr.logP.t.dataSync() as Float32Array;
          for (let b = 0; b < n; b++) logLik[b]!.push(lp[b]!);
        }
      });
      return logLik.map((v) => {
        const m = Math.max(...v);
        return m + Math.log(v.reduce((acc, x) => acc + Math.exp(x - m), 0) * du);
      });
    };
    const raw = batch();
    const exact = quadrature(raw);
    const stats = boundStats(ir, trainer, raw, 'soft', 64);
    for (let b = 0; b < 6; b++) expect(stats[b]!.mean, `example ${b}`).toBeLessThanOrEqual(exact[b]! + 3 * stats[b]!.se + 1e-4);
    // The quadrature is a likelihood: over all 8 images x of 3 pixels, with one memory, p(x) sums to 1.
    const mem = raw.inputs[1]!.data.slice(0, 4 * 3);
    const all: RawBatch = {
      inputs: [
        { name: 'x', data: Float32Array.from({ length: 24 }, (_, i) => (Math.floor(i / 3) >> (i % 3)) & 1), shape: [8, 3], plates: ['batch'] },
        { name: 'mem', data: Float32Array.from({ length: 8 * 12 }, (_, i) => mem[i % 12]!), shape: [8, 4, 3], plates: ['batch'] },
      ],
    };
    const total = quadrature(all).reduce((acc, l) => acc + Math.exp(l), 0);
    expect(total).toBeCloseTo(1, 3);
    trainer.dispose();
  }, 60_000);
});
