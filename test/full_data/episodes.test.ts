// Full data (npm run test:data): episodes at the full Omniglot scale (964 / 659 characters).
import { describe, expect, it } from 'vitest';
import { binarizeFixed } from '../../src/data/binarize.ts';
import {
  BatchSampler,
  EpisodeSampler,
  orderedBatches,
  resolveSplit,
  sharedMemoryEpisode,
  type EpisodeBatch,
} from '../../src/data/episodes.ts';
import { loadMnistPackage } from '../../src/data/mnist_package.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { DataError } from '../../src/data/paths.ts';
import { gatherImages } from '../../src/data/types.ts';

const o = loadOmniglot();
const D = 784;

/** Checks the invariants of a batch of episodes of C classes x S shots + distractors. */
function checkEpisodes(e: EpisodeBatch, C: number, S: number, distractors: number, inSplit: (i: number) => boolean): void {
  const M = C * S + distractors;
  const B = e.batch;
  expect(e.memorySize).toBe(M);
  expect(e.targets.length).toBe(B * D);
  expect(e.memory.length).toBe(B * M * D);
  expect(e.memoryClass.length).toBe(B * M);
  expect(e.matches.length).toBe(B * S);
  for (let b = 0; b < B; b++) {
    const cls = Array.from(e.memoryClass.subarray(b * M, (b + 1) * M));
    const idx = Array.from(e.memoryIndex.subarray(b * M, (b + 1) * M));
    // Every memory entry is a distinct image of the split, labelled with its class.
    expect(new Set(idx).size).toBe(M);
    for (let m = 0; m < M; m++) {
      if (!inSplit(idx[m]!) || o.labels[idx[m]!] !== cls[m]) throw new Error(`bad memory entry ${idx[m]}`);
    }
    // At least C classes with exactly S copies (a distractor of an episode class would make S+1).
    const counts = new Map<number, number>();
    for (const c of cls) counts.set(c, (counts.get(c) ?? 0) + 1);
    const full = [...counts.entries()].filter(([, n]) => n === S).map(([c]) => c);
    expect(full.length).toBeGreaterThanOrEqual(C);
    const t = e.targetClass[b]!;
    const ti = e.targetIndex[b]!;
    expect(counts.get(t)).toBe(S);
    expect(o.labels[ti]).toBe(t);
    expect(inSplit(ti)).toBe(true);
    // The target is not one of the memory images (a different drawer of its class).
    expect(idx.includes(ti)).toBe(false);
    // Matches: exactly the slots of the target's class.
    const slots = cls.flatMap((c, m) => (c === t ? [m] : []));
    expect(Array.from(e.matches.subarray(b * S, (b + 1) * S))).toEqual(slots);
    expect(Array.from(e.matchMask.subarray(b * M, (b + 1) * M))).toEqual(cls.map((c) => (c === t ? 1 : 0)));
  }
}

describe('EpisodeSampler on Omniglot', () => {
  it('builds episodes of C classes x S shots + distractors around a held-out target', () => {
    const s = new EpisodeSampler({ set: o, classes: 4, shots: 3, distractors: 6, split: 'background', seed: 1 });
    expect(s.availableClasses).toBe(964);
    const e = s.next(32);
    checkEpisodes(e, 4, 3, 6, (i) => i < 19280);
    // Distractors are from classes outside the episode's C classes: with 963 other characters and
    // 6 distractors, no class can reach S + 1 = 4 entries unless a distractor joined an episode class.
    for (let b = 0; b < e.batch; b++) {
      const counts = new Map<number, number>();
      for (const c of e.memoryClass.subarray(b * 18, (b + 1) * 18)) counts.set(c, (counts.get(c) ?? 0) + 1);
      expect(Math.max(...counts.values())).toBe(3);
      expect([...counts.values()].filter((n) => n === 3).length).toBe(4);
    }
  });

  it('evaluation episodes use only evaluation characters', () => {
    const s = new EpisodeSampler({ set: o, classes: 5, shots: 19, split: 'evaluation', seed: 2 });
    checkEpisodes(s.next(8), 5, 19, 0, (i) => i >= 19280);
  });

  it('is reproducible from the seed, and different seeds differ', () => {
    const a = new EpisodeSampler({ set: o, classes: 2, shots: 4, distractors: 2, split: 'background', seed: 7 });
    const b = new EpisodeSampler({ set: o, classes: 2, shots: 4, distractors: 2, split: 'background', seed: 7 });
    const c = new EpisodeSampler({ set: o, classes: 2, shots: 4, distractors: 2, split: 'background', seed: 8 });
    const ea = a.next(16);
    const eb = b.next(16);
    expect(eb.memoryIndex).toEqual(ea.memoryIndex);
    expect(eb.targetIndex).toEqual(ea.targetIndex);
    expect(Buffer.from(eb.memory.buffer).equals(Buffer.from(ea.memory.buffer))).toBe(true);
    expect(c.next(16).memoryIndex).not.toEqual(ea.memoryIndex);
    // A second call gives new episodes; state() resumes the exact stream.
    const st = a.state();
    const next = a.next(4);
    expect(next.memoryIndex).not.toEqual(ea.memoryIndex.subarray(0, next.memoryIndex.length));
    b.setState(st);
    expect(b.next(4).memoryIndex).toEqual(next.memoryIndex);
  });

  it('pixel modes: dynamic is binary and redrawn, fixed is by image, intensity is v/255', () => {
    const cfg = { set: o, classes: 3, shots: 2, split: 'background', seed: 3 } as const;
    const dyn = new EpisodeSampler({ ...cfg, pixels: 'dynamic' }).next(4);
    expect(dyn.memory.every((v) => v === 0 || v === 1)).toBe(true);
    const fixed = new EpisodeSampler({ ...cfg, pixels: { fixed: 11 } }).next(4);
    expect(fixed.memoryIndex).toEqual(dyn.memoryIndex); // the structure does not depend on the pixel mode
    const expected = binarizeFixed(gatherImages(o, fixed.memoryIndex), 11, { imageIds: fixed.memoryIndex });
    expect(Buffer.from(fixed.memory.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    const inten = new EpisodeSampler({ ...cfg, pixels: 'intensity' }).next(1);
    const i0 = inten.targetIndex[0]!;
    expect(inten.targets[400]).toBeCloseTo(o.images[i0 * D + 400]! / 255, 6);
  });

  it('rejects impossible configurations with a clear error', () => {
    expect(() => new EpisodeSampler({ set: o, classes: 2, shots: 20, split: 'background' })).toThrow(DataError);
    expect(() => new EpisodeSampler({ set: o, classes: 965, shots: 1, split: 'background' })).toThrow(/964/);
    expect(() => new EpisodeSampler({ set: o, classes: 1, shots: 1, split: 'nope' })).toThrow(/background, evaluation/);
    expect(() => new EpisodeSampler({ set: o, classes: 0, shots: 1 })).toThrow(RangeError);
  });
});

describe('sharedMemoryEpisode', () => {
  it('one memory of 2,500 unseen-character entries for a batch of targets', () => {
    const e = sharedMemoryEpisode({
      set: o,
      classes: 125,
      shots: 19,
      distractors: 125,
      targets: 100,
      split: 'evaluation',
      seed: 5,
      pixels: { fixed: 1 },
    });
    expect(e.memorySize).toBe(2500);
    expect(e.memory.length).toBe(2500 * D);
    expect(e.targets.length).toBe(100 * D);
    expect(new Set(e.memoryIndex).size).toBe(2500);
    expect(e.memoryIndex.every((i) => i >= 19280)).toBe(true);
    const counts = new Map<number, number>();
    for (const c of e.memoryClass) counts.set(c, (counts.get(c) ?? 0) + 1);
    const mem = new Set(e.memoryIndex);
    expect(new Set(e.targetIndex).size).toBe(100);
    for (let b = 0; b < 100; b++) {
      const t = e.targetClass[b]!;
      expect(counts.get(t)).toBe(19);
      expect(mem.has(e.targetIndex[b]!)).toBe(false);
      const slots = Array.from(e.matches.subarray(b * 19, (b + 1) * 19));
      expect(slots.every((m) => e.memoryClass[m] === t)).toBe(true);
      expect(e.matchMask.subarray(b * 2500, (b + 1) * 2500).reduce((s, v) => s + v, 0)).toBe(19);
    }
    const again = sharedMemoryEpisode({ set: o, classes: 125, shots: 19, distractors: 125, targets: 100, split: 'evaluation', seed: 5 });
    expect(again.memoryIndex).toEqual(e.memoryIndex);
    expect(again.targetIndex).toEqual(e.targetIndex);
  });

  it('refuses more targets than images left outside memory', () => {
    expect(() => sharedMemoryEpisode({ set: o, classes: 2, shots: 19, targets: 3, split: 'evaluation' })).toThrow(DataError);
  });
});

describe('MNIST episodes and class partitions', () => {
  const m = loadMnistPackage();

  it('uses digits as classes and honours a class partition', () => {
    const s = new EpisodeSampler({ set: m, classes: 2, shots: 5, distractors: 3, split: { images: 'train', classes: [0, 1, 2, 3, 4] }, seed: 1 });
    expect(s.availableClasses).toBe(5);
    const e = s.next(20);
    const train = new Set(m.splits.train);
    expect(e.memoryClass.every((c) => c < 5)).toBe(true);
    expect(e.memoryIndex.every((i) => train.has(i))).toBe(true);
    expect(e.targetClass.every((c) => c < 5)).toBe(true);
    for (let b = 0; b < 20; b++) {
      expect(e.matchMask.subarray(b * 13, (b + 1) * 13).reduce((x, v) => x + v, 0)).toBe(5);
      expect(Array.from(e.memoryIndex.subarray(b * 13, (b + 1) * 13)).includes(e.targetIndex[b]!)).toBe(false);
    }
    const test = resolveSplit(m, { images: 'test', classes: [5, 6, 7, 8, 9] });
    expect(test.length).toBe(500);
  });

  it('fills distractors from the other digits even when most images are excluded', () => {
    const s = new EpisodeSampler({ set: m, classes: 9, shots: 2, distractors: 50, seed: 4 });
    const e = s.next(3);
    for (let b = 0; b < 3; b++) {
      const cls = Array.from(e.memoryClass.subarray(b * 68, (b + 1) * 68));
      const counts = new Map<number, number>();
      for (const c of cls) counts.set(c, (counts.get(c) ?? 0) + 1);
      // Nine digits with two shots; 50 distractors all of the tenth digit.
      expect([...counts.values()].sort((x, y) => x - y)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 50]);
    }
  });
});

describe('BatchSampler and orderedBatches', () => {
  const m = loadMnistPackage();

  it('visits every image of the split once per epoch, reproducibly', () => {
    const s = new BatchSampler({ set: m, split: 'test', seed: 3 });
    const seen: number[] = [];
    for (let k = 0; k < 10; k++) {
      const b = s.next(100);
      expect(b.images.length).toBe(100 * D);
      expect(b.labels!.every((l, i) => l === m.labels[b.indices[i]!])).toBe(true);
      seen.push(...b.indices);
    }
    expect(s.epoch).toBe(0);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from(m.splits.test).sort((a, b) => a - b));
    s.next(1);
    expect(s.epoch).toBe(1);
    const t = new BatchSampler({ set: m, split: 'test', seed: 3 });
    expect(Array.from(t.next(1000).indices)).toEqual(seen);
    const st = t.state();
    const u = t.next(50);
    const v = new BatchSampler({ set: m, split: 'test', seed: 3 });
    v.setState(st);
    expect(v.next(50).indices).toEqual(u.indices);
  });

  it('orderedBatches walks the split in order with the fixed binarization', () => {
    const batches = [...orderedBatches(o, { split: 'evaluation', batch: 5000, pixels: { fixed: 2 } })];
    expect(batches.map((b) => b.batch)).toEqual([5000, 5000, 3180]);
    expect(batches[0]!.indices[0]).toBe(19280);
    const again = orderedBatches(o, { split: 'evaluation', batch: 5000, pixels: { fixed: 2 } }).next().value!;
    expect(Buffer.from(again.images.buffer).equals(Buffer.from(batches[0]!.images.buffer))).toBe(true);
  });
});
