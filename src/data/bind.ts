/**
 * What a data set hands a model: batches of host arrays named after the model's inputs. Which
 * `data` input receives the images and which `memory` the episode's support set is read off the IR
 * here, once, for every data set of the registry (./registry.ts).
 */
import { RunError } from '../diagnostics/errors.ts';
import type { IrProgram } from '../ir/types.ts';
import type { EpisodeBatch } from './episodes.ts';

/**
 * One input of a batch as plain numbers: data [B, ...], a memory [B, M, ...]. The lowering's
 * `RawInput` (src/lower/compile.ts) has this shape; it is written out here because the data sets
 * sit below the lowering in the layers, and a batch made here is one the lowering takes.
 */
export interface HostInput {
  name: string;
  data: Float32Array;
  /** Full tensor shape including the batch axis (absent for a memory shared by the batch). */
  shape: number[];
  plates: 'batch'[];
}

export interface RawBatch {
  /** Host arrays: what the data sets make (a library caller may pass the lowering's DeviceInputs instead). */
  inputs: HostInput[];
  /** Present for episodic batches: classes of memory entries, matches, for accuracy metrics. */
  episode?: EpisodeBatch;
}

/**
 * A built-in data set (a name of the registry, ./registry.ts) or the path of a user's data: a
 * `.npy`/`.npz` file or a folder of PNGs with one sub-folder per class (./user_data.ts).
 */
export type DatasetName = string;

export interface DataOptions {
  dataset: DatasetName;
  dataDir?: string;
  /** A user's data set only: a second file or folder with the validation images. */
  valid?: string;
  seed: number;
  classes: number;
  shots: number;
  /** Training only: each batch draws its shots uniformly from minShots .. shots (absent: always `shots`). */
  minShots?: number;
  distractors: number;
  /**
   * One memory file shared by every example instead of few-shot episodes (./shared_memory.ts;
   * `vmm train --memory FILE`), stored absolute, with the SHA-256 it had when the run began.
   */
  memory?: { path: string; sha256: string };
}

/** A stream of training batches that can be saved and restored with a checkpoint. */
export interface TrainStream {
  next(batch: number): RawBatch;
  state(): unknown;
  setState(s: unknown): void;
  describe: string;
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

/** An episode as the model's inputs: the targets to its data input, the support set to its memory. */
export function episodeInputs(b: Binding, e: EpisodeBatch): RawBatch {
  return {
    inputs: [
      { name: b.data, data: e.targets, shape: [e.batch, e.pixels], plates: ['batch'] },
      { name: b.memory!, data: e.memory, shape: [e.batch, e.memorySize, e.pixels], plates: ['batch'] },
    ],
    episode: e,
  };
}
