/**
 * Paired evaluation across memory sizes (src/jobs/evaluate_run.ts): the memories of one C are
 * nested (each smaller one a prefix of the larger, in round-robin class order) and keep the same
 * targets, so per-episode NLL differences are paired.
 */
import { describe, expect, it } from 'vitest';
import { EpisodeSampler } from '../../src/data/episodes.ts';
import { loadMnistPackage } from '../../src/data/mnist_package.ts';
import { meanSe, nestedEpisode, roundRobinOrder } from '../../src/jobs/evaluate_run.ts';

describe('nested memories for paired evaluation', () => {
  const set = loadMnistPackage();
  const C = 3;
  const e = new EpisodeSampler({ set, classes: C, shots: 4, split: 'test', seed: 5, pixels: { fixed: 1 } }).next(6);
  const order = roundRobinOrder(e, C);
  const D = e.pixels;

  it('takes the C classes in turn, each M >= C memory holding every class with floor or ceil(M/C) shots', () => {
    for (const M of [3, 4, 5, 7, 12]) {
      const n = nestedEpisode(e, order, M);
      expect(n.memorySize).toBe(M);
      for (let b = 0; b < e.batch; b++) {
        const cls = Array.from(n.memoryClass.subarray(b * M, (b + 1) * M));
        const counts = new Map<number, number>();
        for (const c of cls) counts.set(c, (counts.get(c) ?? 0) + 1);
        expect(counts.size).toBe(C);
        for (const k of counts.values()) expect([Math.floor(M / C), Math.ceil(M / C)]).toContain(k);
        // the first C entries are C different classes, then the same sequence again
        for (let j = C; j < M; j++) expect(cls[j]).toBe(cls[j - C]);
        expect(cls).toContain(e.targetClass[b]);
        for (let j = 0; j < M; j++) expect(n.matchMask[b * M + j]).toBe(cls[j] === e.targetClass[b] ? 1 : 0);
      }
    }
  });

  it('nests: the M memory is the prefix of every larger one, with the same targets and pixels', () => {
    const small = nestedEpisode(e, order, 4);
    const large = nestedEpisode(e, order, 11);
    expect(Array.from(small.targets)).toEqual(Array.from(e.targets));
    expect(Array.from(large.targets)).toEqual(Array.from(e.targets));
    for (let b = 0; b < e.batch; b++) {
      expect(Array.from(small.memory.subarray(b * 4 * D, (b + 1) * 4 * D))).toEqual(Array.from(large.memory.subarray(b * 11 * D, (b * 11 + 4) * D)));
      expect(Array.from(small.memoryIndex.subarray(b * 4, b * 4 + 4))).toEqual(Array.from(large.memoryIndex.subarray(b * 11, b * 11 + 4)));
    }
    // the full order is a permutation of the episode's memory
    const full = nestedEpisode(e, order, e.memorySize);
    for (let b = 0; b < e.batch; b++) {
      const ids = (x: Int32Array, m: number) => Array.from(x.subarray(b * m, (b + 1) * m)).sort((p, q) => p - q);
      expect(ids(full.memoryIndex, e.memorySize)).toEqual(ids(e.memoryIndex, e.memorySize));
    }
  });

  it('rejects episodes with distractors (not C classes with equal shots)', () => {
    const d = new EpisodeSampler({ set, classes: 2, shots: 2, distractors: 1, split: 'test', seed: 1 }).next(1);
    expect(() => roundRobinOrder(d, 2)).toThrow(/2 classes with equal shots/);
  });

  it('paired standard error: the se of per-episode differences, smaller than unpaired when NLLs correlate', () => {
    const a = [100, 90, 120, 80, 110];
    const b = a.map((v, i) => v - 2 + (i % 2 ? 0.5 : -0.5));
    const d = meanSe(b.map((v, i) => v - a[i]!));
    expect(d.mean).toBeCloseTo(-2.1, 10);
    expect(d.se).toBeLessThan(meanSe(a).se / 10);
  });
});
