/** `binarized_mnist`: the fixed binarization of Larochelle & Murray 2011 (../binarized_mnist.ts), its own train, valid and test files. */
import { loadBinarizedMnist } from '../binarized_mnist.ts';
import type { ImageDatasetSpec } from '../spec.ts';

const load: ImageDatasetSpec['load'] = (o) => {
  const opts = o.dataDir ? { dataDir: o.dataDir } : {};
  return { train: loadBinarizedMnist('train', opts), test: loadBinarizedMnist('test', opts) };
};

export const binarizedMnistDataset: ImageDatasetSpec = {
  name: 'binarized_mnist',
  kind: 'images',
  summary: 'binarized MNIST (Larochelle & Murray 2011, `vmm data get binarized_mnist`): its train, valid and test files; no labels, so no episodes',
  load,
  trainValid(o) {
    // The valid file validates; train stays the whole train file.
    const { train } = load(o);
    return { train, trainSplit: 'all', valid: loadBinarizedMnist('valid', o.dataDir ? { dataDir: o.dataDir } : {}), validSplit: 'all', trainName: 'train', validName: 'valid file' };
  },
};
