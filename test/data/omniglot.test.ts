import { describe, expect, it } from 'vitest';
import { loadOmniglot, parseOmniglotIndex } from '../../src/data/omniglot.ts';
import { DataError } from '../../src/data/paths.ts';
import { fixtureData } from '../fixtures/data.ts';
import { omniglotChecks } from './suites/omniglot.ts';

// The fixture subset (test/fixtures/data): 20 characters x 20 drawers. The full set's counts are
// checked by the same checks (test/data/suites/omniglot.ts) in test/full_data/omniglot.test.ts
// (npm run test:data).
describe('Omniglot 28x28 (fixture subset)', () => {
  const o = loadOmniglot(fixtureData);

  omniglotChecks(o, {
    classes: 20,
    background: { alphabets: 3, characters: 13 },
    evaluation: { alphabets: 2, characters: 7 },
    firstAlphabet: 'Greek',
    inkImages: 400,
  });

  it('decodes once per process', () => {
    expect(loadOmniglot(fixtureData)).toBe(o);
  });

  it('rejects a malformed index with a DataError', () => {
    expect(() => parseOmniglotIndex('{', 'x.json')).toThrow(DataError);
    expect(() => parseOmniglotIndex('{"numImages": 3, "numCharacters": 2, "drawersPerCharacter": 2}', 'x.json')).toThrow(
      /numImages/,
    );
  });
});
