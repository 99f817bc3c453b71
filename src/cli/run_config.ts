/**
 * A run's configuration from a model file and the command-line flags: the file through the
 * pipeline (src/check/pipeline.ts) at the flags' settings (its `train { }` block, overridden by the
 * flags, src/check/settings.ts), plus the data and loop settings. Shared by `vmm train` and
 * `vmm compare`.
 */
import { resolve } from 'node:path';
import { isBuiltinDataset } from '../data/user_data.ts';
import { compileSource } from '../check/pipeline.ts';
import type { IrProgram } from '../ir/types.ts';
import type { BackendName } from '../runtime/backend.ts';
import type { RunConfig } from '../jobs/run_dir.ts';
import { RunError, UsageError } from './errors.ts';
import { refuse, settingOverrides } from './front_end.ts';
/** The step count of a run that trains until its time budget (`--minutes` without `--steps`) is spent. */
export const UNTIL_BUDGET = 1_000_000_000;

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
  distractors?: number;
  backend?: BackendName;
  quiet?: boolean;
}

/**
 * Resolves a model file and flags into a run configuration and the program it trains (the file's
 * train block, overridden by flags, with the addressing transform). The memory budget is left to
 * the caller, who knows the backend.
 */
export function configFor(modelPath: string, source: string, f: TrainFlags): { config: RunConfig; ir: IrProgram } {
  // Anything that is not a built-in name is a path to the user's data (checked when it is read);
  // it is stored absolute so that `--resume` works from another directory.
  const dataset = f.dataset === undefined ? undefined : isBuiltinDataset(f.dataset) ? f.dataset : resolve(f.dataset);
  if (f.validData !== undefined && (dataset === undefined || isBuiltinDataset(dataset))) {
    throw new UsageError(`--valid-data goes with --dataset PATH (a user's data set); the built-in data sets have their own validation split`);
  }
  // With a time budget and no step count, the budget alone decides when training ends.
  const flags = f.minutes !== undefined && f.steps === undefined ? { ...f, steps: UNTIL_BUDGET } : f;
  const r = compileSource(source, { settings: { overrides: settingOverrides(flags) }, budget: false });
  if (r.problem) refuse(r.problem);
  if (!r.compiled) throw new RunError(`${modelPath} has errors: ${r.diagnostics.find((d) => d.severity === 'error')?.message ?? 'unknown error'}`);
  const tuned = r.compiled;
  const ep = tuned.train.episodes;
  const steps = tuned.train.steps;
  const config: RunConfig = {
    version: 1,
    modelPath,
    source,
    train: tuned.train,
    data: {
      dataset: dataset ?? tuned.train.dataset,
      ...(f.data ? { dataDir: f.data } : {}),
      ...(f.validData !== undefined ? { valid: resolve(f.validData) } : {}),
      seed: f.seed,
      classes: f.classes ?? ep.classes,
      shots: f.shots ?? ep.shots,
      distractors: f.distractors ?? ep.distractors,
    },
    seed: f.seed,
    checkpointEvery: f.checkpointEvery,
    validEvery: f.validEvery ?? Math.max(1, Math.min(500, Math.floor(steps / 20))),
    validSize: f.validSize,
    ...(f.minutes !== undefined ? { minutes: f.minutes } : {}),
    createdAt: new Date().toISOString(),
  };
  return { config, ir: tuned };
}
