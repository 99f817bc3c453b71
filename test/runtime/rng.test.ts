import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Rng, deriveSeed, rngFromState, rngState, stepRng, tfSeed } from '../../src/runtime/rng.ts';
import { BACKENDS, use, values } from './backends.ts';

describe('runtime rng', () => {
  it('derives seeds deterministically, distinct across steps, keys and masters', () => {
    expect(deriveSeed(1, 'step', 5)).toBe(deriveSeed(1, 'step', 5));
    const seen = new Set<number>();
    for (let s = 0; s < 1000; s++) seen.add(deriveSeed(42, 'step', s));
    expect(seen.size).toBe(1000);
    expect(deriveSeed(42, 'step', 1)).not.toBe(deriveSeed(43, 'step', 1));
    expect(deriveSeed(42, 'init')).not.toBe(deriveSeed(42, 'valid'));
    expect(deriveSeed(42, 'step', 1)).not.toBe(deriveSeed(42, 'step', 1 + 2 ** 32));
    for (const s of seen) expect(Number.isInteger(s) && s >= 0 && s < 2 ** 32).toBe(true);
    expect(() => deriveSeed(NaN)).toThrow(/finite/);
  });

  it('stepRng(master, t) draws the same tfjs noise whatever happened before (resume)', async () => {
    await use(BACKENDS[0]!);
    const draw = (r: Rng) => tf.tidy(() => values(tf.randomNormal([4], 0, 1, 'float32', tfSeed(r))));
    const straight = [0, 1, 2, 3].map((t) => draw(stepRng(7, t)));
    const resumed = draw(stepRng(7, 3));
    expect(resumed).toEqual(straight[3]);
    expect(straight[0]).not.toEqual(straight[1]);
  });

  it('serializes its state as JSON and continues the same stream', () => {
    const r = new Rng(99);
    r.nextSeed();
    const json = JSON.parse(JSON.stringify(rngState(r)));
    const back = rngFromState(json);
    expect([back.nextSeed(), back.nextSeed()]).toEqual([r.nextSeed(), r.nextSeed()]);
    expect(() => rngFromState({ kind: 'mulberry32', state: -1 })).toThrow(/not an Rng state/);
  });

  it('never hands tfjs a seed of 0 (which tfjs treats as unseeded)', () => {
    expect(tfSeed({ nextSeed: () => 0 })).not.toBe(0);
    expect(tfSeed({ nextSeed: () => 17 })).toBe(17);
  });

  it('seeded draws are identical on every backend', async () => {
    const out: number[][] = [];
    for (const b of BACKENDS) {
      await use(b);
      out.push(tf.tidy(() => values(tf.randomUniform([5], -1, 1, 'float32', 1234))));
    }
    for (const o of out) expect(o).toEqual(out[0]);
  });
});
