/**
 * Full data (npm run test:data): validation during training comes from data held out of training,
 * never from what `vmm eval` reports on, for the data sets that need the full files (the embedded
 * MNIST's check is test/data/valid_split.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { resolveSplit } from '../../src/data/episodes.ts';
import type { LabelledImageSet } from '../../src/data/types.ts';
import { trainValidSplits } from '../../src/data/source.ts';

describe('training and validation data are disjoint and exclude the test data (full data)', () => {
  it('omniglot: held-out background characters, no evaluation alphabet', () => {
    const s = trainValidSplits('omniglot');
    const labels = (s.train as LabelledImageSet).labels;
    const cls = (spec: typeof s.trainSplit) => new Set(Array.from(resolveSplit(s.train, spec), (i) => labels[i]!));
    const tr = cls(s.trainSplit);
    const va = cls(s.validSplit);
    const ev = cls('evaluation');
    expect(va.size).toBeGreaterThan(50);
    expect([...va].some((c) => tr.has(c))).toBe(false);
    expect([...va, ...tr].some((c) => ev.has(c))).toBe(false);
  });

  it('binarized_mnist: the valid file', () => {
    const s = trainValidSplits('binarized_mnist');
    expect(s.valid.name).toMatch(/valid/);
    expect(s.train.name).toMatch(/train/);
  });
});
