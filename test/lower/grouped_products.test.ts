/**
 * Products of a value on fewer plates with one on more (src/lower/evaluate.ts, `grouping`): a soft
 * read of one memory per episode by weights per sample and episode, and keys per episode against
 * queries per sample and episode, run batched over the smaller value's plates instead of repeating
 * it. Values and gradients must equal the plain broadcast computation, for every arrangement of
 * the plates (the shared plates leading or not, a plate broadcast at size 1 on the smaller side).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { blend, matmul } from '../../src/lower/evaluate.ts';
import type { Plate, Value } from '../../src/lower/plates.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const ORDER: Plate[] = ['enum', 'sample', 'batch'];
const SIZES: Record<string, number> = { enum: 3, sample: 4, batch: 5 };

/** A random value on `plates` (size 1 where `ones` names the plate) with event shape `event`. */
function randomValue(plates: Plate[], event: number[], seed: number, ones: Plate[] = []): Value {
  const shape = [...plates.map((p) => (ones.includes(p) ? 1 : SIZES[p]!)), ...event];
  return { t: tf.randomNormal(shape, 0, 1, 'float32', seed), plates };
}

/** `t` on `plates` as a tensor on all of `target` (broadcast), followed by its event axes. */
function full(v: Value, target: Plate[]): tf.Tensor {
  const ev = v.t.shape.slice(v.plates.length);
  const shape = target.map((p) => (v.plates.includes(p) ? v.t.shape[v.plates.indexOf(p)]! : 1));
  // A multiply by ones broadcasts with a gradient at any rank (tfjs's Tile has one up to rank 4).
  return tf.mul(tf.reshape(v.t, [...shape, ...ev]), tf.ones([...target.map((p) => SIZES[p]!), ...ev]));
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;

type Product = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** `f` and the broadcast computation `ref` agree at (a, b): values, and both gradients under a random cotangent. */
function expectSameAsBroadcast(f: Product, ref: Product, a: tf.Tensor, b: tf.Tensor, seed: number): void {
  const out = f(a, b);
  const expected = ref(a, b);
  expect(out.shape).toEqual(expected.shape);
  expect(maxDiff(out, expected)).toBeLessThan(1e-5);
  const dy = tf.randomNormal(expected.shape, 0, 1, 'float32', seed);
  const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), dy)))([a, b]);
  const gr = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(ref(x, y), dy)))([a, b]);
  for (const i of [0, 1]) expect(maxDiff(g[i]!, gr[i]!), `gradient ${i}`).toBeLessThan(1e-4);
}

describe('products batched over the smaller operand’s plates', () => {
  const cases: { big: Plate[]; small: Plate[]; ones?: Plate[] }[] = [
    { big: ['sample', 'batch'], small: ['batch'] }, // per-episode memory, K samples: shared plate last
    { big: ['enum', 'sample', 'batch'], small: ['batch'] },
    { big: ['sample', 'batch'], small: ['sample'] }, // shared plate leading: no transpose
    { big: ['enum', 'sample', 'batch'], small: ['enum', 'batch'] },
    { big: ['sample', 'batch'], small: ['batch'], ones: ['batch'] }, // broadcast: the plain path
  ];

  for (const { big, small, ones = [] } of cases) {
    const name = `[${big}] with [${small}]${ones.length ? ` (size 1 on ${ones})` : ''}`;
    const plates = ORDER.filter((p) => big.includes(p) || small.includes(p));

    it(`a soft read (blend): weights on ${name}`, () => {
      const w = randomValue(big, [6], 1);
      const e = randomValue(small, [6, 2, 3], 2, ones); // image-like entries [M, 2, 3]
      const f: Product = (wt, et) => blend({ t: wt, plates: w.plates }, { t: et, plates: e.plates }).t;
      const ref: Product = (wt, et) => {
        const W = full({ t: wt, plates: w.plates }, plates);
        const E = full({ t: et, plates: e.plates }, plates);
        return tf.sum(tf.mul(tf.reshape(W, [...W.shape, 1, 1]), E), plates.length);
      };
      expectSameAsBroadcast(f, ref, w.t, e.t, 3);
    });

    it(`keys @ query (matmul): keys on ${name}`, () => {
      const keys = randomValue(small, [6, 7], 4, ones); // [M, C]
      const q = randomValue(big, [7], 5); // [C]
      const f: Product = (kt, qt) => matmul({ t: kt, plates: keys.plates }, { t: qt, plates: q.plates }).t;
      const ref: Product = (kt, qt) => {
        const K = full({ t: kt, plates: keys.plates }, plates);
        const Q = full({ t: qt, plates: q.plates }, plates);
        return tf.sum(tf.mul(K, tf.expandDims(Q, plates.length)), -1);
      };
      expectSameAsBroadcast(f, ref, keys.t, q.t, 6);
    });

    it(`weights @ entries (matmul): weights on ${name}`, () => {
      const wts = randomValue(big, [6], 7); // [k]
      const ent = randomValue(small, [6, 5], 8, ones); // [k, nn]
      const f: Product = (a, b) => matmul({ t: a, plates: wts.plates }, { t: b, plates: ent.plates }).t;
      const ref: Product = (a, b) => {
        const W = full({ t: a, plates: wts.plates }, plates);
        const E = full({ t: b, plates: ent.plates }, plates);
        return tf.sum(tf.mul(tf.expandDims(W, -1), E), plates.length);
      };
      expectSameAsBroadcast(f, ref, wts.t, ent.t, 9);
    });
  }

  it('runs no Tile of the smaller operand where it is batched', async () => {
    const w = randomValue(['sample', 'batch'], [6], 10);
    const e = randomValue(['batch'], [6, 8], 11);
    const info = await tf.profile(() => blend(w, e).t);
    expect(info.kernels.map((k) => k.name)).not.toContain('Tile');
    expect(info.kernels.map((k) => k.name)).toContain('BatchMatMul');
  });
});
