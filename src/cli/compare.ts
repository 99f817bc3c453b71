/**
 * `vmm compare`: models, variants of a model, or finished runs side by side, with the same data,
 * seed and budget, evaluated the same way, in one markdown table and plots on shared axes.
 *
 *   vmm compare MODEL --variants vimco,soft          one file, several estimators (hard vs soft
 *                                                     addressing is one flag on the same file)
 *   vmm compare A.vmm B.vmm C.vmm --minutes 30       several memory kinds, each with its own
 *                                                     estimator, the same wall-clock budget
 *   vmm compare RUN_A RUN_B ...                      runs trained elsewhere (e.g. in parallel)
 *
 * The comparison itself (training, evaluation, statistics, the report and its resumable folder
 * layout) is the job of src/jobs/compare.ts, which the library exports as `compare()`; this file
 * turns the flags into its options and prints its table.
 */
import { compareRuns, isRunDir, variantProblem, type CompareEntry } from '../jobs/compare.ts';
import { RunError, UsageError } from './errors.ts';
import { loadModel, refuse } from './front_end.ts';
import { runSettings, type TrainFlags } from './run_config.ts';

export { isRunDir };

export interface CompareFlags extends TrainFlags {
  /** Results as JSON on stdout (printed by the command) instead of the table. */
  json?: boolean;
  /** Variants of each model file: estimators, or hard | soft | control (default: hard,soft for one file, each file's own estimator for several). */
  variants?: string;
  /** Seeds per variant (each variant trained once per seed; seed-level standard errors). */
  seeds: number;
  /** Commander's `--no-control`: false leaves out the no-memory control. */
  control?: boolean;
  evalEpisodes: number;
  evalSamples: number;
  memorySizes: string;
  /** Classes in memory for the NLL rows (default: 1 and 2, or 1 for one-class episodes). */
  classesList?: string;
  /** n-way 1-shot accuracy tasks (default: 5-way, or 2 x the training classes when fewer). */
  ways?: string;
}

export async function runCompare(targets: string[], f: CompareFlags): Promise<CompareEntry[]> {
  if (!targets.length) throw new UsageError('compare needs model files or run directories');
  const variants = f.variants?.split(',').map((v) => v.trim()).filter(Boolean);
  for (const v of variants ?? []) {
    const problem = variantProblem(v);
    if (problem) throw new UsageError(problem);
  }
  // Every file checked, its diagnostics printed, before anything trains.
  for (const file of targets.filter((t) => !isRunDir(t))) {
    const loaded = loadModel(file, { quietWarnings: true });
    if (!loaded.ok || !loaded.result.ir) throw new RunError(`${file} has errors`);
  }
  const { entries, table } = await compareRuns(targets, {
    ...runSettings(f),
    ...(variants ? { variants } : {}),
    seeds: f.seeds ?? 1,
    ...(f.control !== undefined ? { control: f.control } : {}),
    ...(f.out !== undefined ? { out: f.out } : {}),
    evalEpisodes: f.evalEpisodes,
    evalSamples: f.evalSamples,
    memorySizes: f.memorySizes,
    ...(f.classesList !== undefined ? { classesList: f.classesList } : {}),
    ...(f.ways !== undefined ? { ways: f.ways } : {}),
    ...(f.quiet ? {} : { log: (m: string) => process.stderr.write(m + '\n') }),
    progressBars: !f.quiet,
    refuse,
  });
  // With --json the command prints the results itself.
  if (!f.json) process.stdout.write(table + '\n');
  return entries;
}
