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
import { writeSvgAndPng } from '../report/raster.ts';
import { RunDir, irOfRun, type RunConfig } from '../jobs/run_dir.ts';
import type { IrProgram } from '../ir/types.ts';
import { trainLoop } from '../jobs/train_loop.ts';
import { EVAL_SEED, meanSe, runEval, type EvalResult, type NllCell } from '../jobs/evaluate_run.ts';

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

/** What the table needs of a run's training: from this invocation or the run's summary.json. */
export interface TrainSummary {
  steps: number;
  msPerStep: number;
  /** Seconds of training over all invocations of the run. */
  trainedSeconds: number;
  budgetSpent?: boolean;
}

/** One trained run (one variant, one seed) and its evaluation. */
export interface CompareEntry {
  /** The variant's name: "model (hard, vimco)", "model (soft attention)", "model (no-memory control)". */
  variant: string;
  seed: number;
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

/** The settings overrides of one `--variants` entry. */
function variantFlags(v: string, file: IrProgram): Partial<TrainFlags> {
  if (v === 'control' || v === 'none') return { addressing: 'none' };
  if (v === 'soft') return { addressing: 'soft' };
  if (v === 'hard') return file.train.estimator.kind === 'soft' ? { addressing: 'hard' } : { estimator: file.train.estimator.kind };
  return { estimator: v, addressing: 'hard' };
}

const VARIANT_WORDS = ['hard', 'soft', 'control'];

export async function runCompare(targets: string[], f: CompareFlags): Promise<CompareEntry[]> {
  if (!targets.length) throw new UsageError('compare needs model files or run directories');
  const files = targets.filter((t) => !isRunDir(t));
  const variantsGiven = f.variants?.split(',').map((v) => v.trim()).filter(Boolean);
  for (const v of variantsGiven ?? []) {
    if (!estimatorSpec(v) && !VARIANT_WORDS.includes(v) && v !== 'none') throw new UsageError(`unknown variant '${v}' (expected hard, soft, control or an estimator: ${estimatorKinds().join(', ')})`);
  }
  const seeds = f.seeds ?? 1;
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
  const runs: { run: string; train?: TrainSummary }[] = [];
  let controlled = false;
  for (const t of targets) {
    if (isRunDir(t)) {
      runs.push({ run: t });
      continue;
    }
    const { ir: baseIr, text } = loadedFiles.get(t)!;
    const variants = [...(variantsGiven ?? (single ? ['hard', 'soft'] : [baseIr.train.estimator.kind]))];
    // "Memory helps" is measured against a control with the same networks and no memory: one per
    // comparison (the first file with a memory), unless asked for or refused explicitly.
    if (f.control !== false && !controlled && baseIr.memories.length && !variants.some((v) => v === 'control' || v === 'none')) variants.push('control');
    if (variants.some((v) => v === 'control' || v === 'none')) controlled = true;
    // One K for every variant of a file, so each sees the same number of samples per example.
    const k = f.k ?? Math.max(baseIr.train.estimator.k, 2);
    for (const v of variants) {
      for (let i = 0; i < seeds; i++) {
        const seed = f.seed + i;
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
        // A new run goes through the pipeline at the variant's flags; a run continued is its own program again.
        const fresh = opened ? undefined : configFor(t, text, { ...f, ...variantFlags(v, baseIr), k: v === 'reinforce' ? (f.k ?? 1) : k, seed, out: undefined });
        const config = opened?.config ?? fresh!.config;
        const ir = fresh?.ir ?? irOfRun(config);
        const dir = opened?.dir ?? RunDir.create(runPath, config);
        // A continued run is written by this process alone, as `train --resume` holds it.
        if (opened) dir.lock();
        const train = await trainLoop(dir, config, ir, resume, { progress: !f.quiet, log }).finally(() => dir.release());
        // No summary for an interrupted run: summary.json marks a run the next invocation skips as finished.
        if (train.interrupted) throw new RunError(`interrupted while training ${name}; run the same command again to continue (finished runs are kept in ${out})`);
        dir.writeJson('summary.json', { ...train, finishedAt: new Date().toISOString() });
        runs.push({ run: runPath, train });
      }
    }
  }
  const entries: CompareEntry[] = [];
  for (const r of runs) {
    const { config } = RunDir.open(r.run);
    const variant = variantOf(config);
    const hasMemory = irOfRun(config).memories.length > 0;
    const reused = reusableEval(r.run, f);
    if (reused) log(`\n== ${variant}, seed ${config.seed}: using its evaluation in ${join(r.run, 'eval', 'eval.json')} (same samples, episodes and seed)`);
    else log(`\n== evaluating ${variant}, seed ${config.seed}`);
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
    entries.push({ variant, seed: config.seed, run: r.run, train: r.train ?? readSummary(r.run), eval: evalResult });
  }
  if (!entries.some((e) => e.eval.control) && entries.some((e) => e.eval.nll.length)) log('\nnote: no no-memory control in this comparison: "memory helps" is not measured (add a control run, or leave out --no-control)');
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

/** A mean with its standard error; `over` says what varied: seeds, or (one seed) the test targets. */
export interface Estimate {
  mean: number;
  se: number;
  over: 'seeds' | 'targets';
  n: number;
}

/**
 * The runs of one variant, one per seed. Every figure is a mean over its seeds with a seed-level
 * standard error (sd over seeds / sqrt(seeds)); with one seed, the standard error over test targets
 * (which says nothing of how another training run would do).
 */
export interface VariantSummary {
  variant: string;
  entries: CompareEntry[];
  bound?: string;
  control: boolean;
  nll: Map<number, Estimate>;
  /** Paired NLL change from the smallest to the largest M (per seed over the same targets). */
  drop?: Estimate;
  ways: Map<number, Estimate>;
  kl?: Estimate;
  plain?: Estimate;
}

function over(perSeed: number[], single: { mean: number; se: number } | undefined): Estimate | undefined {
  const xs = perSeed.filter((x) => Number.isFinite(x));
  if (!xs.length) return undefined;
  if (xs.length === 1) return single ? { ...single, over: 'targets', n: 1 } : { mean: xs[0]!, se: NaN, over: 'targets', n: 1 };
  return { ...meanSe(xs), over: 'seeds', n: xs.length };
}

export function summarize(entries: CompareEntry[]): VariantSummary[] {
  const byVariant = new Map<string, CompareEntry[]>();
  for (const e of entries) byVariant.set(e.variant, [...(byVariant.get(e.variant) ?? []), e]);
  return [...byVariant].map(([variant, es]) => {
    es.sort((a, b) => a.seed - b.seed);
    const rows = es.map(firstRow);
    const Ms = [...new Set(rows.flatMap((r) => r.map((c) => c.memory)))].sort((a, b) => a - b);
    const nll = new Map<number, Estimate>();
    for (const M of Ms) {
      const cells = rows.map((r) => r.find((c) => c.memory === M));
      const e = over(cells.map((c) => c?.nll ?? NaN), cells[0] ? { mean: cells[0].nll, se: cells[0].se } : undefined);
      if (e) nll.set(M, e);
    }
    const lasts = rows.map((r) => r[r.length - 1]?.diff);
    const drop = over(lasts.map((d) => d?.mean ?? NaN), lasts[0]);
    const ways = new Map<number, Estimate>();
    for (const n of new Set(es.flatMap((e) => e.eval.ways.map((w) => w.ways)))) {
      const ws = es.map((e) => e.eval.ways.find((w) => w.ways === n));
      const e = over(ws.map((w) => w?.accuracy ?? NaN), ws[0] ? { mean: ws[0].accuracy, se: ws[0].se } : undefined);
      if (e) ways.set(n, e);
    }
    const kls = rows.map((r) => r[r.length - 1]?.kl);
    const kl = over(kls.map((k) => k ?? NaN), kls[0] !== undefined ? { mean: kls[0], se: rows[0]![rows[0]!.length - 1]?.klSe ?? NaN } : undefined);
    const plains = es.map((e) => e.eval.plainNll);
    const plain = over(plains.map((p) => p?.nll ?? NaN), plains[0] ? { mean: plains[0].nll, se: plains[0].se } : undefined);
    return {
      variant,
      entries: es,
      ...(es[0]!.eval.bound ? { bound: es[0]!.eval.bound } : {}),
      control: es.some((e) => e.eval.control === true),
      nll,
      ...(drop ? { drop } : {}),
      ways,
      ...(kl ? { kl } : {}),
      ...(plain ? { plain } : {}),
    };
  });
}

/**
 * Paired difference of two variants at memory size M: per seed (seed i of one against seed i of
 * the other, the same test targets and memories), the mean per-target difference; then the mean
 * over seeds with its seed-level standard error (one seed: the standard error over targets).
 */
export function pairedVariants(a: VariantSummary, b: VariantSummary, M: number): Estimate | undefined {
  const diffs: number[] = [];
  let single: { mean: number; se: number } | undefined;
  const n = Math.min(a.entries.length, b.entries.length);
  for (let i = 0; i < n; i++) {
    const ca = firstRow(a.entries[i]!).find((c) => c.memory === M);
    const cb = firstRow(b.entries[i]!).find((c) => c.memory === M);
    if (!ca?.values || !cb?.values || ca.values.length !== cb.values.length) return undefined;
    const d = meanSe(ca.values.map((v, j) => v - cb.values![j]!));
    diffs.push(d.mean);
    single ??= d;
  }
  return over(diffs, single);
}

const pm = (e: Estimate | undefined, digits = 1, scale = 1, unit = '') =>
  e === undefined ? '' : Number.isFinite(e.se) ? `${(scale * e.mean).toFixed(digits)}${unit} ± ${(scale * e.se).toFixed(digits)}` : `${(scale * e.mean).toFixed(digits)}${unit}`;

export function compareTable(entries: CompareEntry[]): string {
  const vs = summarize(entries);
  const Ms = [...new Set(vs.flatMap((v) => [...v.nll.keys()]))].sort((a, b) => a - b);
  const ways = [...new Set(vs.flatMap((v) => [...v.ways.keys()]))].sort((a, b) => a - b);
  const ref = vs.find((v) => !v.control);
  const control = vs.find((v) => v.control);
  const lastM = Ms[Ms.length - 1];
  const rows = vs.map((v) => {
    const first = v.entries[0]!;
    const mean = (f: (e: CompareEntry) => number) => v.entries.reduce((acc, e) => acc + f(e), 0) / v.entries.length;
    return [
      v.variant,
      String(v.entries.length),
      ...(v.plain ? [pm(v.plain), ...Ms.slice(1).map(() => '')] : Ms.map((M) => pm(v.nll.get(M)))),
      pm(v.drop),
      ref && v !== ref && lastM !== undefined ? pm(pairedVariants(v, ref, lastM)) : '',
      control && v !== control && lastM !== undefined ? pm(pairedVariants(v, control, lastM)) : '',
      ...ways.map((n) => (v.ways.has(n) && !v.control ? pm(v.ways.get(n), 1, 100, '%') : '—')),
      v.kl && !v.control ? pm(v.kl, 2) : '—',
      first.eval.parameters.toLocaleString('en-US'),
      mean((e) => e.train.steps).toFixed(0),
      mean((e) => e.train.msPerStep).toFixed(0),
      Number.isFinite(mean((e) => e.train.trainedSeconds)) ? mean((e) => e.train.trainedSeconds / 60).toFixed(1) : '—',
    ];
  });
  const C = ref ? Math.min(...ref.entries[0]!.eval.nll.map((c) => c.classes)) : 1;
  return (
    markdownTable(
      [
        'variant',
        'seeds',
        ...Ms.map((M) => `NLL M=${M}`),
        `M=${Ms[0] ?? ''}→${lastM ?? ''} (paired)`,
        `vs ${ref?.variant ?? ''} at M=${lastM ?? ''} (paired)`,
        `vs no-memory control at M=${lastM ?? ''} (paired)`,
        ...ways.map((n) => `${n}-way 1-shot`),
        `KL(q(a|x) ‖ p(a)) at M=${lastM ?? ''}`,
        'parameters',
        'steps',
        'ms / step',
        'minutes',
      ],
      rows,
    ) + (Number.isFinite(C) && C !== 1 ? `\n\n(C = ${C} classes in memory)` : '')
  );
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
      `With several seeds (${f.seeds ?? 1} per variant here, seeds ${f.seed}..${f.seed + (f.seeds ?? 1) - 1}), every ± is a seed-level standard error (sd over seeds / sqrt(seeds)); ` +
      'paired differences pair seed i of one variant with seed i of the other, over the same targets; with one seed, ± is over test targets.',
    '',
    compareTable(entries),
    '',
    'What each NLL column bounds (every figure is an upper bound on -log p(x | memory) of the named model):',
    '',
    ...summarize(entries).map((v) => `- ${v.variant}: ${v.bound ?? 'importance-weighted bound'}`),
    '',
    ...entries.map((r) => `- ${r.variant}, seed ${r.seed}: run directory \`${r.run}\`, evaluation in \`${join(r.run, 'eval', 'report.md')}\``),
    '',
  ].join('\n');
  writeFileAtomicSync(join(out, 'compare.md'), md);
  writeFileAtomicSync(join(out, 'compare.json'), JSON.stringify(entries, null, 2) + '\n');
  const withMemory = summarize(entries).filter((v) => v.nll.size && !v.plain);
  if (!withMemory.length) return;
  const C = Math.min(...withMemory[0]!.entries[0]!.eval.nll.map((c) => c.classes));
  const Ms = (v: VariantSummary) => [...v.nll.keys()].sort((a, b) => a - b);
  // The evaluated memory sizes as ticks on a log axis; every plot also as PNG beside its SVG.
  const axis = { xLabel: 'memory size M (log scale)', logX: true, xTicks: [...new Set(withMemory.flatMap(Ms))].sort((a, b) => a - b) };
  writeSvgAndPng(
    join(out, 'nll_vs_memory.svg'),
    lineChart({
      title: `test NLL vs memory size (C = ${C})`,
      ...axis,
      yLabel: 'NLL (nats, ± 1 s.e.)',
      series: withMemory.map((v) => ({ name: v.variant, points: Ms(v).map((M) => [M, v.nll.get(M)!.mean] as [number, number]), errorBars: Ms(v).map((M) => v.nll.get(M)!.se) })),
    }),
  );
  // KL and accuracy against M, per variant (the first seed's run: the curves' shape, not their noise).
  const withKl = withMemory.filter((v) => !v.control && firstRow(v.entries[0]!).some((c) => c.kl !== undefined));
  if (withKl.length) {
    const row = (v: VariantSummary) => firstRow(v.entries[0]!);
    writeSvgAndPng(
      join(out, 'kl_vs_memory.svg'),
      lineChart({
        title: `KL(q(a|x) || p(a)) vs memory size (C = ${C}, seed ${withKl[0]!.entries[0]!.seed})`,
        ...axis,
        yLabel: 'nats (± 1 s.e.)',
        yIncludeZero: true,
        series: [
          ...withKl.map((v) => {
            const cells = row(v).filter((c) => c.kl !== undefined);
            return { name: v.variant, points: cells.map((c) => [c.memory, c.kl!] as [number, number]), errorBars: cells.map((c) => c.klSe ?? null) };
          }),
          { name: 'ceiling: log(entries)', dashed: true, points: row(withKl[0]!).map((c) => [c.memory, c.logM!] as [number, number]) },
        ],
      }),
    );
    writeSvgAndPng(
      join(out, 'accuracy_vs_memory.svg'),
      lineChart({
        title: `argmax q(a|x) has the target's class (C = ${C}, seed ${withKl[0]!.entries[0]!.seed})`,
        ...axis,
        yLabel: 'share (± 1 s.e.)',
        yDomain: [0, 1.02],
        series: withKl.map((v) => {
          const cells = row(v).filter((c) => c.accuracy !== undefined);
          return { name: v.variant, points: cells.map((c) => [c.memory, c.accuracy!] as [number, number]), errorBars: cells.map((c) => c.accuracySe ?? null) };
        }),
      }),
    );
  }
}
