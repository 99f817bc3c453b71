/**
 * A run's configuration from a model's source and its settings: the source through the pipeline
 * (src/check/pipeline.ts) at the overridden settings (its `train { }` block, overridden as
 * src/check/settings.ts checks), plus the data and loop settings that a run folder keeps. Shared
 * by `vmm train`, `vmm compare` and the library's `compare()`.
 */
import { resolve } from 'node:path';
import { compileSource, type PipelineResult } from '../check/pipeline.ts';
import { SettingsError, type SettingOverrides } from '../check/settings.ts';
import { isBuiltinDataset, isGenerated } from '../data/registry.ts';
import { memoryFileHash } from '../data/shared_memory.ts';
import { InputError, RunError } from '../diagnostics/errors.ts';
import type { IrProgram } from '../ir/types.ts';
import type { RunConfig } from './run_dir.ts';

/** The step count of a run that trains until its time budget (`minutes` without `steps`) is spent. */
export const UNTIL_BUDGET = 1_000_000_000;

/** Everything a run is made with beside its model. */
export interface RunSettings {
  /** The settings of the model's train block that are overridden (estimator, k, addressing, lr, batch, steps). */
  overrides?: SettingOverrides;
  /** A wall-clock budget in minutes; without `overrides.steps` the run trains until it is spent. */
  minutes?: number;
  /** A registered data set, or a path to the user's data (stored absolute). Default: the model's. */
  dataset?: string;
  /** Data directory of the downloaded sets. */
  dataDir?: string;
  /** With a path as `dataset`: a second file or folder of validation images. */
  validData?: string;
  /** One memory file that every example addresses, instead of few-shot episodes (src/data/shared_memory.ts). */
  memory?: string;
  classes?: number;
  shots?: number;
  /** The fewest shots of a training batch (each draws from minShots .. shots); default the train block's. */
  minShots?: number;
  distractors?: number;
  seed: number;
  checkpointEvery: number;
  /** Steps between validations; default steps/20, at most 500. */
  validEvery?: number;
  validSize: number;
}

/** A refusal of the pipeline after the front end: a setting the model cannot take, or a model too big. */
export type Refusal = NonNullable<PipelineResult['problem']>;

function refuseProblem(problem: Refusal): never {
  throw problem.stage === 'settings' ? new SettingsError(problem.message) : new RunError(problem.message);
}

/**
 * Resolves a model's source and settings into a run configuration and the program it trains (the
 * train block, overridden, with the addressing transform). The memory budget is left to the
 * caller, who knows the backend; `refuse` turns a refusal into the caller's error.
 */
export function runConfig(modelPath: string, source: string, s: RunSettings, refuse: (p: Refusal) => never = refuseProblem): { config: RunConfig; ir: IrProgram } {
  // Anything that is not a registered name is a path to the user's data (checked when it is read);
  // it is stored absolute so that a run can be continued from another directory.
  const dataset = s.dataset === undefined ? undefined : isBuiltinDataset(s.dataset) ? s.dataset : resolve(s.dataset);
  if (s.validData !== undefined && (dataset === undefined || isBuiltinDataset(dataset))) {
    throw new InputError('validData goes with a path as the data set (a user\'s data set); the built-in data sets have their own validation split');
  }
  // With a time budget and no step count, the budget alone decides when training ends.
  const overrides = s.minutes !== undefined && s.overrides?.steps === undefined ? { ...s.overrides, steps: UNTIL_BUDGET } : (s.overrides ?? {});
  const r = compileSource(source, { settings: { overrides }, budget: false });
  if (r.problem) refuse(r.problem);
  if (!r.compiled) throw new RunError(`${modelPath} has errors: ${r.diagnostics.find((d) => d.severity === 'error')?.message ?? 'unknown error'}`);
  const tuned = r.compiled;
  const memory = s.memory === undefined ? undefined : sharedMemorySetting(s.memory, tuned, dataset ?? tuned.train.dataset);
  const ep = tuned.train.episodes;
  const steps = tuned.train.steps;
  const shots = s.shots ?? ep.shots;
  if (s.minShots !== undefined && s.minShots > shots) throw new InputError(`--min-shots ${s.minShots} exceeds the ${shots} shots per class: each batch draws its shots from min-shots .. shots`);
  // A train block's min_shots above a smaller --shots: every batch then has --shots.
  const minShots = Math.min(s.minShots ?? ep.minShots ?? shots, shots);
  const config: RunConfig = {
    version: 1,
    modelPath,
    source,
    train: tuned.train,
    data: {
      dataset: dataset ?? tuned.train.dataset,
      ...(s.dataDir ? { dataDir: s.dataDir } : {}),
      ...(s.validData !== undefined ? { valid: resolve(s.validData) } : {}),
      ...(memory ? { memory } : {}),
      seed: s.seed,
      classes: s.classes ?? ep.classes,
      shots,
      ...(minShots < shots ? { minShots } : {}),
      distractors: s.distractors ?? ep.distractors,
    },
    seed: s.seed,
    checkpointEvery: s.checkpointEvery,
    validEvery: s.validEvery ?? Math.max(1, Math.min(500, Math.floor(steps / 20))),
    validSize: s.validSize,
    ...(s.minutes !== undefined ? { minutes: s.minutes } : {}),
    createdAt: new Date().toISOString(),
  };
  return { config, ir: tuned };
}

/** A memory file as a run keeps it: absolute, with its hash; refused where the model or data set cannot take one. */
function sharedMemorySetting(path: string, ir: IrProgram, dataset: string): { path: string; sha256: string } {
  if (!ir.memories.length) throw new InputError(`--memory ${path}: ${ir.name} has no memory input to give it to`);
  if (isGenerated(dataset)) throw new InputError(`--memory ${path}: the data set ${dataset} generates its own memories`);
  if (ir.train.control) throw new InputError(`--memory ${path}: the no-memory control reads no memory`);
  const abs = resolve(path);
  return { path: abs, sha256: memoryFileHash(abs) };
}
