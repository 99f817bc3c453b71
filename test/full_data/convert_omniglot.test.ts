// Full data (npm run test:data): the converter on the shared sample zips against omniglot28_u8.bin.gz.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertOmniglotZips, type ConvertResult } from '../../src/data/convert_omniglot.ts';
import { clearOmniglotCache, loadOmniglot, type Omniglot } from '../../src/data/omniglot.ts';
import { resolveDataFile } from '../../src/data/paths.ts';

const small1 = resolveDataFile('raw/images_background_small1.zip');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('convertOmniglotZips on images_background_small1.zip', () => {
  let result: ConvertResult;
  let shared: Omniglot;
  let converted: Omniglot;

  beforeAll(async () => {
    result = await convertOmniglotZips([small1], tmp, { gzipLevel: 1 });
    shared = loadOmniglot();
    converted = loadOmniglot({ dataDir: tmp });
  });

  it('writes a compact file set that loadOmniglot reads', () => {
    expect(result.numImages).toBe(2720);
    expect(result.numCharacters).toBe(136);
    expect(result.drawersPerCharacter).toBe(20);
    expect(result.alphabets.map((a) => a.name)).toEqual(['Balinese', 'Early_Aramaic', 'Greek', 'Korean', 'Latin']);
    expect(converted.count).toBe(2720);
    expect(converted.splits.background.length).toBe(2720);
    expect(converted.splits.evaluation.length).toBe(0);
    expect(Buffer.from(converted.images).equals(Buffer.from(result.images))).toBe(true);
  });

  it('equals omniglot28_u8.bin.gz pixel for pixel (alphabets by name, characters and drawers by order)', () => {
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
    expect(compared).toBe(2720);
    expect(maxDiff).toBe(0);
  });

  it('keeps the original character ids, which agree with the shared index', () => {
    const ids = result.index['sourceCharacterIds'] as number[];
    expect(ids.length).toBe(136);
    for (const a of converted.alphabets) {
      const ref = shared.alphabets.find((r) => r.name === a.name)!;
      for (let k = 0; k < a.count; k++) expect(ids[a.first - 1 + k]).toBe(ref.first + k);
    }
  });

  it('takes files present in two overlapping zips once', async () => {
    const small2 = resolveDataFile('raw/images_background_small2.zip');
    const out = join(tmp, 'both');
    const r = await convertOmniglotZips([small1, small2], out, { gzipLevel: 1 });
    // small1: 136 characters, small2: 156, Greek (24) and Latin (26) in both.
    expect(r.numCharacters).toBe(136 + 156 - 24 - 26);
    expect(r.alphabets.map((a) => a.name)).toEqual([
      'Balinese', 'Early_Aramaic', 'Greek', 'Japanese_(katakana)', 'Korean', 'Latin', 'Sanskrit', 'Tagalog',
    ]);
    clearOmniglotCache();
    const both = loadOmniglot({ dataDir: out });
    const ref = loadOmniglot();
    const tag = both.alphabets.find((a) => a.name === 'Tagalog')!;
    const refTag = ref.alphabets.find((a) => a.name === 'Tagalog')!;
    const n = tag.count * 20 * 784;
    expect(
      Buffer.from(both.images.subarray((tag.first - 1) * 20 * 784, (tag.first - 1) * 20 * 784 + n)).equals(
        Buffer.from(ref.images.subarray((refTag.first - 1) * 20 * 784, (refTag.first - 1) * 20 * 784 + n)),
      ),
    ).toBe(true);
  });
});
