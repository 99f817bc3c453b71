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
 * The evaluation uses one seed for every run, so every run sees the same test targets with the
 * same nested memories: differences across memory sizes within a run and across runs at one size
 * are both paired (per-target differences, mean ± standard error).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';
import { configFor, type TrainFlags } from './run_config.ts';
import { loadModel } from './front_end.ts';
import { estimatorKinds, estimatorSpec } from '../estimators/registry.ts';
import { RunError, UsageError } from './errors.ts';
import { markdownTable } from '../report/markdown.ts';
import { lineChart } from '../report/svg.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { RunDir, irOfRun } from '../runtime/run_dir.ts';
import { trainLoop } from '../runtime/train_loop.ts';
import { EVAL_SEED, meanSe, runEval, type EvalResult, type NllCell } from '../runtime/evaluate_run.ts';

export interface CompareFlags extends TrainFlags {
  /** Results as JSON on stdout (printed by the command) instead of the table. */
  json?: boolean;
  /** Estimators for each model file (default: vimco,soft for one file, each file's own for several). */
  variants?: string;
  evalEpisodes: number;
  evalSamples: number;
  memorySizes: string;
  /** Classes in memory for the NLL rows (default: 1 and 2, or 1 for one-class episodes). */
  classesList?: string;
  /** n-way 1-shot accuracy tasks (default: 5-way, or 2 x the training classes when fewer). */
  ways?: string;
}

/** What the table needs of a run's training: from this invocation or the run's summary.json. */
export interface TrainSummary {
  steps: number;
  msPerStep: number;
  /** Seconds of training over all invocations of the run. */
  trainedSeconds: number;
  budgetSpent?: boolean;
}

export interface CompareEntry {
  /** The row's name: the variant for one model, else "model (estimator)". */
  variant: string;
  run: string;
  train: TrainSummary;
  eval: EvalResult;
}

/** A finished or running run's folder (it has config.json), as opposed to a model file. */
export function isRunDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory() && existsSync(join(p, 'config.json'));
}

function readSummary(run: string): TrainSummary {
  const p = join(run, 'summary.json');
  if (!existsSync(p)) throw new RunError(`${run} has no summary.json: it has not finished training (continue it with vmm train --resume ${run})`);
  const s = JSON.parse(readFileSync(p, 'utf8')) as Partial<TrainSummary> & { wallSeconds?: number };
  return { steps: s.steps ?? NaN, msPerStep: s.msPerStep ?? NaN, trainedSeconds: s.trainedSeconds ?? s.wallSeconds ?? NaN, ...(s.budgetSpent ? { budgetSpent: true } : {}) };
}

export async function runCompare(targets: string[], f: CompareFlags): Promise<CompareEntry[]> {
  if (!targets.length) throw new UsageError('compare needs model files or run directories');
  const files = targets.filter((t) => !isRunDir(t));
  const variantsGiven = f.variants?.split(',').map((v) => v.trim()).filter(Boolean);
  for (const v of variantsGiven ?? []) {
    if (!estimatorSpec(v)) throw new UsageError(`unknown variant '${v}' (expected ${estimatorKinds().join(', ')})`);
  }
  const single = targets.length === 1 && files.length === 1;
  const out = f.out ?? join('runs', `compare-${single ? basename(files[0]!, '.vmm') : 'models'}`);
  const log = (m: string) => {
    if (!f.quiet) process.stderr.write(m + '\n');
  };
  // Check every file before anything trains.
  const loadedFiles = new Map(
    files.map((file) => {
      const loaded = loadModel(file, { quietWarnings: true });
      if (!loaded.ok || !loaded.result.ir) throw new RunError(`${file} has errors`);
      return [file, { ir: loaded.result.ir, text: loaded.src.text }] as const;
    }),
  );
  mkdirSync(out, { recursive: true });
  const runs: { variant: string; run: string; train?: TrainSummary }[] = [];
  for (const t of targets) {
    if (isRunDir(t)) {
      const { config } = RunDir.open(t);
      runs.push({ variant: `${basename(config.modelPath, '.vmm')} (${config.train.estimator.kind})`, run: t });
      continue;
    }
    const { ir: baseIr, text } = loadedFiles.get(t)!;
    const variants = variantsGiven ?? (single ? ['vimco', 'soft'] : [baseIr.train.estimator.kind]);
    // One K for every variant of a file, so each sees the same number of samples per example.
    const k = f.k ?? Math.max(baseIr.train.estimator.k, 2);
    for (const v of variants) {
      const name = single ? v : `${basename(t, '.vmm')}-${v}`;
      log(`\n== ${name}`);
      const config = configFor(t, baseIr, text, { ...f, estimator: v, k: v === 'reinforce' ? (f.k ?? 1) : k, out: undefined });
      const ir = { ...baseIr, train: config.train };
      const runPath = join(out, name);
      const dir = RunDir.create(runPath, config);
      const train = await trainLoop(dir, config, ir, false, { progress: !f.quiet, log }).finally(() => dir.release());
      dir.writeJson('summary.json', { ...train, finishedAt: new Date().toISOString() });
      if (train.interrupted) throw new RunError(`interrupted while training ${name}; the finished runs are in ${out}`);
      runs.push({ variant: single ? v : `${basename(t, '.vmm')} (${v})`, run: runPath, train });
    }
  }
  const entries: CompareEntry[] = [];
  for (const r of runs) {
    const { config } = RunDir.open(r.run);
    const hasMemory = irOfRun(config).memories.length > 0;
    const reused = reusableEval(r.run, f);
    if (reused) log(`\n== ${r.variant}: using its evaluation in ${join(r.run, 'eval', 'eval.json')} (same samples, episodes and seed)`);
    else log(`\n== evaluating ${r.variant}`);
    const evalResult = reused ?? await runEval(r.run, {
      ...(f.data ? { data: f.data } : {}),
      samples: f.evalSamples,
      episodes: f.evalEpisodes,
      memorySizes: f.memorySizes,
      classesList: f.classesList ?? String(config.data.classes === 1 ? 1 : `1,${Math.min(2, config.data.classes)}`),
      ways: f.ways ?? (hasMemory ? String(Math.min(5, config.data.classes * 2)) : ''),
      large: '',
      seed: EVAL_SEED,
      quiet: f.quiet ?? false,
    });
    entries.push({ variant: r.variant, run: r.run, train: r.train ?? readSummary(r.run), eval: evalResult });
  }
  writeCompareReport(out, targets, entries, f);
  log(`\nwrote ${join(out, 'compare.md')} and plots`);
  // With --json the command prints the results itself.
  if (!f.json) process.stdout.write(compareTable(entries) + '\n');
  return entries;
}

/**
 * A run's saved evaluation (`vmm eval`, e.g. run in parallel beforehand) when it answers what
 * this comparison asks: the same importance samples, episodes and seed, and every requested
 * memory size in its C = 1 row. Its other cells are dropped from the table.
 */
function reusableEval(run: string, f: CompareFlags): EvalResult | undefined {
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

/** The C = smallest-classes row of a run's NLL cells (C = 1: NLL against shots of the target's class). */
function firstRow(e: CompareEntry): NllCell[] {
  const C = Math.min(...e.eval.nll.map((c) => c.classes));
  return e.eval.nll.filter((c) => c.classes === C);
}

/** Paired difference of two runs' per-target NLLs at the same cell (same seed: same targets and memories). */
function pairedAcross(a: NllCell | undefined, b: NllCell | undefined): { mean: number; se: number } | undefined {
  if (!a?.values || !b?.values || a.values.length !== b.values.length) return undefined;
  return meanSe(a.values.map((v, i) => v - b.values![i]!));
}

const pm = (m: number, se: number, digits = 1) => `${m.toFixed(digits)} ± ${se.toFixed(digits)}`;

export function compareTable(entries: CompareEntry[]): string {
  const Ms = [...new Set(entries.flatMap((e) => firstRow(e).map((c) => c.memory)))].sort((a, b) => a - b);
  const ways = [...new Set(entries.flatMap((e) => e.eval.ways.map((w) => w.ways)))].sort((a, b) => a - b);
  const ref = entries[0];
  const rows = entries.map((e) => {
    const row = firstRow(e);
    const plain = e.eval.plainNll;
    const last = row[row.length - 1];
    const vsRef = e === ref ? undefined : pairedAcross(last, ref && firstRow(ref).find((c) => c.memory === last?.memory));
    return [
      e.variant,
      ...(plain ? [pm(plain.nll, plain.se), ...Ms.slice(1).map(() => '')] : Ms.map((M) => {
        const c = row.find((x) => x.memory === M);
        return c ? pm(c.nll, c.se) : '';
      })),
      last?.diff ? pm(last.diff.mean, last.diff.se) : '',
      vsRef ? pm(vsRef.mean, vsRef.se) : '',
      ...ways.map((n) => {
        const w = e.eval.ways.find((x) => x.ways === n);
        return w ? `${(100 * w.accuracy).toFixed(1)}% ± ${(100 * w.se).toFixed(1)}` : '—';
      }),
      e.eval.parameters.toLocaleString('en-US'),
      String(e.train.steps),
      e.train.msPerStep.toFixed(0),
      (e.train.trainedSeconds / 60).toFixed(1),
    ];
  });
  const C = ref ? Math.min(...ref.eval.nll.map((c) => c.classes)) : 1;
  const lastM = Ms[Ms.length - 1];
  return markdownTable(
    [
      'memory',
      ...Ms.map((M) => `NLL M=${M}`),
      `M=${Ms[0] ?? ''}→${lastM ?? ''} (paired)`,
      `vs ${ref?.variant ?? ''} at M=${lastM ?? ''} (paired)`,
      ...ways.map((n) => `${n}-way 1-shot`),
      'parameters',
      'steps',
      'ms / step',
      'minutes',
    ],
    rows,
  ) + (Number.isFinite(C) && C !== 1 ? `\n\n(C = ${C} classes in memory)` : '');
}

function writeCompareReport(out: string, targets: string[], entries: CompareEntry[], f: CompareFlags): void {
  const budget = f.minutes !== undefined ? `${f.minutes} minutes of training each` : `${entries[0]?.train.steps ?? 0} steps`;
  const md = [
    `# ${targets.map((t) => basename(t)).join(', ')}: ${entries.map((r) => r.variant).join(' vs ')}`,
    '',
    `Budget: ${budget} (runs given as directories keep their own; see the steps and minutes columns). Seed ${f.seed}. ` +
      `Test NLL in nats with ${f.evalSamples} importance samples over ${f.evalEpisodes} test episodes (mean ± standard error), ` +
      'for memories holding only shots of the target\'s class (M = shots, C = 1) unless a C is stated. ' +
      'Every run is evaluated on the same targets with the same nested memories (one evaluation seed), so the differences ' +
      'across M within a row and against the first row are paired: mean ± standard error of the per-target difference (negative: lower NLL). ' +
      'Accuracy: argmax q(a|x) has the target\'s class (models that address their memory). ' +
      'Soft attention reports the bound of the soft model (its read uses q(a|x), which sees the target).',
    '',
    compareTable(entries),
    '',
    ...entries.map((r) => `- ${r.variant}: run directory \`${r.run}\`, evaluation in \`${join(r.run, 'eval', 'report.md')}\``),
    '',
  ].join('\n');
  writeFileAtomicSync(join(out, 'compare.md'), md);
  writeFileAtomicSync(join(out, 'compare.json'), JSON.stringify(entries, null, 2) + '\n');
  const withMemory = entries.filter((r) => r.eval.nll.length);
  if (!withMemory.length) return;
  const series = (pick: (c: NllCell) => number | undefined) =>
    withMemory.map((r) => ({
      name: r.variant,
      points: firstRow(r).filter((c) => pick(c) !== undefined).map((c) => [c.memory, pick(c)!] as [number, number]),
      errorBars: firstRow(r).filter((c) => pick(c) !== undefined).map((c) => c.se),
    }));
  const C = Math.min(...withMemory[0]!.eval.nll.map((c) => c.classes));
  writeFileAtomicSync(join(out, 'nll_vs_memory.svg'), lineChart({ title: `test NLL vs memory size (C = ${C})`, xLabel: 'memory size M', yLabel: 'NLL (nats)', series: series((c) => c.nll) }));
  const withKl = withMemory.filter((r) => firstRow(r).some((c) => c.kl !== undefined));
  if (withKl.length) {
    writeFileAtomicSync(
      join(out, 'kl_vs_memory.svg'),
      lineChart({
        title: `KL(q(a|x) || p(a)) vs memory size (C = ${C})`,
        xLabel: 'memory size M',
        yLabel: 'nats',
        series: [
          ...withKl.map((r) => ({ name: r.variant, points: firstRow(r).filter((c) => c.kl !== undefined).map((c) => [c.memory, c.kl!] as [number, number]) })),
          { name: 'ceiling: log(entries)', dashed: true, points: firstRow(withKl[0]!).map((c) => [c.memory, c.logM!] as [number, number]) },
        ],
      }),
    );
    writeFileAtomicSync(
      join(out, 'accuracy_vs_memory.svg'),
      lineChart({
        title: `argmax q(a|x) has the target's class (C = ${C})`,
        xLabel: 'memory size M',
        yLabel: 'share',
        series: withKl.map((r) => ({ name: r.variant, points: firstRow(r).filter((c) => c.accuracy !== undefined).map((c) => [c.memory, c.accuracy!] as [number, number]) })),
      }),
    );
  }
}
