import { loadOmniglot } from '../../src/data/omniglot.ts';
import { fixtureData } from '../fixtures/data.ts';
import { episodeSuites } from './suites/episodes.ts';

// The fixture subset: background = 13 characters (images 0..259), evaluation = 7 (260..399).
// The same checks at the full scale: test/full_data/episodes.test.ts (npm run test:data).
episodeSuites(loadOmniglot(fixtureData), {
  backgroundClasses: 13,
  firstEvaluationImage: 260,
  distractors: 3,
  sharedMemory: { classes: 5, shots: 15, distractors: 10, targets: 20, size: 85 },
  ordered: { batch: 50, sizes: [50, 50, 40] },
});
