// Full data (npm run test:data): the counts and splits of the full omniglot28 files.
import { describe } from 'vitest';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { omniglotChecks } from '../data/suites/omniglot.ts';

describe('Omniglot 28x28', () => {
  omniglotChecks(loadOmniglot(), {
    classes: 1623,
    background: { alphabets: 30, characters: 964 },
    evaluation: { alphabets: 20, characters: 659 },
    firstAlphabet: 'Arcadian',
    // The ink statistics over the first 2,000 images (a sample, to keep the check fast).
    inkImages: 2000,
  });
});
