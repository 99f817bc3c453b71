/** The validation parts the image sets hold out of their training split, written once for the entries that share them. */
import { resolveSplit } from '../episodes.ts';
import type { LabelledImageSet } from '../types.ts';
import type { ImageSplits, TrainValidSplits } from '../spec.ts';

/** Every 10th image of the training split (by position) held out (the `mnist` package's train split). */
export function everyTenthImage({ train, trainSplit }: ImageSplits): TrainValidSplits {
  const images = resolveSplit(train, trainSplit);
  return {
    train,
    trainSplit: { images: images.filter((_, k) => k % 10 !== 9) },
    valid: train,
    validSplit: { images: images.filter((_, k) => k % 10 === 9) },
    trainName: `${trainSplit ?? 'train'} images except every 10th (held out for validation)`,
    validName: `every 10th ${trainSplit ?? 'train'} image, held out of training`,
  };
}

/** Every 10th class of the training split (class id 9, 19, ...) held out: episodes validate on characters never trained on. */
export function everyTenthClass({ train, trainSplit }: ImageSplits): TrainValidSplits {
  const images = resolveSplit(train, trainSplit);
  const labels = (train as LabelledImageSet).labels;
  const classes = [...new Set(Array.from(images, (i) => labels[i]!))].sort((x, y) => x - y);
  const held = (c: number) => c % 10 === 9;
  return {
    train,
    trainSplit: { images: trainSplit!, classes: classes.filter((c) => !held(c)) },
    valid: train,
    validSplit: { images: trainSplit!, classes: classes.filter(held) },
    trainName: `${trainSplit} characters except those held out for validation`,
    validName: `${trainSplit} characters held out of training (class id = 9 mod 10)`,
  };
}
