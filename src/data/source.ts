/**
 * Connects a model's declared inputs to a data set of the registry (./registry.ts): which split
 * trains and which tests, and what the model receives.
 *
 * - A model with a `memory` gets few-shot episodes (./episodes.ts): memory = C classes x S shots
 *   (+ distractors), target = another image of one of those classes. Training uses the training
 *   split (Omniglot: its 30 background alphabets; the MNIST package: its train split), evaluation
 *   the test split (characters never seen in training).
 * - A model without memory gets plain minibatches.
 * - A generated data set (synthetic, recall) makes every input itself.
 * Training pixels are binarized dynamically; evaluation uses a fixed seeded binarization.
 */
import { statSync } from 'node:fs';
import { bindInputs, episodeInputs, type Binding, type DataOptions, type DatasetName, type RawBatch, type TrainStream } from './bind.ts';
import { EpisodeSampler, BatchSampler, type SamplerState, type BatchSamplerState, type SplitSpec } from './episodes.ts';
import { DataError } from './paths.ts';
import { datasetSpec } from './registry.ts';
import type { DatasetSpec, ImageSplits, LoadOptions, TrainValidSplits } from './spec.ts';
import { userDataset } from './sets/user.ts';
import { loadSharedMemory, memoryFileHash, type SharedMemory } from './shared_memory.ts';
import type { ImageSet, LabelledImageSet } from './types.ts';
import type { IrProgram } from '../ir/types.ts';
import { Rng, type RngState } from '../random/rng.ts';

/** The entry of a data set: a registered name, else the user's data at that path. */
export function datasetFor(name: DatasetName): DatasetSpec {
  return datasetSpec(name) ?? userDataset(name);
}

/** An image set's entry; a generated set is not one. */
function imageSpec(name: DatasetName) {
  const spec = datasetFor(name);
  if (spec.kind !== 'images') throw new DataError(`${name} data is not an image set`);
  return spec;
}

/** The images of a data set: what trains and what tests. */
export function loadImageSet(dataset: DatasetName, dataDir?: string, o: Omit<LoadOptions, 'dataDir'> = {}): ImageSplits {
  return imageSpec(dataset).load({ ...o, ...(dataDir ? { dataDir } : {}) });
}

/**
 * Training data and the validation data held out of it. Validation during training never
 * touches what `vmm eval` reports on (the Omniglot evaluation alphabets, the MNIST test split);
 * each entry says what it holds out.
 */
export function trainValidSplits(dataset: DatasetName, dataDir?: string, o: Omit<LoadOptions, 'dataDir'> = {}): TrainValidSplits {
  return imageSpec(dataset).trainValid({ ...o, ...(dataDir ? { dataDir } : {}) });
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
function userOptions(opts: DataOptions, b: Binding): Omit<LoadOptions, 'dataDir'> {
  return { memory: b.memory !== undefined, pixels: b.dataSize, ...(opts.valid !== undefined ? { valid: opts.valid } : {}) };
}

/** The training stream for a model: generated batches, episodes if it has a memory, else minibatches. */
export function trainStream(ir: IrProgram, opts: DataOptions): TrainStream {
  const spec = datasetFor(opts.dataset);
  if (spec.kind === 'generated') return spec.open(ir, opts);
  const b = bindInputs(ir);
  const { train, trainSplit, trainName } = trainValidSplits(opts.dataset, opts.dataDir, userOptions(opts, b));
  checkPixels(train, b);
  // With a memory file every batch is targets plus that one memory, not an episode.
  const shared = opts.memory && sharedMemoryOf(ir, opts.memory, b);
  if (b.memory && !shared) {
    if (!('labels' in train) || train.labels === undefined) {
      throw new DataError(
        `${train.name === 'binarized-mnist-train' ? opts.dataset : train.name}: no class labels, so it cannot make the few-shot episodes that ${ir.name}'s memory '${b.memory}' needs ` +
          `(give labels: an .npz with an integer array 'labels' or 'y', or a folder with one sub-folder per class)`,
      );
    }
    const sampler = (shots: number) =>
      new EpisodeSampler({
        set: train as LabelledImageSet,
        classes: opts.classes,
        shots,
        distractors: opts.distractors,
        split: trainSplit,
        // The full-size sampler keeps the run's seed, so a run without minShots draws as before.
        seed: shots === opts.shots ? opts.seed : opts.seed + 7919 * shots,
        pixels: 'dynamic',
      });
    const what = `${train.name} episodes (${trainName}): ${opts.classes} classes x`;
    const extra = opts.distractors ? ` + ${opts.distractors} distractors` : '';
    if (opts.minShots !== undefined && opts.minShots < opts.shots) return mixedShots(b, sampler, opts.minShots, opts.shots, opts.seed, `${what} ${opts.minShots}..${opts.shots} shots${extra} (drawn per batch), dynamic binarization`);
    const one = sampler(opts.shots);
    return {
      next: (n) => episodeInputs(b, one.next(n)),
      state: () => one.state(),
      setState: (s) => one.setState(s as SamplerState),
      describe: `${what} ${opts.shots} shots${extra} = ${one.memorySize} memory entries, dynamic binarization`,
    };
  }
  const sampler = new BatchSampler({ set: train, split: trainSplit, seed: opts.seed, pixels: 'dynamic' });
  return {
    next: (n) => plainInputs(b, sampler.next(n), shared),
    state: () => sampler.state(),
    setState: (s) => sampler.setState(s as BatchSamplerState),
    describe: shared
      ? `${train.name} (${trainName}) targets, dynamic binarization, addressing one memory of ${shared.count} entries (${shared.path}, fixed binarization)`
      : `${train.name} (${trainName}), dynamic binarization`,
  };
}

/**
 * Episodes whose number of shots is drawn per batch, uniformly from min .. max (one sampler per
 * count, each with its own stream, and a seeded draw of the count), so a model trained on full
 * memories also meets small ones: a model trained only on 4-shot memories sees the single shot
 * of a 1-shot evaluation as nothing it was trained on.
 */
function mixedShots(b: Binding, sampler: (shots: number) => EpisodeSampler, min: number, max: number, seed: number, describe: string): TrainStream {
  const samplers = Array.from({ length: max - min + 1 }, (_, i) => sampler(min + i));
  const pick = new Rng(seed, 'episode-shots');
  return {
    next: (n) => episodeInputs(b, samplers[pick.int(samplers.length)]!.next(n)),
    state: () => ({ pick: pick.state(), samplers: samplers.map((s) => s.state()) }),
    setState: (s) => {
      const st = s as { pick: RngState; samplers: SamplerState[] };
      pick.setState(st.pick);
      st.samplers.forEach((x, i) => samplers[i]!.setState(x));
    },
    describe,
  };
}

/** A minibatch as the model's inputs: the images to its data input, and a shared memory if one is given. */
function plainInputs(b: Binding, batch: { images: Float32Array; batch: number; pixels: number }, shared: SharedMemory | undefined): RawBatch {
  const data = { name: b.data, data: batch.images, shape: [batch.batch, batch.pixels], plates: ['batch' as const] };
  // No batch plate: the same array every time (the trainer keeps it on the device, and its keys).
  return { inputs: shared ? [data, { name: b.memory!, data: shared.data, shape: [shared.count, shared.pixels], plates: [] }] : [data] };
}

/** The run's memory file, read once per process for each path (validation and training share one array). */
const memoryCache = new Map<string, SharedMemory>();
function sharedMemoryOf(ir: IrProgram, m: NonNullable<DataOptions['memory']>, b: Binding): SharedMemory {
  if (!b.memory) throw new DataError(`--memory ${m.path}: ${ir.name} has no memory input to give it to`);
  // The file's size and time are in the key, so a file changed since it was read is hashed (and refused) again.
  const st = statOf(m.path);
  const key = `${m.path}\0${m.sha256}\0${st.size}\0${st.mtimeMs}`;
  let mem = memoryCache.get(key);
  if (!mem) {
    const now = memoryFileHash(m.path);
    if (now !== m.sha256) throw new DataError(`--memory ${m.path} has changed since the run began (its SHA-256 differs): a run is trained against one memory; start a new run for the new file`);
    const entry = ir.memories.find((x) => x.name === b.memory)!;
    const pixels = entry.type.shape.slice(1).reduce((n, d) => n * (Object.keys(d.terms).length ? NaN : d.c), 1);
    mem = loadSharedMemory(m.path, Number.isNaN(pixels) ? b.dataSize : pixels);
    memoryCache.clear();
    memoryCache.set(key, mem);
  }
  return mem;
}

function statOf(path: string): { size: number; mtimeMs: number } {
  try {
    return statSync(path);
  } catch (e) {
    throw new DataError(`--memory ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * A fixed validation set: `count` examples (episodes with the same C and S for memory models)
 * from the data held out of training (`trainValidSplits`), fixed binarization, the same every
 * time it is built with this seed.
 */
export function validationBatches(ir: IrProgram, opts: DataOptions, count: number, batch: number): RawBatch[] {
  const spec = datasetFor(opts.dataset);
  if (spec.kind === 'generated') return generatedBatches(spec.open(ir, opts, 'valid'), count, batch);
  const { valid, validSplit } = spec.trainValid({ ...userOptions(opts, bindInputs(ir)), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  return fixedBatches(ir, opts, count, batch, valid, validSplit);
}

/** `count` fixed examples of the test split (what `vmm eval` reports on), as `validationBatches`. */
export function testBatches(ir: IrProgram, opts: DataOptions, count: number, batch: number): RawBatch[] {
  const spec = datasetFor(opts.dataset);
  if (spec.kind === 'generated') return generatedBatches(spec.open(ir, opts, 'test'), count, batch);
  const { test, testSplit } = spec.load({ ...userOptions(opts, bindInputs(ir)), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  return fixedBatches(ir, opts, count, batch, test, testSplit);
}

function generatedBatches(stream: TrainStream, count: number, batch: number): RawBatch[] {
  const out: RawBatch[] = [];
  for (let i = 0; i < count; i += batch) out.push(stream.next(Math.min(batch, count - i)));
  return out;
}

function fixedBatches(ir: IrProgram, opts: DataOptions, count: number, batch: number, set: ImageSet, split: SplitSpec | undefined): RawBatch[] {
  const out: RawBatch[] = [];
  const b = bindInputs(ir);
  checkPixels(set, b);
  const shared = opts.memory && sharedMemoryOf(ir, opts.memory, b);
  if (b.memory && !shared) {
    const sampler = new EpisodeSampler({
      set: set as LabelledImageSet,
      classes: opts.classes,
      shots: opts.shots,
      distractors: opts.distractors,
      split,
      seed: opts.seed + 7919,
      pixels: { fixed: opts.seed + 104729 },
    });
    for (let i = 0; i < count; i += batch) out.push(episodeInputs(b, sampler.next(Math.min(batch, count - i))));
    return out;
  }
  const sampler = new BatchSampler({ set, split, seed: opts.seed + 7919, pixels: { fixed: opts.seed + 104729 } });
  for (let i = 0; i < count; i += batch) out.push(plainInputs(b, sampler.next(Math.min(batch, count - i)), shared));
  return out;
}
