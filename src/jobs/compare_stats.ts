/**
 * The statistics of a comparison over seeds (`vmm compare`, `compare()` of the library): for each
 * variant, means over its seeds with seed-level standard errors; paired differences of two
 * variants seed by seed over the same test targets; with one seed, standard errors over targets.
 */
import { meanSe, type EvalResult, type NllCell } from './evaluate_run.ts';

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

/** The C = smallest-classes row of a run's NLL cells (C = 1: NLL against shots of the target's class). */
export function firstRow(e: CompareEntry): NllCell[] {
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
 * Paired differences of two variants at memory size M, seed by seed: seed i of one against seed i
 * of the other, the mean per-target difference over the same test targets and memories, with its
 * standard error over targets. Undefined when a pair lacks per-target values or targets differ.
 */
export function pairedSeeds(a: VariantSummary, b: VariantSummary, M: number): { seed: number; mean: number; se: number }[] | undefined {
  const out: { seed: number; mean: number; se: number }[] = [];
  const n = Math.min(a.entries.length, b.entries.length);
  for (let i = 0; i < n; i++) {
    const ca = firstRow(a.entries[i]!).find((c) => c.memory === M);
    const cb = firstRow(b.entries[i]!).find((c) => c.memory === M);
    if (!ca?.values || !cb?.values || ca.values.length !== cb.values.length) return undefined;
    out.push({ seed: a.entries[i]!.seed, ...meanSe(ca.values.map((v, j) => v - cb.values![j]!)) });
  }
  return out;
}

/**
 * Paired difference of two variants at memory size M: the per-seed differences of `pairedSeeds`,
 * then their mean over seeds with its seed-level standard error (one seed: the standard error over
 * targets).
 */
export function pairedVariants(a: VariantSummary, b: VariantSummary, M: number): Estimate | undefined {
  const d = pairedSeeds(a, b, M);
  if (!d?.length) return undefined;
  return over(d.map((x) => x.mean), d[0]);
}
