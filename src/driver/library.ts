/**
 * The library API around `compile()` (src/index.ts): load a model with a backend chosen for you,
 * train it on a data set (built-in or your own) or on batches you make, read the bound, evaluate
 * it on held-out data, save and load its weights as safetensors, and sample from it; open a run
 * folder that `vmm train` wrote, and evaluate or classify with it.
 *
 *   import { load, train, evaluate, saveWeights, sample } from 'vmm';
 *   const model = await load(source);                        // compile + backend selection
 *   await train(model, { steps: 200, dataset: 'mnist' });    // or dataset: 'my_digits.npz'
 *   for await (const m of train(model, { steps: 100, signal })) console.log(m.bound);  // step by step
 *   console.log((await evaluate(model)).bound);              // held-out bound, nats
 *   await saveWeights(model, 'weights.safetensors');         // readable from NumPy / PyTorch
 *
 * Every function works on the `Trainer` that `compile` returns (or `openRun(dir).model`).
 */
import { readFileSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs-core';
import { readsSoft } from '../ir/addressing.ts';
import { hostRead } from '../kernels/readback.ts';
import { Rng } from '../random/rng.ts';
import { compile, type CompileOptions } from './compile.ts';
import { InputError, RunError } from '../diagnostics/errors.ts';
import { addPlate, alignTo } from '../lower/plates.ts';
import { mean } from '../lower/sites.ts';
import { runPrior } from '../lower/trace.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { currentBackend, selectBackend, type BackendInfo, type SelectOptions } from '../runtime/backend.ts';
import { checkVariables, restoreVariables, snapshotVariables } from '../runtime/checkpoint.ts';
import { type DataOptions, type TrainStream } from '../data/bind.ts';
import { trainStream, validationBatches } from '../data/source.ts';
import type { InputBatch } from '../lower/compile.ts';
import { decodeSafetensors, encodeSafetensors } from '../runtime/safetensors.ts';
import { validate } from '../jobs/train_loop.ts';
import { Trainer, type StepMetrics } from '../runtime/trainer.ts';
import { irOfRun, RunDir, runState, hasCheckpointFile, type RunConfig, type RunState } from '../jobs/run_dir.ts';
import { loadCheckpoint } from '../runtime/checkpoint.ts';
import { fewShotAccuracy, runEval, EVAL_SEED, QUICK_EVAL, type EvalOptions, type EvalResult } from '../jobs/evaluate_run.ts';
import { classifyImages, type QueryResult } from '../jobs/classify_run.ts';
import { bindInputs } from '../data/bind.ts';

export { type DataOptions, type TrainStream } from '../data/bind.ts';
export { trainStream, validationBatches } from '../data/source.ts';
export { encodeSafetensors, decodeSafetensors, SafetensorsError } from '../runtime/safetensors.ts';
export { DataError } from '../data/paths.ts';
export { loadUserDataset, type UserDataset } from '../data/user_data.ts';
export { parseNpy, parseNpz, encodeNpy, encodeNpz, type NpyArray } from '../data/npy.ts';
export { getDataSet, listDataSets, DATA_SOURCES } from '../data/download.ts';

export { InputError } from '../diagnostics/errors.ts';
export { EvalInterrupted, type EvalProgress, type EvalResult } from '../jobs/evaluate_run.ts';
export type { QueryResult, Choice } from '../jobs/classify_run.ts';
export type { RunConfig, RunState } from '../jobs/run_dir.ts';

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

/** Batches for `train`: a data source's stream, or any (async) iterator or iterable of batches. */
export type BatchSource = TrainStream | Iterator<InputBatch> | AsyncIterator<InputBatch> | Iterable<InputBatch> | AsyncIterable<InputBatch>;

export interface TrainOptions extends DataChoice {
  /** Training steps. */
  steps: number;
  /** Examples (episodes) per step; default: the model's `batch`. */
  batch?: number;
  /**
   * Batches you make instead of a data set (checked against the model's inputs): an iterator or
   * iterable, sync or async (a generator that reads files or a queue). An input used again across
   * steps (a fixed memory) may be a tensor you keep on the device (a DeviceInput): no upload per
   * step; vmm never disposes it.
   */
  stream?: BatchSource;
  /** Called after every step. */
  onStep?: (m: StepMetrics) => void;
  /**
   * Stops training between steps: the promise rejects (and iteration throws) with the signal's
   * reason, an `AbortError` unless you gave one; the model keeps the steps it took.
   */
  signal?: AbortSignal;
}

/**
 * A training in progress: await it for the last step's metrics, or iterate it with `for await`
 * for each step's. It starts when first awaited or iterated, and yields to the event loop after
 * every step, so a server stays responsive and a notebook can interrupt it.
 */
export interface TrainRun extends PromiseLike<StepMetrics>, AsyncIterable<StepMetrics> {
  catch<T = never>(onRejected: (reason: unknown) => T | PromiseLike<T>): Promise<StepMetrics | T>;
}

function batchSource(trainer: Trainer, o: TrainOptions, batch: number): () => Promise<InputBatch> {
  const source = o.stream ?? trainStream(trainer.ir, dataOptions(trainer, o));
  if ('state' in source && 'describe' in source) return async () => source.next(batch);
  const it: Iterator<InputBatch> | AsyncIterator<InputBatch> =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<InputBatch>)[Symbol.asyncIterator]()
      : Symbol.iterator in source
        ? (source as Iterable<InputBatch>)[Symbol.iterator]()
        : (source as Iterator<InputBatch> | AsyncIterator<InputBatch>);
  return async () => {
    const r = await it.next();
    if (r.done) throw new InputError('train: the stream of batches ended before the last step');
    return r.value;
  };
}

async function* trainSteps(trainer: Trainer, o: TrainOptions): AsyncGenerator<StepMetrics> {
  const next = batchSource(trainer, o, o.batch ?? trainer.ir.train.batch);
  for (let i = 0; i < o.steps; i++) {
    o.signal?.throwIfAborted();
    const b = await next();
    checkBatch(trainer, b);
    const m = await trainer.stepAsync(b);
    o.onStep?.(m);
    yield m;
    // Timers, I/O and an abort get their turn between steps.
    await yieldToEventLoop();
  }
}

/**
 * Trains for `steps` steps: `await train(...)` gives the metrics of the last step (its `bound` is
 * the training bound); `for await (const m of train(...))` gives every step's. See {@link TrainRun}.
 */
export function train(trainer: Trainer, o: TrainOptions): TrainRun {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new InputError(`train: steps must be a positive integer, got ${o.steps}`);
  let started = false;
  let done: Promise<StepMetrics> | undefined;
  const start = (): AsyncGenerator<StepMetrics> => {
    if (started) throw new InputError('train: this training was already started (await it or iterate it, once)');
    started = true;
    return trainSteps(trainer, o);
  };
  const run = (): Promise<StepMetrics> =>
    (done ??= (async () => {
      let last: StepMetrics | undefined;
      for await (const m of start()) last = m;
      return last!;
    })());
  return {
    then: (onFulfilled, onRejected) => run().then(onFulfilled, onRejected),
    catch: (onRejected) => run().catch(onRejected),
    [Symbol.asyncIterator]: () => start(),
  };
}

/**
 * {@link train} for scripts that want it to block: synchronous batches only (a data set or a
 * sync iterator), no yielding; returns the last step's metrics.
 */
export function trainSync(trainer: Trainer, o: Omit<TrainOptions, 'stream' | 'signal'> & { stream?: TrainStream | Iterator<InputBatch> }): StepMetrics {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new InputError(`train: steps must be a positive integer, got ${o.steps}`);
  const batch = o.batch ?? trainer.ir.train.batch;
  const source = o.stream ?? trainStream(trainer.ir, dataOptions(trainer, o));
  let last: StepMetrics | undefined;
  for (let i = 0; i < o.steps; i++) {
    let b: InputBatch;
    if ('state' in source) b = source.next(batch);
    else {
      const r = source.next();
      if (r.done) throw new InputError('train: the stream of batches ended before the last step');
      b = r.value;
    }
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
export async function evaluate(trainer: Trainer, o: EvaluateOptions = {}): Promise<{ bound: number; examples: number }> {
  const examples = o.examples ?? 256;
  const batches = validationBatches(trainer.ir, dataOptions(trainer, o, 1), examples, Math.min(examples, trainer.ir.train.batch));
  return { bound: await validate(trainer, batches, o.seed ?? 12345), examples };
}

/**
 * Saves the model's weights as safetensors (tensor names are the model's variable names, e.g.
 * `net/enc/0/w`; the model name and training step are in the metadata). Written atomically.
 */
export async function saveWeights(trainer: Trainer, path: string): Promise<void> {
  const bytes = encodeSafetensors(await snapshotVariables(trainer.model.variables), {
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
  /** `'tensor'`: a tf.Tensor2D [count, D] on the backend (yours to dispose) instead of host arrays. */
  as?: 'arrays' | 'tensor';
}

/**
 * Generates from the model's prior: for each of `count` examples (with a memory from held-out
 * episodes, for memory models), the mean of the observed variable, [count, D] in [0, 1].
 */
export function sample(trainer: Trainer, o: SampleOptions & { as: 'tensor' }): tf.Tensor2D;
export function sample(trainer: Trainer, o?: SampleOptions & { as?: 'arrays' }): { data: Float32Array; shape: [number, number] };
export function sample(trainer: Trainer, o: SampleOptions = {}): { data: Float32Array; shape: [number, number] } | tf.Tensor2D {
  const count = o.count ?? 8;
  const ir = trainer.ir;
  const raw = validationBatches(ir, dataOptions(trainer, o, 1), count, count)[0]!;
  const obs = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!.name;
  const soft = readsSoft(ir);
  const rng = new Rng(o.seed ?? 1);
  const out = tf.tidy(() => {
    const inputs = trainer.model.inputs(raw);
    const { observed } = runPrior(ir, inputs, trainer.model.applyNet, { k: 1, soft, rng });
    return alignTo(addPlate(mean(observed.get(obs)!), 'sample', 1), ['sample', 'batch'], undefined, { sample: 1, batch: count });
  });
  if (o.as === 'tensor') {
    const t = tf.reshape(out, [count, -1]) as tf.Tensor2D;
    out.dispose();
    return t;
  }
  let data: Float32Array;
  try {
    data = Float32Array.from(hostRead(out, 'sample', "ask for `as: 'tensor'` and read it with `await t.data()`") as Float32Array);
  } finally {
    out.dispose();
  }
  return { data, shape: [count, data.length / count] };
}

/** A run folder that `vmm train` wrote, opened: its settings, metrics and a model with its weights. */
export interface OpenedRun {
  path: string;
  config: RunConfig;
  /** 'new' (no weights yet), 'has checkpoint' (resumable) or 'finished'. */
  state: RunState;
  /** The run's model with its final weights (else its latest checkpoint's, with the optimizer state: `train` continues it). */
  model: Trainer;
  /** Which weights were loaded: the final/ or checkpoint/ folder. */
  weights: string;
  /** The records of metrics.jsonl (training and validation figures by step). */
  metrics(): Record<string, unknown>[];
}

/** Opens a run folder (see {@link OpenedRun}); a folder with no weights yet is a RunError. */
export async function openRun(path: string, o: { backend?: SelectOptions } = {}): Promise<OpenedRun> {
  await ensureBackend(o.backend);
  const { dir, config } = RunDir.open(path);
  const state = runState(path);
  const final = hasCheckpointFile(dir.finalPath);
  if (!final && !hasCheckpointFile(dir.checkpointPath)) throw new RunError(`${path} has no weights yet (it never reached its first checkpoint)`);
  const model = new Trainer(irOfRun(config), config.seed);
  const weights = final ? dir.finalPath : dir.checkpointPath;
  try {
    const meta = loadCheckpoint(weights, model.model.variables, final ? undefined : model.optimizer) as { trainer?: Parameters<Trainer['setState']>[0] } | undefined;
    if (meta?.trainer) model.setState(meta.trainer);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { path, config, state, model, weights, metrics: () => dir.readMetrics() };
}

export interface FewShotOptions extends Pick<DataChoice, 'dataset' | 'dataDir' | 'valid'> {
  /** Classes per episode (n-way). Default 5. */
  ways?: number;
  /** Examples of each class in memory. Default 1. */
  shots?: number;
  /** Test episodes (one target each). Default 200. */
  episodes?: number;
  seed?: number;
}

/**
 * n-way k-shot classification accuracy on held-out classes of the data set: each target is
 * assigned the memory entry argmax q(a | x, memory); correct when that entry has its class. Mean
 * and standard error over the episodes (the figure of `vmm eval --ways`).
 */
export async function evaluateFewShot(trainer: Trainer, o: FewShotOptions = {}): Promise<{ accuracy: number; se: number; episodes: number; ways: number; shots: number }> {
  const ways = o.ways ?? 5;
  const shots = o.shots ?? 1;
  const d = dataOptions(trainer, o, 1);
  const r = await fewShotAccuracy(trainer.ir, trainer.model, d, { ways, shots, episodes: o.episodes ?? 200, seed: o.seed ?? EVAL_SEED });
  return { ...r, ways, shots };
}

/** The full evaluation of `vmm eval` on a run folder (report written to `out`, default RUN/eval); `quick` as `--quick`. */
export async function evaluateRun(path: string, o: Partial<EvalOptions> & { backend?: SelectOptions } = {}): Promise<EvalResult> {
  const { backend, ...rest } = o;
  await ensureBackend(backend);
  return runEval(path, {
    samples: o.quick ? QUICK_EVAL.samples : 1000,
    episodes: o.quick ? QUICK_EVAL.episodes : 200,
    memorySizes: '1,2,3,4,5,10,19',
    classesList: '1,2',
    ways: '5,20',
    large: '100,500,2500',
    seed: EVAL_SEED,
    quiet: true,
    ...rest,
  });
}

/** Images for {@link classify}: flat [N * D] values in [0, 1] (binary for the shipped models), or a tensor. */
export type Images = Float32Array | { data: Float32Array; shape: readonly number[] } | tf.Tensor;

async function flatImages(x: Images): Promise<Float32Array> {
  if (x instanceof Float32Array) return x;
  if (x instanceof tf.Tensor) return (await x.data()) as Float32Array;
  return x.data;
}

/**
 * Few-shot classification with a memory model: for each query, the memory entry argmax
 * q(a | x, memory), its probability and the `top` most probable (as `vmm classify`, on images
 * you already have in memory).
 */
export async function classify(trainer: Trainer, o: { memory: Images; queries: Images; top?: number; labels?: readonly string[]; seed?: number }): Promise<QueryResult[]> {
  const D = bindInputs(trainer.ir).dataSize;
  const memory = await flatImages(o.memory);
  const queries = await flatImages(o.queries);
  if (memory.length % D || queries.length % D) throw new InputError(`classify: images must have ${D} values each (${trainer.ir.name}'s data)`);
  return classifyImages(trainer.ir, trainer.model, memory, queries, { top: o.top ?? 3, seed: o.seed ?? EVAL_SEED, ...(o.labels ? { labels: o.labels } : {}) });
}
