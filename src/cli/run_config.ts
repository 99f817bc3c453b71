/**
 * The flags of `vmm train` and `vmm compare` as a run's settings (src/jobs/run_config.ts, which
 * makes the run's configuration).
 */
import { isBuiltinDataset } from '../data/registry.ts';
import type { IrProgram } from '../ir/types.ts';
import { runConfig, type RunSettings } from '../jobs/run_config.ts';
import type { BackendName } from '../runtime/backend.ts';
import type { RunConfig } from '../jobs/run_dir.ts';
import { UsageError } from './errors.ts';
import { refuse, settingOverrides } from './front_end.ts';

/** The flags of `vmm train` and `vmm compare`; the estimators' own arguments (`--baseline`, ...) come beside them, read by name (./front_end.ts). */
export interface TrainFlags {
  data?: string;
  dataset?: string;
  validData?: string;
  estimator?: string;
  k?: number;
  addressing?: string;
  steps?: number;
  /** A wall-clock budget in minutes; without --steps the run trains until it is spent. */
  minutes?: number;
  batch?: number;
  lr?: number;
  seed: number;
  out?: string;
  resume?: string;
  checkpointEvery: number;
  validEvery?: number;
  validSize: number;
  classes?: number;
  shots?: number;
  minShots?: number;
  distractors?: number;
  memory?: string;
  backend?: BackendName;
  quiet?: boolean;
}

/**
 * Resolves a model file and flags into a run configuration and the program it trains
 * (src/jobs/run_config.ts); a setting the model cannot take is misuse of the command.
 */
export function configFor(modelPath: string, source: string, f: TrainFlags): { config: RunConfig; ir: IrProgram } {
  if (f.validData !== undefined && (f.dataset === undefined || isBuiltinDataset(f.dataset))) {
    throw new UsageError(`--valid-data goes with --dataset PATH (a user's data set); the built-in data sets have their own validation split`);
  }
  return runConfig(modelPath, source, runSettings(f), refuse);
}

/** The flags as the settings of a run. */
export function runSettings(f: TrainFlags): RunSettings {
  return {
    overrides: settingOverrides(f),
    ...(f.minutes !== undefined ? { minutes: f.minutes } : {}),
    ...(f.dataset !== undefined ? { dataset: f.dataset } : {}),
    ...(f.data ? { dataDir: f.data } : {}),
    ...(f.validData !== undefined ? { validData: f.validData } : {}),
    ...(f.memory !== undefined ? { memory: f.memory } : {}),
    ...(f.classes !== undefined ? { classes: f.classes } : {}),
    ...(f.shots !== undefined ? { shots: f.shots } : {}),
    ...(f.minShots !== undefined ? { minShots: f.minShots } : {}),
    ...(f.distractors !== undefined ? { distractors: f.distractors } : {}),
    seed: f.seed,
    checkpointEvery: f.checkpointEvery,
    ...(f.validEvery !== undefined ? { validEvery: f.validEvery } : {}),
    validSize: f.validSize,
  };
}
