// Full data (npm run test:data): episodes at the full Omniglot scale (964 / 659 characters).
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { episodeSuites } from '../data/suites/episodes.ts';

// Background = 964 characters (images 0..19279), evaluation = 659 (19280..32459). With 963 other
// characters and 6 distractors, no class can reach S + 1 = 4 entries unless a distractor joined
// an episode class.
episodeSuites(loadOmniglot(), {
  backgroundClasses: 964,
  firstEvaluationImage: 19280,
  distractors: 6,
  sharedMemory: { classes: 125, shots: 19, distractors: 125, targets: 100, size: 2500 },
  ordered: { batch: 5000, sizes: [5000, 5000, 3180] },
});
