/**
 * The built-ins added as one row of the signature table (src/ir/builtins.ts) and one lowering
 * (src/lower/builtins.ts): `logsumexp` and `max` over the last axis, against closed forms in
 * float64, with their gradients (softmax; the indicator of the largest element), on plated values,
 * and in a model that checks and trains. Every row of the table has a lowering.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { builtinNames } from '../../src/ir/builtins.ts';
import { printIr } from '../../src/ir/print.ts';
import { BUILTIN_LOWERING } from '../../src/lower/builtins.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { describeBackends } from '../estimators/backends.ts';
import { fakeBatch, irOf } from './helpers.ts';

const ROWS = [
  [0.5, -1, 2, 0],
  [1000, 999, 998, 1000], // exp overflows float32 here: the stable form does not
  [-1000, -1001, -999.5, -1002],
];

const lse = (xs: number[]): number => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
};

const MODEL = `model lse_max
const D = 6
const C = 3
data x : binary[D]
param protos : real[D, C] = normal(1.0)
net enc = mlp(D, 16, 2 * C)
latent z : real[C] ~ Normal(loc: 0, scale: 1)
let scores = protos + z
observe x ~ Bernoulli(logits: logsumexp(scores) - max(protos))
guide {
  z ~ Normal(enc(x))
}
train {
  estimator = iwae(k: 2)
  optimizer = adam(lr: 1e-2)
}
`;

it('every row of the signature table has its tfjs lowering', () => {
  for (const name of builtinNames()) expect(typeof BUILTIN_LOWERING[name], name).toBe('function');
});

describeBackends('logsumexp and max', () => {
  it('match the closed forms over the last axis, on a value with a plate', () => {
    const x = { t: tf.tensor2d(ROWS), plates: ['batch'] };
    const l = BUILTIN_LOWERING.logsumexp([x]);
    const m = BUILTIN_LOWERING.max([x]);
    expect(l.plates).toEqual(['batch']);
    expect(l.t.shape).toEqual([3]);
    const lv = Array.from(l.t.dataSync());
    const mv = Array.from(m.t.dataSync());
    ROWS.forEach((row, i) => {
      expect(lv[i]!).toBeCloseTo(lse(row), 3);
      expect(Number.isFinite(lv[i]!)).toBe(true);
      expect(mv[i]!).toBe(Math.max(...row));
    });
    // A row of equal entries: log(n) above them.
    const flat = BUILTIN_LOWERING.logsumexp([{ t: tf.fill([4], 7), plates: [] }]);
    expect(flat.t.dataSync()[0]!).toBeCloseTo(7 + Math.log(4), 5);
  });

  it('have the closed-form gradients: softmax, and the indicator of the largest element', () => {
    const x = tf.tensor2d([ROWS[0]!, [3, 1, -2, 0.5]]);
    const gl = tf.grad((t: tf.Tensor) => tf.sum(BUILTIN_LOWERING.logsumexp([{ t, plates: ['batch'] }]).t))(x);
    const gm = tf.grad((t: tf.Tensor) => tf.sum(BUILTIN_LOWERING.max([{ t, plates: ['batch'] }]).t))(x);
    const rows = x.arraySync() as number[][];
    const gla = gl.arraySync() as number[][];
    const gma = gm.arraySync() as number[][];
    rows.forEach((row, i) => {
      const s = lse(row);
      row.forEach((v, j) => {
        expect(gla[i]![j]!).toBeCloseTo(Math.exp(v - s), 5);
        expect(gma[i]![j]!).toBe(v === Math.max(...row) ? 1 : 0);
      });
    });
  });

  it('in a model: it checks, prints, and trains (finite bounds, the bound rises)', () => {
    const ir = irOf(MODEL);
    expect(printIr(ir)).toContain('logsumexp(scores) - max(protos)');
    const trainer = new Trainer({ ...ir, train: { ...ir.train, batch: 8 } }, 5);
    const batch = fakeBatch(ir, 8);
    const bounds: number[] = [];
    for (let i = 0; i < 60; i++) bounds.push(trainer.step(batch).bound);
    trainer.dispose();
    expect(bounds.every(Number.isFinite)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(bounds.slice(-10))).toBeGreaterThan(mean(bounds.slice(0, 10)));
  });
});
