/**
 * The report of a comparison, in its output folder: compare.md (the table, what each column
 * bounds, where each run is), compare.json (every run's evaluation) and plots on shared axes
 * (NLL, KL and accuracy against the memory size), each an SVG with a PNG beside it.
 */
import { basename, join } from 'node:path';
import { markdownTable } from '../report/markdown.ts';
import { lineChart } from '../report/svg.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { writeSvgAndPng } from '../report/raster.ts';
import { firstRow, pairedSeeds, pairedVariants, summarize, type CompareEntry, type Estimate, type VariantSummary } from './compare_stats.ts';

/** What the report says of how the runs were made. */
export interface ReportSettings {
  /** The time budget in minutes, if one was given. */
  minutes?: number;
  evalSamples: number;
  evalEpisodes: number;
}

const pm = (e: Estimate | undefined, digits = 1, scale = 1, unit = '') =>
  e === undefined ? '' : Number.isFinite(e.se) ? `${(scale * e.mean).toFixed(digits)}${unit} ± ${(scale * e.se).toFixed(digits)}` : `${(scale * e.mean).toFixed(digits)}${unit}`;

/** The comparison as one markdown table: a row per variant. */
export function compareTable(entries: CompareEntry[]): string {
  const vs = summarize(entries);
  const Ms = [...new Set(vs.flatMap((v) => [...v.nll.keys()]))].sort((a, b) => a - b);
  const ways = [...new Set(vs.flatMap((v) => [...v.ways.keys()]))].sort((a, b) => a - b);
  const ref = vs.find((v) => !v.control);
  const control = vs.find((v) => v.control);
  const lastM = Ms[Ms.length - 1];
  // Models without a memory have one NLL (no memory sizes): one column for it.
  const nllHeaders = Ms.length ? Ms.map((M) => `NLL M=${M}`) : vs.some((v) => v.plain) ? ['NLL'] : [];
  const rows = vs.map((v) => {
    const first = v.entries[0]!;
    const mean = (f: (e: CompareEntry) => number) => v.entries.reduce((acc, e) => acc + f(e), 0) / v.entries.length;
    return [
      v.variant,
      String(v.entries.length),
      ...(v.plain ? [pm(v.plain), ...nllHeaders.slice(1).map(() => '')] : Ms.map((M) => pm(v.nll.get(M)))),
      // The columns over memory sizes only where there are memory sizes (not for a model without a memory).
      ...(lastM === undefined
        ? []
        : [
            pm(v.drop),
            ref && v !== ref ? pm(pairedVariants(v, ref, lastM)) : '',
            control && v !== control ? pm(pairedVariants(v, control, lastM)) : '',
          ]),
      ...ways.map((n) => (v.ways.has(n) && !v.control ? pm(v.ways.get(n), 1, 100, '%') : '—')),
      ...(lastM === undefined ? [] : [v.kl && !v.control ? pm(v.kl, 2) : '—']),
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
        ...nllHeaders,
        ...(lastM === undefined ? [] : [`M=${Ms[0]}→${lastM} (paired)`, `vs ${ref?.variant ?? ''} at M=${lastM} (paired)`, `vs no-memory control at M=${lastM} (paired)`]),
        ...ways.map((n) => `${n}-way 1-shot`),
        ...(lastM === undefined ? [] : [`KL(q(a|x) ‖ p(a)) at M=${lastM}`]),
        'parameters',
        'steps',
        'ms / step',
        'minutes',
      ],
      rows,
    ) + (Number.isFinite(C) && C !== 1 ? `\n\n(C = ${C} classes in memory)` : '')
  );
}

/** The variants, the control among them and the memory sizes; undefined without a control or sizes. */
function againstControl(entries: CompareEntry[]): { vs: VariantSummary[]; control: VariantSummary; Ms: number[] } | undefined {
  const vs = summarize(entries);
  const control = vs.find((v) => v.control);
  const Ms = [...new Set(vs.flatMap((v) => [...v.nll.keys()]))].sort((a, b) => a - b);
  return control && Ms.length ? { vs, control, Ms } : undefined;
}

/**
 * Each memory variant against the no-memory control at every memory size, paired (seed i against
 * seed i over the same targets; negative: the memory model is better), and whether it is ahead
 * beyond two standard errors at every size: the test a memory has to pass to be said to help.
 * Empty when there is no control or no memory sizes.
 */
export function controlTable(entries: CompareEntry[]): string {
  const c = againstControl(entries);
  if (!c) return '';
  const { vs, control, Ms } = c;
  const rows = vs
    .filter((v) => !v.control && !v.plain)
    .map((v) => {
      const d = Ms.map((M) => pairedVariants(v, control, M));
      const ahead = d.every((e) => e !== undefined && Number.isFinite(e.se) && e.mean + 2 * e.se < 0);
      return [v.variant, ...d.map((e) => pm(e, 2)), ahead ? 'yes' : 'no'];
    });
  if (!rows.length) return '';
  return markdownTable(['variant minus the no-memory control (paired)', ...Ms.map((M) => `M=${M}`), 'ahead beyond 2 s.e. at every M'], rows);
}

/**
 * The control table's differences seed by seed (each ± over the test targets), for variants with
 * more than one seed: where a seed-level standard error is wide, whether one seed or one control
 * run is what widens it. Empty when there is no control or no variant with several seeds.
 */
export function controlSeedTable(entries: CompareEntry[]): string {
  const c = againstControl(entries);
  if (!c) return '';
  const { vs, control, Ms } = c;
  const rows: string[][] = [];
  for (const v of vs.filter((v) => !v.control && !v.plain && v.entries.length > 1)) {
    const bySize = Ms.map((M) => pairedSeeds(v, control, M));
    const n = Math.min(v.entries.length, control.entries.length);
    for (let i = 0; i < n; i++) {
      rows.push([`${v.variant}, seed ${v.entries[i]!.seed} - control seed ${control.entries[i]!.seed}`, ...bySize.map((d) => (d?.[i] ? pm({ ...d[i]!, over: 'targets', n: 1 }, 2) : '—'))]);
    }
  }
  if (!rows.length) return '';
  return markdownTable(['seed minus the control of the same seed (paired, ± over targets)', ...Ms.map((M) => `M=${M}`)], rows);
}

/** Writes compare.md, compare.json and the plots into `out`. */
export function writeCompareReport(out: string, targets: string[], entries: CompareEntry[], f: ReportSettings): void {
  const budget = f.minutes !== undefined ? `${f.minutes} minutes of training each` : `${entries[0]?.train.steps ?? 0} steps`;
  // The seeds the runs have, not the command's --seed/--seeds: runs given as directories bring their own.
  const seedsOf = summarize(entries).map((v) => v.entries.map((e) => e.seed));
  const counts = [...new Set(seedsOf.map((s) => s.length))].sort((a, b) => a - b);
  const seedList = [...new Set(seedsOf.flat())].sort((a, b) => a - b);
  const seedsText = `${counts.join(' to ')} per variant here; seed${seedList.length > 1 ? 's' : ''} ${seedList.join(', ')}`;
  const against = controlTable(entries);
  const bySeed = controlSeedTable(entries);
  const md = [
    `# ${targets.map((t) => basename(t)).join(', ')}: ${[...new Set(entries.map((r) => r.variant))].join(' vs ')}`,
    '',
    `Budget: ${budget} (runs given as directories keep their own; see the steps and minutes columns). ` +
      `Test NLL in nats with ${f.evalSamples} importance samples over ${f.evalEpisodes} test episodes (mean ± standard error), ` +
      'for memories holding only shots of the target\'s class (M = shots, C = 1) unless a C is stated. ' +
      'Every run is evaluated on the same targets with the same nested memories (one evaluation seed), so the differences ' +
      'across M within a row and against the first row are paired: mean ± standard error of the per-target difference (negative: lower NLL). ' +
      'Accuracy: argmax q(a|x) has the target\'s class (models that address their memory). ' +
      `With several seeds (${seedsText}), every ± is a seed-level standard error (sd over seeds / sqrt(seeds)); ` +
      'paired differences pair seed i of one variant with seed i of the other, over the same targets; with one seed, ± is over test targets.',
    '',
    compareTable(entries),
    '',
    ...(against ? ['Against the no-memory control at every memory size (NLL difference in nats, paired; negative: the memory model is better):', '', against, ''] : []),
    ...(bySeed ? ['Seed by seed:', '', bySeed, ''] : []),
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
