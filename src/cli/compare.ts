/**
 * `vmm compare MODEL --variants vimco,soft,enumerate,reinforce`: trains each variant of one model
 * with the same data, seed and step budget, evaluates each the same way, and writes one markdown
 * table (test NLL, few-shot accuracy, KL, time per step, wall time) and plots with all variants
 * on the same axes. Hard vs soft addressing is one flag on the same file, not a second model.
 */
import { mkdirSync } from 'node:fs';
import { join, basename } from 'node:path';
import { configFor, type TrainFlags } from './run_config.ts';
import { loadModel } from './front_end.ts';
import { estimatorKinds, estimatorSpec } from '../estimators/registry.ts';
import { RunError, UsageError } from './errors.ts';
import { markdownTable } from '../report/markdown.ts';
import { lineChart } from '../report/svg.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { RunDir } from '../runtime/run_dir.ts';
import { trainLoop, type LoopResult } from '../runtime/train_loop.ts';
import { runEval, type EvalResult } from '../runtime/evaluate_run.ts';


export interface CompareFlags extends TrainFlags {
  /** Results as JSON on stdout (printed by the command) instead of the table. */
  json?: boolean;
  variants: string;
  evalEpisodes: number;
  evalSamples: number;
  memorySizes: string;
}

interface VariantResult {
  variant: string;
  train: LoopResult;
  eval: EvalResult;
}

export async function runCompare(modelPath: string, f: CompareFlags): Promise<VariantResult[]> {
  const variants = f.variants.split(',').map((v) => v.trim()).filter(Boolean);
  for (const v of variants) {
    if (!estimatorSpec(v)) throw new UsageError(`unknown variant '${v}' (expected ${estimatorKinds().join(', ')})`);
  }
  const loaded = loadModel(modelPath, { quietWarnings: true });
  if (!loaded.ok || !loaded.result.ir) throw new RunError(`${modelPath} has errors`);
  const baseIr = loaded.result.ir;
  const out = f.out ?? join('runs', `compare-${basename(modelPath, '.vmm')}`);
  mkdirSync(out, { recursive: true });
  const log = (m: string) => {
    if (!f.quiet) process.stderr.write(m + '\n');
  };
  // One K for every variant, so each sees the same number of samples per example.
  const k = f.k ?? Math.max(baseIr.train.estimator.k, 2);
  const results: VariantResult[] = [];
  for (const v of variants) {
    log(`\n== ${v}`);
    const config = configFor(modelPath, baseIr, loaded.src.text, { ...f, estimator: v, k: v === 'reinforce' ? (f.k ?? 1) : k, out: undefined });
    const ir = { ...baseIr, train: config.train };
    const runPath = join(out, v);
    const dir = RunDir.create(runPath, config);
    const train = await trainLoop(dir, config, ir, false, { progress: !f.quiet, log });
    dir.writeJson('summary.json', train);
    if (train.interrupted) throw new RunError(`interrupted while training ${v}; the finished variants are in ${out}`);
    const evalResult = await runEval(runPath, {
      ...(f.data ? { data: f.data } : {}),
      samples: f.evalSamples,
      episodes: f.evalEpisodes,
      memorySizes: f.memorySizes,
      classesList: String(config.data.classes === 1 ? 1 : `1,${Math.min(2, config.data.classes)}`),
      ways: ir.memories.length ? String(Math.min(5, config.data.classes * 2)) : '',
      large: '',
      seed: 12345,
      quiet: f.quiet ?? false,
    });
    results.push({ variant: v, train, eval: evalResult });
  }
  writeCompareReport(out, modelPath, results, f);
  log(`\nwrote ${join(out, 'compare.md')} and plots`);
  // With --json the command prints the results itself.
  if (!f.json) process.stdout.write(compareTable(results) + '\n');
  return results;
}

function trainingMemoryCell(r: VariantResult) {
  // The evaluation's largest memory with one class per ... the first C row is the headline figure.
  const cells = r.eval.nll.filter((c) => c.classes === r.eval.nll[0]?.classes);
  return cells[cells.length - 1];
}

export function compareTable(results: VariantResult[]): string {
  const rows = results.map((r) => {
    const cell = trainingMemoryCell(r);
    const nll = r.eval.plainNll ?? (cell ? { nll: cell.nll, se: cell.se } : undefined);
    const way = r.eval.ways[0];
    return [
      r.variant,
      nll ? `${nll.nll.toFixed(2)} ± ${nll.se.toFixed(2)}` : '',
      cell ? String(cell.memory) : '',
      way ? `${(100 * way.accuracy).toFixed(1)}% (${way.ways}-way)` : '',
      cell?.kl !== undefined ? `${cell.kl.toFixed(3)} / ${cell.logM!.toFixed(3)}` : '',
      r.train.msPerStep.toFixed(1),
      r.train.wallSeconds.toFixed(0),
    ];
  });
  return markdownTable(['variant', 'test NLL (nats)', 'at M', 'accuracy argmax q(a|x)', 'KL / ceiling', 'ms / step', 'wall s'], rows);
}

function writeCompareReport(out: string, modelPath: string, results: VariantResult[], f: CompareFlags): void {
  const md = [
    `# ${basename(modelPath)}: ${results.map((r) => r.variant).join(' vs ')}`,
    '',
    `Same data, seed (${f.seed}) and budget (${results[0]?.train.steps ?? 0} steps) for every variant. ` +
      `Test NLL with ${f.evalSamples} importance samples over ${f.evalEpisodes} test episodes (mean ± standard error). ` +
      'The soft variant reports the bound of the soft-attention model (its read uses q(a|x), which sees the target).',
    '',
    compareTable(results),
    '',
    ...results.map((r) => `- ${r.variant}: run directory \`${join(out, r.variant)}\`, evaluation in \`${join(out, r.variant, 'eval', 'report.md')}\``),
    '',
  ].join('\n');
  writeFileAtomicSync(join(out, 'compare.md'), md);
  writeFileAtomicSync(join(out, 'compare.json'), JSON.stringify(results, null, 2) + '\n');
  const withMemory = results.filter((r) => r.eval.nll.length);
  if (!withMemory.length) return;
  const C = withMemory[0]!.eval.nll[0]!.classes;
  const series = (pick: (c: EvalResult['nll'][number]) => number | undefined) =>
    withMemory.map((r) => ({
      name: r.variant,
      points: r.eval.nll.filter((c) => c.classes === C && pick(c) !== undefined).map((c) => [c.memory, pick(c)!] as [number, number]),
    }));
  writeFileAtomicSync(join(out, 'nll_vs_memory.svg'), lineChart({ title: `test NLL vs memory size (C = ${C})`, xLabel: 'memory size M', yLabel: 'NLL (nats)', series: series((c) => c.nll) }));
  writeFileAtomicSync(
    join(out, 'kl_vs_memory.svg'),
    lineChart({
      title: `KL(q(a|x) || p(a)) vs memory size (C = ${C})`,
      xLabel: 'memory size M',
      yLabel: 'nats',
      series: [
        ...series((c) => c.kl),
        { name: 'ceiling: log(entries)', dashed: true, points: withMemory[0]!.eval.nll.filter((c) => c.classes === C).map((c) => [c.memory, c.logM!] as [number, number]) },
      ],
    }),
  );
  writeFileAtomicSync(join(out, 'accuracy_vs_memory.svg'), lineChart({ title: `argmax q(a|x) has the target's class (C = ${C})`, xLabel: 'memory size M', yLabel: 'share', series: series((c) => c.accuracy) }));
}
