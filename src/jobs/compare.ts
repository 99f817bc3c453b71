/**
 * A comparison (`vmm compare`, the library's `compare()`): models, variants of a model, or
 * finished runs side by side, with the same data, seed and budget, evaluated the same way, in one
 * markdown table and plots on shared axes (./compare_report.ts), with the statistics of
 * ./compare_stats.ts.
 *
 *   variants of one file     hard, soft, control, or estimators (hard vs soft addressing is one
 *                            setting on the same file); a no-memory control is added
 *   several model files      each with its own estimator, the same budget
 *   run folders              runs trained elsewhere (e.g. in parallel), evaluated here
 *
 * Each variant is trained once per seed into OUT/<variant>[-s<seed>]; the folder layout makes a
 * comparison resumable: a run with summary.json is finished and kept, one without continues from
 * its checkpoint, and a run's saved evaluation that answers the same question is used again.
 *
 * The evaluation uses one seed for every run, so every run sees the same test targets with the
 * same nested memories: differences across memory sizes within a run and across runs at one size
 * are both paired (per-target differences, mean ± standard error).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { compileSource } from '../check/pipeline.ts';
import { InputError, RunError } from '../diagnostics/errors.ts';
import { estimatorKinds, estimatorSpec } from '../estimators/registry.ts';
import type { IrProgram } from '../ir/types.ts';
import { writeCompareReport, compareTable } from './compare_report.ts';
import { pairedVariants, summarize, type CompareEntry, type Estimate, type TrainSummary, type VariantSummary } from './compare_stats.ts';
import { EVAL_SEED, runEval, type EvalProgress, type EvalResult } from './evaluate_run.ts';
import { runConfig, type Refusal, type RunSettings } from './run_config.ts';
import { irOfRun, RunDir, type RunConfig } from './run_dir.ts';
import { trainLoop } from './train_loop.ts';

export type { CompareEntry, Estimate, TrainSummary, VariantSummary } from './compare_stats.ts';

/** What a comparison is asked: the variants, seeds, the runs' settings and the evaluation. */
export interface CompareOptions extends Partial<RunSettings> {
  /**
   * Variants of each model file: `hard`, `soft`, `control` (`none`) or an estimator's name.
   * Default: hard and soft for one file, each file's own estimator for several.
   */
  variants?: readonly string[];
  /** Seeds per variant: each variant trained once per seed (seed, seed + 1, ...). Default 3. */
  seeds?: number;
  /** The first seed. Default 1. */
  seed?: number;
  /** false leaves out the no-memory control (same networks, memory entries replaced by one learned entry). Default true. */
  control?: boolean;
  /** The output folder. Default runs/compare-<model> (one file) or runs/compare-models. */
  out?: string;
  /** Test episodes per configuration in the evaluation. Default 100. */
  evalEpisodes?: number;
  /** Importance samples in the evaluation. Default 200. */
  evalSamples?: number;
  /** Memory sizes for the evaluation. Default 1, 2, 4, 8, 16. */
  memorySizes?: string | readonly number[];
  /** Classes in memory for the NLL rows (default: 1 and 2, or 1 for one-class episodes). */
  classesList?: string | readonly number[];
  /** n-way 1-shot accuracy tasks (default: 5-way, or 2 x the training classes when fewer; none without a memory). */
  ways?: string | readonly number[];
  /**
   * Stops the comparison between steps (or evaluation batches): it rejects with the signal's
   * reason; every run keeps its checkpoint, and the same call again continues where it stopped.
   */
  signal?: AbortSignal;
  /** Called after every training step and evaluation batch of every run. */
  onProgress?: (p: CompareProgress) => void;
  /** Progress lines (what `vmm compare` prints on stderr). Default: none. */
  log?: (line: string) => void;
  /** Training progress bars and lines (the command line's). Default false. */
  progressBars?: boolean;
  /** How a refusal of the pipeline is thrown (the command line's: a usage error for a bad setting). */
  refuse?: (p: Refusal) => never;
}

/** Where a comparison is: a step of a run's training, or a batch of its evaluation. */
export type CompareProgress =
  | { stage: 'train'; run: string; variant: string; seed: number; step: number; steps: number; bound: number }
  | { stage: 'evaluate'; run: string; variant: string; seed: number; eval: EvalProgress };

/** A paired difference of two variants at one memory size (negative: the first has the lower NLL). */
export interface PairedDifference {
  variant: string;
  /** The variant it is compared with: the first variant that is not the control, or the control. */
  against: string;
  memory: number;
  difference: Estimate;
}

export interface CompareResult {
  /** The output folder: one folder per run, compare.md, compare.json and the plots. */
  out: string;
  /** Every run (one variant, one seed) with its training summary and evaluation. */
  entries: CompareEntry[];
  /** Per variant: NLL by memory size, accuracy, KL, as means over seeds with standard errors. */
  variants: VariantSummary[];
  /** At the largest memory size: each variant against the first non-control variant and against the control. */
  paired: PairedDifference[];
  /** The comparison as a markdown table (what `vmm compare` prints). */
  table: string;
}

/** A finished or running run's folder (it has config.json), as opposed to a model file. */
export function isRunDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory() && existsSync(join(p, 'config.json'));
}

const VARIANT_WORDS = ['hard', 'soft', 'control'];

/** Why a variant name is unknown, or undefined. */
export function variantProblem(v: string): string | undefined {
  if (estimatorSpec(v) || VARIANT_WORDS.includes(v) || v === 'none') return undefined;
  return `unknown variant '${v}' (expected hard, soft, control or an estimator: ${estimatorKinds().join(', ')})`;
}

function readSummary(run: string): TrainSummary {
  const p = join(run, 'summary.json');
  if (!existsSync(p)) throw new RunError(`${run} has no summary.json: it has not finished training (continue it with vmm train --resume ${run})`);
  const s = JSON.parse(readFileSync(p, 'utf8')) as Partial<TrainSummary> & { wallSeconds?: number };
  return { steps: s.steps ?? NaN, msPerStep: s.msPerStep ?? NaN, trainedSeconds: s.trainedSeconds ?? s.wallSeconds ?? NaN, ...(s.budgetSpent ? { budgetSpent: true } : {}) };
}

/** What the table needs of a run's training, from its metrics.jsonl (a run whose summary.json was never written). */
function summaryFromMetrics(dir: RunDir): TrainSummary {
  const train = dir.readMetrics().filter((m): m is { kind: 'train'; step: number; ms: number } => m.kind === 'train' && typeof m['step'] === 'number');
  const ms = train.map((m) => m.ms).filter((x) => typeof x === 'number');
  return { steps: train[train.length - 1]?.step ?? 0, msPerStep: ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : NaN, trainedSeconds: NaN };
}

/** The name of a run's variant, from its configuration: the same for runs trained here and runs given as folders. */
export function variantOf(config: RunConfig): string {
  const kind = config.train.estimator.kind;
  const how = config.train.control ? 'no-memory control' : kind === 'soft' ? 'soft attention' : `hard, ${kind}`;
  return `${basename(config.modelPath, '.vmm')} (${how})`;
}

/** The settings overrides of one variant. */
function variantOverrides(v: string, file: IrProgram): { estimator?: string; addressing?: string } {
  if (v === 'control' || v === 'none') return { addressing: 'none' };
  if (v === 'soft') return { addressing: 'soft' };
  if (v === 'hard') return file.train.estimator.kind === 'soft' ? { addressing: 'hard' } : { estimator: file.train.estimator.kind };
  return { estimator: v, addressing: 'hard' };
}

const list = (x: string | readonly number[] | undefined): string | undefined => (x === undefined || typeof x === 'string' ? x : x.join(','));

/** Rejects with the signal's reason when it was aborted. */
function checkAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/**
 * Trains every variant of every model file once per seed (or continues what an earlier call left),
 * evaluates every run the same way, and writes the report into the output folder.
 */
export async function compareRuns(targets: readonly string[], o: CompareOptions = {}): Promise<CompareResult> {
  if (!targets.length) throw new InputError('compare needs model files or run directories');
  for (const v of o.variants ?? []) {
    const problem = variantProblem(v);
    if (problem) throw new InputError(problem);
  }
  const log = o.log ?? (() => {});
  const files = targets.filter((t) => !isRunDir(t));
  const seeds = o.seeds ?? 3;
  const firstSeed = o.seed ?? 1;
  const single = targets.length === 1 && files.length === 1;
  const out = o.out ?? join('runs', `compare-${single ? basename(files[0]!, '.vmm') : 'models'}`);
  const evalEpisodes = o.evalEpisodes ?? 100;
  const evalSamples = o.evalSamples ?? 200;
  const memorySizes = list(o.memorySizes) ?? '1,2,4,8,16';
  const classesList = list(o.classesList);
  const ways = list(o.ways);
  // Check every file before anything trains.
  const loadedFiles = new Map(
    files.map((file) => {
      const text = readFileSync(file, 'utf8');
      const r = compileSource(text);
      const error = r.diagnostics.find((d) => d.severity === 'error');
      if (error || !r.ir) throw new RunError(`${file} has errors${error ? `: ${error.message}` : ''}`);
      return [file, { ir: r.ir, text }] as const;
    }),
  );
  mkdirSync(out, { recursive: true });
  const runs: { run: string; train?: TrainSummary }[] = [];
  let controlled = false;
  for (const t of targets) {
    if (isRunDir(t)) {
      runs.push({ run: t });
      continue;
    }
    const { ir: baseIr, text } = loadedFiles.get(t)!;
    const variants = [...(o.variants ?? (single ? ['hard', 'soft'] : [baseIr.train.estimator.kind]))];
    // "Memory helps" is measured against a control with the same networks and no memory: one per
    // comparison (the first file with a memory), unless asked for or refused explicitly.
    if (o.control !== false && !controlled && baseIr.memories.length && !variants.some((v) => v === 'control' || v === 'none')) variants.push('control');
    if (variants.some((v) => v === 'control' || v === 'none')) controlled = true;
    // One K for every variant of a file, so each sees the same number of samples per example.
    const givenK = o.overrides?.k;
    const k = givenK ?? Math.max(baseIr.train.estimator.k, 2);
    for (const v of variants) {
      for (let i = 0; i < seeds; i++) {
        checkAborted(o.signal);
        const seed = firstSeed + i;
        const name = `${single ? v : `${basename(t, '.vmm')}-${v}`}${seeds > 1 ? `-s${seed}` : ''}`;
        const runPath = join(out, name);
        // A finished run of an earlier, interrupted comparison is kept; an unfinished one continues.
        if (existsSync(join(runPath, 'summary.json'))) {
          log(`\n== ${name}: finished earlier (${runPath})`);
          runs.push({ run: runPath });
          continue;
        }
        const resume = isRunDir(runPath);
        const opened = resume ? RunDir.open(runPath) : undefined;
        if (opened?.dir.state === 'finished') {
          // Final weights but no summary (stopped between the two writes): the run is done; its summary from its log.
          log(`\n== ${name}: finished earlier (${runPath})`);
          const train = summaryFromMetrics(opened.dir);
          opened.dir.writeJson('summary.json', { ...train, finishedAt: new Date().toISOString() });
          runs.push({ run: runPath, train });
          continue;
        }
        log(`\n== ${name}${resume ? ' (continuing)' : ''}`);
        // A new run goes through the pipeline at the variant's settings; a run continued is its own program again.
        const settings: RunSettings = {
          ...o,
          checkpointEvery: o.checkpointEvery ?? 200,
          validSize: o.validSize ?? 256,
          overrides: { ...o.overrides, ...variantOverrides(v, baseIr), k: v === 'reinforce' ? (givenK ?? 1) : k },
          seed,
        };
        const fresh = opened ? undefined : runConfig(t, text, settings, o.refuse);
        const config = opened?.config ?? fresh!.config;
        const ir = fresh?.ir ?? irOfRun(config);
        const dir = opened?.dir ?? RunDir.create(runPath, config);
        // A continued run is written by this process alone, as `train --resume` holds it.
        if (opened) dir.lock();
        const variant = variantOf(config);
        const onStep = o.onProgress ? (step: number, bound: number) => o.onProgress!({ stage: 'train', run: runPath, variant, seed, step, steps: config.train.steps, bound }) : undefined;
        const train = await trainLoop(dir, config, ir, resume, { progress: o.progressBars ?? false, log, ...(o.signal ? { signal: o.signal } : {}), ...(onStep ? { onStep } : {}) }).finally(() => dir.release());
        // No summary for an interrupted run: summary.json marks a run the next invocation skips as finished.
        if (train.interrupted) {
          checkAborted(o.signal);
          throw new RunError(`interrupted while training ${name}; run the same command again to continue (finished runs are kept in ${out})`);
        }
        dir.writeJson('summary.json', { ...train, finishedAt: new Date().toISOString() });
        runs.push({ run: runPath, train });
      }
    }
  }
  const entries: CompareEntry[] = [];
  for (const r of runs) {
    checkAborted(o.signal);
    const { config } = RunDir.open(r.run);
    const variant = variantOf(config);
    const hasMemory = irOfRun(config).memories.length > 0;
    const reused = reusableEval(r.run, { evalSamples, evalEpisodes, memorySizes, ...(classesList !== undefined ? { classesList } : {}) });
    if (reused) log(`\n== ${variant}, seed ${config.seed}: using its evaluation in ${join(r.run, 'eval', 'eval.json')} (same samples, episodes and seed)`);
    else log(`\n== evaluating ${variant}, seed ${config.seed}`);
    const onProgress = o.onProgress ? (p: EvalProgress) => o.onProgress!({ stage: 'evaluate', run: r.run, variant, seed: config.seed, eval: p }) : undefined;
    const evalResult: EvalResult =
      reused ??
      (await runEval(r.run, {
        ...(o.dataDir ? { data: o.dataDir } : {}),
        samples: evalSamples,
        episodes: evalEpisodes,
        memorySizes,
        classesList: classesList ?? String(config.data.classes === 1 ? 1 : `1,${Math.min(2, config.data.classes)}`),
        ways: ways ?? (hasMemory ? String(Math.min(5, config.data.classes * 2)) : ''),
        large: '',
        seed: EVAL_SEED,
        quiet: o.log === undefined,
        ...(o.signal ? { signal: o.signal } : {}),
        ...(onProgress ? { onProgress } : {}),
      }).catch((e: unknown) => {
        // An abort stops the evaluation between batches (its partial results are kept): the caller's reason.
        checkAborted(o.signal);
        throw e;
      }));
    entries.push({ variant, seed: config.seed, run: r.run, train: r.train ?? readSummary(r.run), eval: evalResult });
  }
  if (!entries.some((e) => e.eval.control) && entries.some((e) => e.eval.nll.length)) log('\nnote: no no-memory control in this comparison: "memory helps" is not measured (add a control run, or leave out --no-control)');
  writeCompareReport(out, targets as string[], entries, { ...(o.minutes !== undefined ? { minutes: o.minutes } : {}), evalSamples, evalEpisodes });
  log(`\nwrote ${join(out, 'compare.md')} and plots`);
  const variants = summarize(entries);
  return { out, entries, variants, paired: pairedDifferences(variants), table: compareTable(entries) };
}

/** The table's paired columns: each variant against the first non-control variant and against the control, at the largest M. */
function pairedDifferences(vs: VariantSummary[]): PairedDifference[] {
  const Ms = [...new Set(vs.flatMap((v) => [...v.nll.keys()]))].sort((a, b) => a - b);
  const M = Ms[Ms.length - 1];
  if (M === undefined) return [];
  const ref = vs.find((v) => !v.control);
  const control = vs.find((v) => v.control);
  const out: PairedDifference[] = [];
  for (const v of vs) {
    for (const against of [ref, control]) {
      if (!against || against === v || (against === control && against === ref)) continue;
      const difference = pairedVariants(v, against, M);
      if (difference) out.push({ variant: v.variant, against: against.variant, memory: M, difference });
    }
  }
  return out;
}

/**
 * A run's saved evaluation (`vmm eval`, e.g. run in parallel beforehand) when it answers what
 * this comparison asks: the same importance samples, episodes and seed, and every requested
 * memory size in its C = 1 row. Its other cells are dropped from the table.
 */
function reusableEval(run: string, f: { evalSamples: number; evalEpisodes: number; memorySizes: string; classesList?: string }): EvalResult | undefined {
  const p = join(run, 'eval', 'eval.json');
  if (!existsSync(p)) return undefined;
  let e: EvalResult;
  try {
    e = JSON.parse(readFileSync(p, 'utf8')) as EvalResult;
  } catch {
    return undefined;
  }
  if (e.samples !== f.evalSamples || e.episodes !== f.evalEpisodes || e.seed !== EVAL_SEED || typeof e.parameters !== 'number') return undefined;
  const sizes = f.memorySizes.split(',').map((s) => Number(s.trim())).filter((n) => Number.isFinite(n));
  const C = Math.min(...(f.classesList ?? '1').split(',').map(Number));
  if (e.plainNll) return e;
  if (!sizes.every((M) => e.nll.some((c) => c.classes === C && c.memory === M && c.values))) return undefined;
  return { ...e, nll: e.nll.filter((c) => c.classes === C && sizes.includes(c.memory)) };
}
