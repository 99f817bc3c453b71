/**
 * A data set's registry entry (./registry.ts): the whole definition of one data set, so that
 * adding one is one file of ./sets/ plus one line in the registry.
 */
import type { IrProgram } from '../ir/types.ts';
import type { DataOptions, TrainStream } from './bind.ts';
import type { SplitSpec } from './episodes.ts';
import type { ImageSet } from './types.ts';

/** How an image set is read: the data directory of the downloaded sets, and a user's options. */
export interface LoadOptions {
  dataDir?: string;
  /** Few-shot episodes: validate on held-out classes rather than held-out images. Default true. */
  memory?: boolean;
  /** The model's pixels per image: PNG folders are resized to a square of this size. */
  pixels?: number;
  /** A second file or folder with the validation images (a user's data set). */
  valid?: string;
}

/** What trains and what tests (`vmm eval` reports on the test split). */
export interface ImageSplits {
  train: ImageSet;
  test: ImageSet;
  trainSplit?: string;
  testSplit?: string;
}

/** Training data and the validation data held out of it (never what `vmm eval` reports on). */
export interface TrainValidSplits {
  train: ImageSet;
  trainSplit: SplitSpec;
  valid: ImageSet;
  validSplit: SplitSpec;
  /** The two parts in words, for the run's description. */
  trainName: string;
  validName: string;
}

interface Common {
  /** The name in `--dataset NAME` and in `train { dataset = NAME }`. */
  name: string;
  /** One line for the documentation. */
  summary: string;
  /** Set for a data set that reads no files: why `--data DIR` means nothing to it (a note, not an error). */
  readsNoFiles?: string;
}

/** A set of images: batches for models without a memory, few-shot episodes for models with one. */
export interface ImageDatasetSpec extends Common {
  kind: 'images';
  load(o: LoadOptions): ImageSplits;
  trainValid(o: LoadOptions): TrainValidSplits;
}

/** A data set that generates every input of its models itself (no images to bind). */
export interface GeneratedDatasetSpec extends Common {
  kind: 'generated';
  /**
   * The model's batches: the training stream (no `stream`), or the fixed `valid` or `test`
   * stream, the same every time it is opened with the same seed.
   */
  open(ir: IrProgram, o: DataOptions, stream?: 'valid' | 'test'): TrainStream;
}

export type DatasetSpec = ImageDatasetSpec | GeneratedDatasetSpec;
