/**
 * The episode and batch checks shared by test/data/episodes.test.ts (the fixture subset, `npm test`)
 * and test/full_data/episodes.test.ts (the full Omniglot files, `npm run test:data`): the same
 * assertions, with the numbers that depend on the size of the set passed in `scale`.
 */
import { describe, expect, it } from 'vitest';
import { binarizeFixed } from '../../../src/data/binarize.ts';
import {
  BatchSampler,
  EpisodeSampler,
  orderedBatches,
  resolveSplit,
  sharedMemoryEpisode,
  type EpisodeBatch,
} from '../../../src/data/episodes.ts';
import { loadMnistPackage } from '../../../src/data/mnist_package.ts';
import type { Omniglot } from '../../../src/data/omniglot.ts';
import { DataError } from '../../../src/data/paths.ts';
import { gatherImages } from '../../../src/data/types.ts';

/** The numbers of the episode checks that depend on which Omniglot files are loaded. */
export interface EpisodeScale {
  /** Characters (classes) of the background split: 13 in the fixtures, 964 in the full set. */
  backgroundClasses: number;
  /** Index of the first evaluation image = background images (characters x 20 drawers): 260 / 19280. */
  firstEvaluationImage: number;
  /**
   * Distractors of the 4-class x 3-shot background episodes. Few enough that no class outside the
   * episode can reach S + 1 = 4 entries by chance: 3 with 13 characters, 6 with 964.
   */
  distractors: number;
  /**
   * The shared-memory episode on the evaluation split: `classes` x `shots` + `distractors` entries
   * (`size`, stated on its own as the expected value) for a batch of `targets` targets.
   * Fixtures: 5 x 15 + 10 = 85 entries, 20 targets; full set: 125 x 19 + 125 = 2,500, 100 targets.
   */
  sharedMemory: { classes: number; shots: number; distractors: number; targets: number; size: number };
  /**
   * orderedBatches over the evaluation split: the batch size and the batch sizes it yields
   * (fixtures: 140 images in 50, 50, 40; full set: 13,180 in 5000, 5000, 3180).
   */
  ordered: { batch: number; sizes: number[] };
}

/** Registers the EpisodeSampler, sharedMemoryEpisode, MNIST episode and batch suites on `o`. */
export function episodeSuites(o: Omniglot, scale: EpisodeScale): void {
  const D = 784;
  const firstEval = scale.firstEvaluationImage;

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
      const s = new EpisodeSampler({ set: o, classes: 4, shots: 3, distractors: scale.distractors, split: 'background', seed: 1 });
      expect(s.availableClasses).toBe(scale.backgroundClasses);
      const e = s.next(32);
      checkEpisodes(e, 4, 3, scale.distractors, (i) => i < firstEval);
      // Distractors are from classes outside the episode's C classes: with this few distractors no
      // other class can reach S + 1 = 4 entries, so a 4 means a distractor joined an episode class.
      for (let b = 0; b < e.batch; b++) {
        const counts = new Map<number, number>();
        for (const c of e.memoryClass.subarray(b * (12 + scale.distractors), (b + 1) * (12 + scale.distractors))) counts.set(c, (counts.get(c) ?? 0) + 1);
        expect(Math.max(...counts.values())).toBe(3);
        expect([...counts.values()].filter((n) => n === 3).length).toBe(4);
      }
    });

    it('evaluation episodes use only evaluation characters', () => {
      const s = new EpisodeSampler({ set: o, classes: 5, shots: 19, split: 'evaluation', seed: 2 });
      checkEpisodes(s.next(8), 5, 19, 0, (i) => i >= firstEval);
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
      expect(() => new EpisodeSampler({ set: o, classes: scale.backgroundClasses + 1, shots: 1, split: 'background' })).toThrow(
        new RegExp(`\\b${scale.backgroundClasses}\\b`),
      );
      expect(() => new EpisodeSampler({ set: o, classes: 1, shots: 1, split: 'nope' })).toThrow(/background, evaluation/);
      expect(() => new EpisodeSampler({ set: o, classes: 0, shots: 1 })).toThrow(RangeError);
    });
  });

  describe('sharedMemoryEpisode', () => {
    it(`one memory of ${scale.sharedMemory.size.toLocaleString('en-US')} unseen-character entries for a batch of targets`, () => {
      const { classes, shots, distractors, targets, size } = scale.sharedMemory;
      const e = sharedMemoryEpisode({
        set: o,
        classes,
        shots,
        distractors,
        targets,
        split: 'evaluation',
        seed: 5,
        pixels: { fixed: 1 },
      });
      expect(e.memorySize).toBe(size);
      expect(e.memory.length).toBe(size * D);
      expect(e.targets.length).toBe(targets * D);
      expect(new Set(e.memoryIndex).size).toBe(size);
      expect(e.memoryIndex.every((i) => i >= firstEval)).toBe(true);
      const counts = new Map<number, number>();
      for (const c of e.memoryClass) counts.set(c, (counts.get(c) ?? 0) + 1);
      const mem = new Set(e.memoryIndex);
      expect(new Set(e.targetIndex).size).toBe(targets);
      for (let b = 0; b < targets; b++) {
        const t = e.targetClass[b]!;
        expect(counts.get(t)).toBe(shots);
        expect(mem.has(e.targetIndex[b]!)).toBe(false);
        const slots = Array.from(e.matches.subarray(b * shots, (b + 1) * shots));
        expect(slots.every((m) => e.memoryClass[m] === t)).toBe(true);
        expect(e.matchMask.subarray(b * size, (b + 1) * size).reduce((s, v) => s + v, 0)).toBe(shots);
      }
      const again = sharedMemoryEpisode({ set: o, classes, shots, distractors, targets, split: 'evaluation', seed: 5 });
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
      const { batch, sizes } = scale.ordered;
      const batches = [...orderedBatches(o, { split: 'evaluation', batch, pixels: { fixed: 2 } })];
      expect(batches.map((b) => b.batch)).toEqual(sizes);
      expect(batches[0]!.indices[0]).toBe(firstEval);
      const again = orderedBatches(o, { split: 'evaluation', batch, pixels: { fixed: 2 } }).next().value!;
      expect(Buffer.from(again.images.buffer).equals(Buffer.from(batches[0]!.images.buffer))).toBe(true);
    });
  });
}
