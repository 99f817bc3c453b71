/**
 * `compare()` of the library: what `vmm compare` does, for TypeScript (src/jobs/compare.ts).
 *
 *   import { compare } from 'vmm';
 *   const r = await compare('models/vma_mnist.vmm', { variants: ['hard', 'soft'], seeds: 2, overrides: { steps: 200 } });
 *   for (const v of r.variants) console.log(v.variant, v.nll.get(16));   // { mean, se, over, n }
 *   console.log(r.paired);      // each variant against the first one and against the control
 */
import type { SelectOptions } from '../runtime/backend.ts';
import { compareRuns, type CompareOptions, type CompareResult } from '../jobs/compare.ts';
import { ensureBackend } from './library.ts';

export type { CompareEntry, CompareOptions, CompareProgress, CompareResult, Estimate, PairedDifference, TrainSummary, VariantSummary } from '../jobs/compare.ts';
export type { EvalProgress } from '../jobs/evaluate_run.ts';

/**
 * Trains the variants of a model (hard, soft, the no-memory control, estimators) or of several
 * model files once per seed, with the same data, seed and budget, evaluates every run on the
 * same test targets and memories, and writes the report (compare.md, compare.json, plots) into
 * `out`. Returns every run's evaluation, each variant's means over seeds with standard errors,
 * and the paired differences between variants. Run folders may be given instead of model files.
 * A call that stopped (an abort, a crash) continues where it left off when made again: finished
 * runs are kept, unfinished ones resume from their checkpoints.
 */
export async function compare(targets: string | readonly string[], o: CompareOptions & { backend?: SelectOptions } = {}): Promise<CompareResult> {
  const { backend, ...rest } = o;
  await ensureBackend(backend);
  return compareRuns(typeof targets === 'string' ? [targets] : targets, rest);
}
