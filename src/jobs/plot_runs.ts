/**
 * `vmm plot RUN...`: training curves of one or several runs from their metrics.jsonl, as SVG
 * with a PNG beside it: the training bound (its moving average) and the validation bound
 * against the step; and, for models with an address, KL(q(a|x) || p(a)) at each validation with
 * its ceiling log M.
 */
import { basename, join, resolve } from 'node:path';
import { RunError } from '../diagnostics/errors.ts';
import { writeSvgAndPng } from '../report/raster.ts';
import { lineChart, PALETTE, type Series } from '../report/svg.ts';
import { RunDir } from './run_dir.ts';

export interface PlotOptions {
  /** The SVG file to write (its PNG goes beside it). Default: RUN/training_curves.svg for one run, else training_curves.svg. */
  out?: string;
}

interface Curve {
  name: string;
  train: [number, number][];
  valid: [number, number][];
  kl: [number, number][];
  klCeiling: [number, number][];
}

/** A run's curves from its metrics records (the latest record of a step wins). */
export function runCurves(name: string, records: Record<string, unknown>[]): Curve {
  const byStep = (kind: string, key: string): [number, number][] => {
    const m = new Map<number, number>();
    for (const r of records) {
      if (r['kind'] === kind && typeof r['step'] === 'number' && typeof r[key] === 'number') m.set(r['step'], r[key]);
    }
    return [...m.entries()].sort((a, b) => a[0] - b[0]);
  };
  const ema = byStep('train', 'boundEma');
  return {
    name,
    train: ema.length ? ema : byStep('train', 'bound'),
    valid: byStep('valid', 'bound'),
    kl: byStep('valid', 'addressKl'),
    klCeiling: byStep('valid', 'addressKlCeiling'),
  };
}

/** Writes the training-curve plots of `runs`; returns the files written (SVG and PNG). */
export function plotRuns(runs: string[], o: PlotOptions = {}): string[] {
  if (!runs.length) throw new RunError('plot needs at least one run directory');
  const base = runs.map((r) => basename(resolve(r)));
  // Two runs of one name (runs/a/x, runs/b/x) are named by their paths as given.
  const names = base.map((n, i) => (base.indexOf(n) !== base.lastIndexOf(n) ? runs[i]! : n));
  const curves = runs.map((r, i) => {
    const { dir } = RunDir.open(r);
    const c = runCurves(names[i]!, dir.readMetrics());
    if (!c.train.length && !c.valid.length) throw new RunError(`${r} has no training metrics yet (metrics.jsonl is empty)`);
    return c;
  });
  const out = o.out ?? (runs.length === 1 ? join(runs[0]!, 'training_curves.svg') : 'training_curves.svg');
  if (!/\.svg$/i.test(out)) throw new RunError(`--out ${out}: expected a file name ending in .svg (the PNG goes beside it)`);
  const one = curves.length === 1;
  const series: Series[] = curves.flatMap((c, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    return [
      { name: one ? 'training bound (moving average)' : `${c.name}: training`, points: c.train, color, markers: false },
      ...(c.valid.length ? [{ name: one ? 'validation bound' : `${c.name}: validation`, points: c.valid, color, dashed: true, markers: true }] : []),
    ];
  });
  const files = writeSvgAndPng(
    out,
    lineChart({
      title: one ? `${curves[0]!.name}: bound during training` : 'bound during training',
      xLabel: 'step',
      yLabel: 'bound (nats, higher is better)',
      series,
      width: 760,
    }),
  );
  const withKl = curves.filter((c) => c.kl.length);
  if (withKl.length) {
    const klOut = out.replace(/\.svg$/i, '_address_kl.svg');
    files.push(
      ...writeSvgAndPng(
        klOut,
        lineChart({
          title: 'KL(q(a|x) || p(a)) at validation: how much the guide uses its memory',
          xLabel: 'step',
          yLabel: 'nats',
          yIncludeZero: true,
          width: 760,
          series: withKl.flatMap((c, i) => [
            { name: one ? 'KL of the address' : `${c.name}: KL`, points: c.kl, color: PALETTE[i % PALETTE.length]! },
            ...(i === 0 ? [{ name: 'ceiling: log M', points: c.klCeiling, color: '#888888', dashed: true }] : []),
          ]),
        }),
      ),
    );
  }
  return files;
}
