/**
 * The library API around `compile()` (src/index.ts): load a model with a backend chosen for you,
 * train it on a data set (built-in or your own) or on batches you make, read the bound, evaluate
 * it on held-out data, save and load its weights as safetensors, and sample from it.
 *
 *   import { load, train, evaluate, saveWeights, sample } from 'vmm';
 *   const model = await load(source);                  // compile + backend selection
 *   train(model, { steps: 200, dataset: 'mnist' });    // or dataset: 'my_digits.npz'
 *   console.log(evaluate(model).bound);                // held-out bound, nats
 *   saveWeights(model, 'weights.safetensors');         // readable from NumPy / PyTorch
 *
 * Every function works on the `Trainer` that `compile` returns.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random/rng.ts';
import { compile, type CompileOptions } from './compile.ts';
import { InputError } from '../diagnostics/errors.ts';
import { addPlate, alignTo } from '../lower/plates.ts';
import { mean } from '../lower/sites.ts';
import { runPrior } from '../lower/trace.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { currentBackend, selectBackend, type BackendInfo, type SelectOptions } from '../runtime/backend.ts';
import { checkVariables, restoreVariables, snapshotVariables } from '../runtime/checkpoint.ts';
import { trainStream, validationBatches, type DataOptions, type TrainStream } from '../runtime/data_source.ts';
import type { InputBatch } from '../lower/compile.ts';
import { decodeSafetensors, encodeSafetensors } from '../runtime/safetensors.ts';
import { validate } from '../runtime/train_loop.ts';
import type { StepMetrics, Trainer } from '../runtime/trainer.ts';

export { trainStream, validationBatches, type DataOptions, type TrainStream } from '../runtime/data_source.ts';
export { encodeSafetensors, decodeSafetensors, SafetensorsError } from '../runtime/safetensors.ts';
export { DataError } from '../data/paths.ts';
export { loadUserDataset, type UserDataset } from '../data/user_data.ts';
export { parseNpy, parseNpz, encodeNpy, encodeNpz, type NpyArray } from '../data/npy.ts';
export { getDataSet, listDataSets, DATA_SOURCES } from '../data/download.ts';

export { InputError } from '../diagnostics/errors.ts';

/** Selects a backend (native TensorFlow, else wasm, else cpu) unless one is already selected. */
export async function ensureBackend(opts: SelectOptions = {}): Promise<BackendInfo> {
  return currentBackend() ?? selectBackend({ log: () => {}, ...opts });
}

/** `compile()` after {@link ensureBackend}: a trainer ready to train, from a .vmm source string. */
export async function load(source: string, options: CompileOptions & { backend?: SelectOptions } = {}): Promise<Trainer> {
  await ensureBackend(options.backend);
  return compile(source, options);
}

/** Where training data comes from: a data set (as on the command line) or a stream of batches. */
export interface DataChoice {
  /** `mnist`, `omniglot`, `binarized_mnist`, `synthetic`, or a path (.npy, .npz, PNG folder). Default: the model's. */
  dataset?: string;
  /** A second file or folder with validation images (user data sets only). */
  valid?: string;
  /** Data directory of the built-in sets (default: $VMM_DATA, the cache, ../shared/data). */
  dataDir?: string;
  /** Few-shot episodes (models with a memory); default: the model's `episodes(...)`. */
  classes?: number;
  shots?: number;
  distractors?: number;
  seed?: number;
}

/**
 * The data options for a trainer's model. The seed defaults to the trainer's for training
 * streams, and to 1 for held-out data, so that evaluations of two models see the same examples.
 */
export function dataOptions(trainer: Trainer, d: DataChoice = {}, defaultSeed = trainer.seed): DataOptions {
  const ep = trainer.ir.train.episodes;
  return {
    dataset: d.dataset ?? trainer.ir.train.dataset,
    ...(d.dataDir !== undefined ? { dataDir: d.dataDir } : {}),
    ...(d.valid !== undefined ? { valid: d.valid } : {}),
    seed: d.seed ?? defaultSeed,
    classes: d.classes ?? ep.classes,
    shots: d.shots ?? ep.shots,
    distractors: d.distractors ?? ep.distractors,
  };
}

/** The model's inputs that a batch must provide (its `data` and `memory` declarations). */
export function modelInputs(trainer: Trainer): string[] {
  return [...trainer.ir.data.map((d) => d.name), ...trainer.ir.memories.map((m) => m.name)];
}

/** Checks a batch's input names against the model's; throws an {@link InputError} listing them. */
export function checkBatch(trainer: Trainer, batch: InputBatch): void {
  trainer.model.checkInputs(batch);
}

export interface TrainOptions extends DataChoice {
  /** Training steps. */
  steps: number;
  /** Examples (episodes) per step; default: the model's `batch`. */
  batch?: number;
  /**
   * Batches you make instead of a data set (checked against the model's inputs). An input used
   * again across steps (a fixed memory) may be a tensor you keep on the device (a DeviceInput):
   * no upload per step; vmm never disposes it.
   */
  stream?: TrainStream | Iterator<InputBatch>;
  /** Called after every step. */
  onStep?: (m: StepMetrics) => void;
}

/** Trains for `steps` steps; returns the metrics of the last one (its `bound` is the training bound). */
export function train(trainer: Trainer, o: TrainOptions): StepMetrics {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new InputError(`train: steps must be a positive integer, got ${o.steps}`);
  const batch = o.batch ?? trainer.ir.train.batch;
  const source = o.stream ?? trainStream(trainer.ir, dataOptions(trainer, o));
  const next = (): InputBatch => {
    if ('state' in source) return source.next(batch);
    const r = source.next();
    if (r.done) throw new InputError('train: the stream of batches ended before the last step');
    return r.value;
  };
  let last: StepMetrics | undefined;
  for (let i = 0; i < o.steps; i++) {
    const b = next();
    checkBatch(trainer, b);
    last = trainer.step(b);
    o.onStep?.(last);
  }
  return last!;
}

export interface EvaluateOptions extends DataChoice {
  /** Held-out examples (episodes). Default 256. */
  examples?: number;
}

/** The mean importance-weighted bound on held-out data, in nats (higher is better). */
export function evaluate(trainer: Trainer, o: EvaluateOptions = {}): { bound: number; examples: number } {
  const examples = o.examples ?? 256;
  const batches = validationBatches(trainer.ir, dataOptions(trainer, o, 1), examples, Math.min(examples, trainer.ir.train.batch));
  return { bound: validate(trainer, batches, o.seed ?? 12345), examples };
}

/**
 * Saves the model's weights as safetensors (tensor names are the model's variable names, e.g.
 * `net/enc/0/w`; the model name and training step are in the metadata). Written atomically.
 */
export function saveWeights(trainer: Trainer, path: string): void {
  const bytes = encodeSafetensors(snapshotVariables(trainer.model.variables), {
    format: 'vmm-weights',
    model: trainer.ir.name,
    step: String(trainer.stepCount),
  });
  writeFileAtomicSync(path, bytes);
}

/** Loads weights saved by {@link saveWeights} (or any safetensors file with the same names and shapes). */
export function loadWeights(trainer: Trainer, path: string): void {
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(path)), path);
  checkVariables(trainer.model.variables, tensors, path);
  restoreVariables(trainer.model.variables, tensors, path);
}

export interface SampleOptions extends DataChoice {
  /** Examples (episodes: memories drawn from held-out data) to generate for. Default 8. */
  count?: number;
}

/**
 * Generates from the model's prior: for each of `count` examples (with a memory from held-out
 * episodes, for memory models), the mean of the observed variable, [count, D] in [0, 1].
 */
export function sample(trainer: Trainer, o: SampleOptions = {}): { data: Float32Array; shape: [number, number] } {
  const count = o.count ?? 8;
  const ir = trainer.ir;
  const raw = validationBatches(ir, dataOptions(trainer, o, 1), count, count)[0]!;
  const obs = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!.name;
  const soft = ir.train.estimator.kind === 'soft';
  const rng = new Rng(o.seed ?? 1);
  const out = tf.tidy(() => {
    const inputs = trainer.model.inputs(raw);
    const { observed } = runPrior(ir, inputs, trainer.model.applyNet, { k: 1, soft, rng });
    return alignTo(addPlate(mean(observed.get(obs)!), 'sample', 1), ['sample', 'batch'], undefined, { sample: 1, batch: count });
  });
  const data = Float32Array.from(out.dataSync() as Float32Array);
  out.dispose();
  return { data, shape: [count, data.length / count] };
}
