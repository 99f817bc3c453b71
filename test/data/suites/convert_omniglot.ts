/**
 * The converter checks shared by test/data/convert_omniglot.test.ts (the fixture zips against the
 * fixture omniglot28 files, `npm test`) and test/full_data/convert_omniglot.test.ts (the shared
 * sample zips against the full omniglot28 files, `npm run test:data`).
 */
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { convertOmniglotZips, type ConvertResult } from '../../../src/data/convert_omniglot.ts';
import { clearOmniglotCache, loadOmniglot, type Omniglot } from '../../../src/data/omniglot.ts';

/** The inputs of the converter checks and what they expect of them. */
export interface ConvertScale {
  /** images_background_small1.zip and images_background_small2.zip (two overlapping zips). */
  small1: string;
  small2: string;
  /** A scratch directory the file removes after its tests. */
  tmp: string;
  /** Loads the omniglot28 files the conversion must reproduce (the fixtures, or the full set). */
  loadReference: () => Omniglot;
  /** How the test names call that reference: 'the fixture omniglot28_u8.bin.gz' / 'omniglot28_u8.bin.gz'. */
  referenceName: string;
  /** Characters and alphabets (in order) of small1: 10, Greek and Latin (fixtures); 136, five (full). */
  small1Contents: { characters: number; alphabets: string[] };
  /** Characters and alphabets of small1 + small2, the characters in both zips counted once. */
  bothContents: { characters: number; alphabets: string[] };
  /**
   * The source character id the reference gives the character at 0-based position `j` of its set:
   * the id recorded in the fixture index (`sourceCharacterIds`); j + 1 in the full set.
   */
  sourceId: (reference: Omniglot, j: number) => number;
}

/** What the shared beforeAll computed, for the checks a file adds (read inside its tests). */
export interface ConvertContext {
  result: ConvertResult;
  reference: Omniglot;
  converted: Omniglot;
}

/** Registers (inside a describe) the conversion of small1 and the checks of its output. */
export function convertChecks(scale: ConvertScale): ConvertContext {
  const ctx = {} as ConvertContext;
  const { small1, small2, tmp } = scale;
  const images = scale.small1Contents.characters * 20;

  beforeAll(async () => {
    ctx.result = await convertOmniglotZips([small1], tmp, { gzipLevel: 1 });
    ctx.reference = scale.loadReference();
    ctx.converted = loadOmniglot({ dataDir: tmp });
  });

  it('writes a compact file set that loadOmniglot reads', () => {
    const { result, converted } = ctx;
    expect(result.numImages).toBe(images);
    expect(result.numCharacters).toBe(scale.small1Contents.characters);
    expect(result.drawersPerCharacter).toBe(20);
    expect(result.alphabets.map((a) => a.name)).toEqual(scale.small1Contents.alphabets);
    expect(converted.count).toBe(images);
    expect(converted.splits.background.length).toBe(images);
    expect(converted.splits.evaluation.length).toBe(0);
    expect(Buffer.from(converted.images).equals(Buffer.from(result.images))).toBe(true);
  });

  it(`equals ${scale.referenceName} pixel for pixel (alphabets by name, characters and drawers by order)`, () => {
    const { reference: shared, converted } = ctx;
    let maxDiff = 0;
    let compared = 0;
    for (const a of converted.alphabets) {
      const ref = shared.alphabets.find((r) => r.name === a.name)!;
      expect(ref).toBeDefined();
      expect(a.count).toBe(ref.count);
      for (let k = 0; k < a.count; k++) {
        for (let d = 0; d < 20; d++) {
          const src = ((a.first - 1 + k) * 20 + d) * 784;
          const dst = ((ref.first - 1 + k) * 20 + d) * 784;
          for (let p = 0; p < 784; p++) {
            const diff = Math.abs(converted.images[src + p]! - shared.images[dst + p]!);
            if (diff > maxDiff) maxDiff = diff;
          }
          compared++;
        }
      }
    }
    expect(compared).toBe(images);
    expect(maxDiff).toBe(0);
  });

  it('keeps the original character ids, which agree with the reference index', () => {
    const { result, reference: shared, converted } = ctx;
    const ids = result.index['sourceCharacterIds'] as number[];
    expect(ids.length).toBe(scale.small1Contents.characters);
    for (const a of converted.alphabets) {
      const ref = shared.alphabets.find((r) => r.name === a.name)!;
      for (let k = 0; k < a.count; k++) expect(ids[a.first - 1 + k]).toBe(scale.sourceId(shared, ref.first - 1 + k));
    }
  });

  it('takes files present in two overlapping zips once', async () => {
    const out = join(tmp, 'both');
    const r = await convertOmniglotZips([small1, small2], out, { gzipLevel: 1 });
    expect(r.numCharacters).toBe(scale.bothContents.characters);
    expect(r.alphabets.map((a) => a.name)).toEqual(scale.bothContents.alphabets);
    clearOmniglotCache();
    const both = loadOmniglot({ dataDir: out });
    const ref = scale.loadReference();
    const tag = both.alphabets.find((a) => a.name === 'Tagalog')!;
    const refTag = ref.alphabets.find((a) => a.name === 'Tagalog')!;
    const n = tag.count * 20 * 784;
    expect(
      Buffer.from(both.images.subarray((tag.first - 1) * 20 * 784, (tag.first - 1) * 20 * 784 + n)).equals(
        Buffer.from(ref.images.subarray((refTag.first - 1) * 20 * 784, (refTag.first - 1) * 20 * 784 + n)),
      ),
    ).toBe(true);
  });

  return ctx;
}
