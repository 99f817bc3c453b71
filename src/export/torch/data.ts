/**
 * The data of an exported model.
 *
 * An image set is written as `data/<set>.npz` of the export, as vmm loads it (the registry's
 * `trainValid`): `images` uint8 [N, D], `labels` int32 [N] (when the set has them), `train` int32
 * (the indices train.py draws from: the training split with vmm's validation images held out),
 * `valid` int32 (those validation images, what train.py validates on) and `max_value` (255:
 * binarize as Bernoulli(v / 255); 1: already binary). So the exported trainer reads the same
 * pixels vmm would, with nothing but numpy.
 *
 * A generated set (`synthetic`, `recall`) writes no file: export.json describes the model's inputs
 * (`dataBinding`) and vmm_runtime.py generates the batches with a port of vmm's generator, number
 * for number (the same seed and stream give vmm's very batches; test/export/torch_parts.test.ts).
 */
import { bindInputs } from '../../data/bind.ts';
import { datasetFor, trainValidSplits } from '../../data/source.ts';
import { resolveSplit } from '../../data/episodes.ts';
import { encodeNpz } from '../../data/npy.ts';
import { recallBinding, type RecallBinding } from '../../data/sets/recall.ts';
import type { IrProgram } from '../../ir/types.ts';

/** What export.json says of the data: which inputs an image set feeds, or how a generated set is made. */
export type DataBinding =
  | { images: string; data: string; memory?: string }
  | { generated: 'synthetic'; data: string; dim: number }
  | ({ generated: 'recall' } & RecallBinding);

/** The binding of the model's inputs to its data set (the train block's, or `dataset`). */
export function dataBinding(ir: IrProgram, dataset: string = ir.train.dataset): DataBinding {
  const spec = datasetFor(dataset);
  if (spec.kind === 'images') {
    const b = bindInputs(ir);
    return { images: spec.name, data: b.data, ...(b.memory ? { memory: b.memory } : {}) };
  }
  if (spec.name === 'recall') {
    const ep = ir.train.episodes;
    return { generated: 'recall', ...recallBinding(ir, { dataset, seed: 1, classes: ep.classes, shots: ep.shots, distractors: ep.distractors }) };
  }
  if (spec.name === 'synthetic') {
    const b = bindInputs(ir);
    return { generated: 'synthetic', data: b.data, dim: b.dataSize };
  }
  throw new Error(`exportData: the generated data set '${spec.name}' has no port in vmm_runtime.py`);
}

/** The .npz bytes, or a reason there are none (a generated set, which train.py generates itself). */
export function exportData(ir: IrProgram, dataDir?: string): { name: string; bytes: Uint8Array } | { why: string } {
  const spec = datasetFor(ir.train.dataset);
  if (spec.kind !== 'images') return { why: `the data set '${ir.train.dataset}' is generated: train.py draws it itself, with vmm's generator (export.json says how); no data/ needed` };
  const { train, trainSplit, valid, validSplit } = trainValidSplits(ir.train.dataset, dataDir);
  const trainIdx = resolveSplit(train, trainSplit);
  let validIdx = resolveSplit(valid, validSplit);
  let images = train.images;
  let count = train.count;
  let labels = 'labels' in train ? (train.labels as Int32Array | undefined) : undefined;
  if (valid !== train) {
    // Held out in another set: its images follow the training set's.
    images = new Uint8Array(train.images.length + valid.images.length);
    images.set(train.images);
    images.set(valid.images, train.images.length);
    const validLabels = 'labels' in valid ? (valid.labels as Int32Array | undefined) : undefined;
    if (labels && validLabels) {
      const all = new Int32Array(train.count + valid.count);
      all.set(labels);
      all.set(validLabels, train.count);
      labels = all;
    } else labels = undefined;
    validIdx = validIdx.map((i) => i + train.count);
    count += valid.count;
  }
  const arrays: Parameters<typeof encodeNpz>[0] = {
    images: { data: images, shape: [count, train.height * train.width], dtype: 'u1' },
    train: { data: Int32Array.from(trainIdx), shape: [trainIdx.length], dtype: 'i4' },
    valid: { data: Int32Array.from(validIdx), shape: [validIdx.length], dtype: 'i4' },
    max_value: { data: Int32Array.of(train.maxValue), shape: [], dtype: 'i4' },
  };
  if (labels) arrays['labels'] = { data: labels, shape: [count], dtype: 'i4' };
  return { name: `data/${spec.name}.npz`, bytes: encodeNpz(arrays) };
}
