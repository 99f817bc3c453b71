/**
 * Lake's one-shot runs: one run per evaluation alphabet, 20 characters of that alphabet (fewer when
 * it has fewer), supports and queries by two different drawers, exactly one matching support per
 * query, and the same runs for the same seed.
 */
import { describe, expect, it } from 'vitest';
import { makeOmniglot, type OmniglotIndex } from '../../src/data/omniglot.ts';
import { lakeRuns } from '../../src/jobs/lake_runs.ts';

const DPC = 20;
const index: OmniglotIndex = {
  numImages: 60 * DPC,
  numCharacters: 60,
  drawersPerCharacter: DPC,
  u8: { file: 'x', shape: [60 * DPC, 4, 4] },
  alphabets: [
    { name: 'bg', set: 'images_background', first: 1, count: 25 },
    { name: 'ev1', set: 'images_evaluation', first: 26, count: 25 },
    { name: 'ev2', set: 'images_evaluation', first: 51, count: 10 },
  ],
  splits: { background: [0, 25 * DPC], evaluation: [25 * DPC, 60 * DPC] },
} as unknown as OmniglotIndex;
// Image i holds its own index in its first pixel, so the test can read back which image it got.
const images = new Uint8Array(60 * DPC * 16).map((_, p) => (p % 16 === 0 ? 255 : 0));
const set = makeOmniglot(index, images);

describe("Lake's one-shot runs", () => {
  const runs = lakeRuns(set, 3);
  it('one run per evaluation alphabet, within the alphabet, two drawers', () => {
    expect(runs.map((r) => r.batch)).toEqual([20, 10]);
    const alphabets = [index.alphabets[1]!, index.alphabets[2]!];
    runs.forEach((r, k) => {
      const a = alphabets[k]!;
      const inAlphabet = (c: number) => c >= a.first - 1 && c < a.first - 1 + a.count;
      expect([...r.targetClass].every(inAlphabet)).toBe(true);
      expect(new Set(r.targetClass).size).toBe(r.batch);
      const supportDrawers = new Set([...r.memoryIndex].map((i) => i % DPC));
      const queryDrawers = new Set([...r.targetIndex].map((i) => i % DPC));
      expect(supportDrawers.size).toBe(1);
      expect(queryDrawers.size).toBe(1);
      expect([...supportDrawers][0]).not.toBe([...queryDrawers][0]);
      for (let b = 0; b < r.batch; b++) {
        const row = [...r.matchMask.subarray(b * r.memorySize, (b + 1) * r.memorySize)];
        expect(row.reduce((s, v) => s + v, 0)).toBe(1);
        const slot = row.indexOf(1);
        expect(r.memoryClass[b * r.memorySize + slot]).toBe(r.targetClass[b]);
        expect(r.matches[b]).toBe(slot);
      }
    });
  });
  it('is fixed by its seed', () => {
    expect(lakeRuns(set, 3)[0]!.targetIndex).toEqual(runs[0]!.targetIndex);
    expect(lakeRuns(set, 4)[0]!.targetIndex).not.toEqual(runs[0]!.targetIndex);
  });
});
