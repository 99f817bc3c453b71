/**
 * Folding a net's linear last layer through the product that reads it (src/lower/fold.ts): the
 * address logits `h(mem) @ h(x)` and the soft read `sum_i w_i g(mem_i)`. Folded and unfolded
 * evaluations of the same model, weights and draws must give the same objective and the same
 * gradient in every parameter (float rounding apart); the fold must actually happen where the
 * cost model says it saves work, and not happen where it does not.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeEstimator } from '../../src/estimators/registry.ts';
import { withAddressing } from '../../src/ir/addressing.ts';
import type { EstimatorKind, IrProgram } from '../../src/ir/types.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { foldFromEnv, foldsBlend, foldsKeys } from '../../src/lower/fold.ts';
import { RunError } from '../../src/diagnostics/errors.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { Rng } from '../../src/random/rng.ts';
import type { RawBatch } from '../../src/data/bind.ts';
import { describeBackends } from '../estimators/backends.ts';
import { fakeBatch, irOf, withEstimator } from './helpers.ts';

/** The benchmark model's declarations (bench-model.md) at small widths. */
const SMALL_NETS = `
const D = 12
const Z = 3
size M
data x : binary[D]
memory mem : binary[M, D]
net h = mlp(D, 8, 5)
net g = mlp(D, 9, 7, 5)
net prior = mlp(5, 2 * Z)
net enc = mlp(10, 8, 2 * Z)
net dec = mlp(Z + 5, 8, D)
`;

/** The benchmark model's structure at small widths. */
const SMALL_BENCH = `
model small_bench
${SMALL_NETS}
discrete address a ~ Categorical(mem)
let r = g(mem[a])
latent z ~ Normal(prior(r))
observe x ~ Bernoulli(logits: dec(concat(z, r)))
guide {
  a ~ Categorical(logits: h(mem) @ h(x))
  z ~ Normal(enc(concat(h(x), g(mem[a]))))
}
`;

/** `h(mem)` read whole as well as through the logits: the folded logits leave its hidden value for the read. */
const KEYS_READ_TOO = `
model keys_read_too
${SMALL_NETS}
net out = mlp(5, D)
discrete address a ~ Categorical(mem)
observe x ~ Bernoulli(logits: out(h(mem)[a]))
guide {
  a ~ Categorical(logits: h(mem) @ h(x))
}
`;

/**
 * The benchmark's soft variant as bench-model.md defines it, attention written out (the read sees
 * the target: a timing model, not a likelihood); `weights` replaces the softmax to test weights of
 * any sum.
 */
function specSoft(weights: (logits: string) => string): string {
  return `
model spec_soft
${SMALL_NETS}
let r = ${weights('h(mem) @ h(x)')} @ g(mem)
latent z ~ Normal(prior(r))
observe x ~ Bernoulli(logits: dec(concat(z, r)))
guide {
  let r = ${weights('h(mem) @ h(x)')} @ g(mem)
  z ~ Normal(enc(concat(h(x), r)))
}
`;
}

interface Counted {
  model: CompiledModel;
  /** How many times a net's body ran for a folded product. */
  bodies: () => number;
}

function compiled(ir: IrProgram, fold: boolean): Counted {
  // The test models are small: every saving counts (the threshold is for the benchmark's sizes).
  const model = new CompiledModel(ir, 7, { fold: fold && { minSaving: 0 } });
  let bodies = 0;
  const tailOf = model.applyNet.linearTail!;
  model.applyNet.linearTail = (name) => {
    const t = tailOf(name);
    return t && { ...t, body: (x: tf.Tensor) => (bodies++, t.body(x)) };
  };
  return { model, bodies: () => bodies };
}

/** The objective and its gradient in every parameter, with the draws of `seed`. */
function objective(ir: IrProgram, model: CompiledModel, batch: RawBatch, seed: number): { value: number; grads: Map<string, Float32Array> } {
  const estimator = makeEstimator(ir.train.estimator);
  const { value, grads } = tf.variableGrads(() => {
    const r = estimateObjective({ ir, inputs: model.inputs(batch), applyNet: model.applyNet, estimator, state: estimator.initState(), rng: new Rng(seed) });
    return tf.neg(r.surrogate) as tf.Scalar;
  }, model.trainableVariables());
  const names = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  const out = { value: value.dataSync()[0]!, grads: new Map(Object.entries(grads).map(([k, g]) => [names.get(k)!, g.dataSync() as Float32Array])) };
  value.dispose();
  tf.dispose(grads);
  return out;
}

function expectSame(a: ReturnType<typeof objective>, b: ReturnType<typeof objective>): void {
  expect(Math.abs(a.value - b.value)).toBeLessThan(1e-4 * Math.max(1, Math.abs(b.value)));
  expect([...a.grads.keys()].sort()).toEqual([...b.grads.keys()].sort());
  for (const [name, g] of b.grads) {
    const f = a.grads.get(name)!;
    const scale = Math.max(1e-3, ...Array.from(g, Math.abs));
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(f[i]! - g[i]!));
    expect(worst / scale, `gradient of ${name}`).toBeLessThan(1e-4);
  }
}

describeBackends('folding a linear last layer through a product', () => {
  afterEach(() => tf.disposeVariables());

  const cases: { kind: EstimatorKind; folds: number }[] = [
    { kind: 'vimco', folds: 1 }, // the logits' h over the entries
    { kind: 'soft', folds: 2 }, // and g's soft read
    { kind: 'reinforce', folds: 1 },
    { kind: 'enumerate', folds: 1 },
  ];
  for (const { kind, folds } of cases) {
    it(`${kind}: the same objective and gradients folded as unfolded, and it folds`, () => {
      const ir = withAddressing(withEstimator(irOf(SMALL_BENCH), kind, 3));
      const batch = fakeBatch(ir, 3, { M: 16 }, 5);
      const on = compiled(ir, true);
      const off = compiled(ir, false);
      const before = tf.memory().numTensors;
      expectSame(objective(ir, on.model, batch, 11), objective(ir, off.model, batch, 11));
      expect(tf.memory().numTensors).toBe(before);
      expect(on.bodies()).toBe(folds);
      expect(off.bodies()).toBe(0);
    });
  }

  for (const [name, weights, folds] of [
    ['softmax weights', (l: string) => `softmax(${l})`, 2],
    ['weights of any sum', (l: string) => `sigmoid(${l})`, 2],
  ] as const) {
    it(`attention written out, w @ g(mem) with ${name}: the same objective and gradients, folded once for guide and model`, () => {
      const ir = withEstimator(irOf(specSoft(weights)), 'iwae', 3);
      const batch = fakeBatch(ir, 3, { M: 16 }, 7);
      const on = compiled(ir, true);
      expectSame(objective(ir, on.model, batch, 14), objective(ir, compiled(ir, false).model, batch, 14));
      expect(on.bodies()).toBe(folds); // h's and g's, each once
    });
  }

  it('a whole read of the folded net reuses the body: only the last layer runs again', () => {
    const ir = withEstimator(irOf(KEYS_READ_TOO), 'vimco', 3);
    const batch = fakeBatch(ir, 3, { M: 16 }, 6);
    const on = compiled(ir, true);
    expectSame(objective(ir, on.model, batch, 12), objective(ir, compiled(ir, false).model, batch, 12));
    expect(on.bodies()).toBe(1);
  });

  it('does not fold where the last layer over the entries is the cheaper way', () => {
    // Two entries and three examples with K = 3 samples: nine query rows, six entry rows.
    const ir = withAddressing(withEstimator(irOf(SMALL_BENCH), 'soft', 3));
    const batch = fakeBatch(ir, 3, { M: 2 }, 5);
    const on = compiled(ir, true);
    expectSame(objective(ir, on.model, batch, 13), objective(ir, compiled(ir, false).model, batch, 13));
    expect(on.bodies()).toBe(0);
  });
});

describe('the fold’s cost model', () => {
  it('folds the benchmark model’s reads (bench-model.md: B = 32, K = 4)', () => {
    const h = { width: 256, outWidth: 128 };
    const g = { width: 400, outWidth: 128 };
    for (const M of [32, 128, 512, 2048]) {
      // hard: one query h(x) per example; soft (src/ir/addressing.ts): a query u per sample and example
      expect(foldsKeys(h, 32 * M, 32, M), `hard keys at M = ${M}`).toBe(true);
      expect(foldsKeys(h, 32 * M, 128, M), `soft keys at M = ${M}`).toBe(true);
      expect(foldsBlend(g, 32 * M, 128, M), `soft read at M = ${M}`).toBe(true);
    }
  });

  it('keeps the small saving of M = 8 soft unfolded: less than the fold’s extra kernels', () => {
    const h = { width: 256, outWidth: 128 };
    const g = { width: 400, outWidth: 128 };
    expect(foldsKeys(h, 32 * 8, 128, 8)).toBe(false);
    expect(foldsBlend(g, 32 * 8, 128, 8)).toBe(false);
    expect(foldsKeys(h, 32 * 8, 128, 8, 0)).toBe(true);
  });

  it('keeps a shared memory’s keys unfolded when the queries outnumber the entries', () => {
    const h = { width: 256, outWidth: 128 };
    expect(foldsKeys(h, 1000, 10_000, 1000, 0)).toBe(false);
    expect(foldsKeys(h, 10_000, 32, 10_000)).toBe(true);
    expect(foldsBlend(h, 1000, 10_000, 1000, 0)).toBe(false);
  });
});

describe('VMM_FOLD', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('is on unset, empty or 1, off at 0, and any other value is a RunError naming the accepted ones', () => {
    for (const [v, on] of [[undefined, true], ['', true], ['1', true], ['0', false]] as const) {
      vi.stubEnv('VMM_FOLD', v);
      expect(foldFromEnv(), `VMM_FOLD=${v}`).toBe(on);
    }
    for (const v of ['off', 'no', 'false', '2']) {
      vi.stubEnv('VMM_FOLD', v);
      expect(() => foldFromEnv()).toThrow(RunError);
      expect(() => foldFromEnv()).toThrow(`VMM_FOLD=${v}: expected 0 (no folding) or 1`);
    }
  });
});
