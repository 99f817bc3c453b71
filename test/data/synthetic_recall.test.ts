/** The synthetic associative-recall data set: deterministic, distinct keys, queries of stored pairs. */
import { describe, expect, it } from 'vitest';
import { recallEpisodes } from '../../src/data/synthetic_recall.ts';

describe('recallEpisodes', () => {
  const opts = { keyBits: 6, valueBits: 3, pairs: 40, seed: 5 };

  it('is deterministic from the seed and the stream, and resumable', () => {
    const a = recallEpisodes(opts);
    const b = recallEpisodes(opts);
    expect(a.next(4)).toEqual(b.next(4));
    const s = a.state();
    const x = a.next(2);
    a.setState(s);
    expect(a.next(2)).toEqual(x);
    expect(recallEpisodes({ ...opts, stream: 'test' }).next(4).pairs).not.toEqual(recallEpisodes(opts).next(4).pairs);
  });

  it('has distinct keys per episode and queries a stored pair', () => {
    const e = recallEpisodes(opts).next(8);
    const E = opts.keyBits + opts.valueBits;
    for (let b = 0; b < 8; b++) {
      const keys = new Set<string>();
      for (let n = 0; n < opts.pairs; n++) keys.add(Array.from(e.pairs.subarray((b * opts.pairs + n) * E, (b * opts.pairs + n) * E + opts.keyBits)).join(''));
      expect(keys.size).toBe(opts.pairs);
      const at = (b * opts.pairs + e.index[b]!) * E;
      expect(Array.from(e.keys.subarray(b * opts.keyBits, (b + 1) * opts.keyBits))).toEqual(Array.from(e.pairs.subarray(at, at + opts.keyBits)));
      expect(Array.from(e.values.subarray(b * opts.valueBits, (b + 1) * opts.valueBits))).toEqual(Array.from(e.pairs.subarray(at + opts.keyBits, at + E)));
    }
  });

  it('draws keys wider than 30 bits as random bits, distinct within an episode (up to 64)', () => {
    const wide = { keyBits: 64, valueBits: 8, pairs: 300, seed: 3 };
    const e = recallEpisodes(wide).next(2);
    const E = wide.keyBits + wide.valueBits;
    let ones = 0;
    for (let b = 0; b < 2; b++) {
      const keys = new Set<string>();
      for (let n = 0; n < wide.pairs; n++) {
        const key = e.pairs.subarray((b * wide.pairs + n) * E, (b * wide.pairs + n) * E + wide.keyBits);
        keys.add(key.join(''));
        ones += key.reduce((a, x) => a + x, 0);
      }
      expect(keys.size).toBe(wide.pairs);
      const at = (b * wide.pairs + e.index[b]!) * E;
      expect(Array.from(e.keys.subarray(b * 64, (b + 1) * 64))).toEqual(Array.from(e.pairs.subarray(at, at + 64)));
    }
    expect(Math.abs(ones / (2 * wide.pairs * 64) - 0.5)).toBeLessThan(0.02);
    expect(() => recallEpisodes({ ...wide, keyBits: 65 })).toThrow(/\[1, 64\]/);
  });

  it('rejects more pairs than keys', () => {
    expect(() => recallEpisodes({ ...opts, pairs: 65 })).toThrow(/pairs/);
  });
});
