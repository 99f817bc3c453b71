// Full data (npm run test:data): the converter on the shared sample zips against omniglot28_u8.bin.gz.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { resolveDataFile } from '../../src/data/paths.ts';
import { convertChecks } from '../data/suites/convert_omniglot.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('convertOmniglotZips on images_background_small1.zip', () => {
  convertChecks({
    small1: resolveDataFile('raw/images_background_small1.zip'),
    small2: resolveDataFile('raw/images_background_small2.zip'),
    tmp,
    loadReference: () => loadOmniglot(),
    referenceName: 'omniglot28_u8.bin.gz',
    small1Contents: { characters: 136, alphabets: ['Balinese', 'Early_Aramaic', 'Greek', 'Korean', 'Latin'] },
    // small1: 136 characters, small2: 156, Greek (24) and Latin (26) in both.
    bothContents: {
      characters: 136 + 156 - 24 - 26,
      alphabets: ['Balinese', 'Early_Aramaic', 'Greek', 'Japanese_(katakana)', 'Korean', 'Latin', 'Sanskrit', 'Tagalog'],
    },
    // The full index is the full set: a character's id is its 1-based position.
    sourceId: (_reference, j) => j + 1,
  });
});
