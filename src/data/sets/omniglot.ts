/** `omniglot`: 28x28 Omniglot (../omniglot.ts); the 30 background alphabets train, the 20 evaluation alphabets test. */
import { loadOmniglot } from '../omniglot.ts';
import type { ImageDatasetSpec } from '../spec.ts';
import { everyTenthClass } from './held_out.ts';

const load: ImageDatasetSpec['load'] = (o) => {
  const s = loadOmniglot(o.dataDir ? { dataDir: o.dataDir } : {});
  return { train: s, test: s, trainSplit: 'background', testSplit: 'evaluation' };
};

export const omniglotDataset: ImageDatasetSpec = {
  name: 'omniglot',
  kind: 'images',
  summary: 'Omniglot at 28x28 (`vmm data get omniglot`): background alphabets train (every 10th character validates), evaluation alphabets test',
  load,
  trainValid(o) {
    return everyTenthClass(load(o));
  },
};
