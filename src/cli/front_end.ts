/**
 * Commands over the front half of the compiler: `check`, `dump`, `fmt`, `compile`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse } from '../ast/parse.ts';
import { printProgram, stripMeta } from '../ast/print.ts';
import { explain } from '../check/explain.ts';
import { frontEnd } from '../check/pipeline.ts';
import { hasErrors } from '../diagnostics/diagnostic.ts';
import { renderDiagnostics, SourceFile } from '../diagnostics/render.ts';
import { printIr } from '../ir/print.ts';
import { describePlan } from '../lower/plan.ts';
import { UsageError } from './errors.ts';

export function readSource(path: string): SourceFile {
  try {
    return new SourceFile(path, readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Runs the front end on a file; prints diagnostics; returns the IR or undefined on errors. */
export function loadModel(path: string, opts: { quietWarnings?: boolean } = {}) {
  const src = readSource(path);
  const result = frontEnd(src.text);
  const shown = opts.quietWarnings ? result.diagnostics.filter((d) => d.severity === 'error') : result.diagnostics;
  if (shown.length) process.stderr.write(renderDiagnostics(src, shown) + '\n');
  return { src, result, ok: !hasErrors(result.diagnostics) && result.ir !== undefined };
}

export function registerFrontEndCommands(program: Command): void {
  program
    .command('check')
    .description('parse and check models; print diagnostics as file:line:col')
    .argument('<files...>', '.vmm files')
    .option('--explain', "print each model's sites, shapes, nets and the guide the compiler will use")
    .option('--deny-warnings', 'exit 1 on warnings too')
    .action((files: string[], opts: { explain?: boolean; denyWarnings?: boolean }) => {
      let failed = false;
      for (const f of files) {
        const src = readSource(f);
        const r = frontEnd(src.text);
        if (r.diagnostics.length) process.stderr.write(renderDiagnostics(src, r.diagnostics) + '\n');
        const bad = hasErrors(r.diagnostics) || (opts.denyWarnings && r.diagnostics.length > 0);
        if (bad) failed = true;
        else if (opts.explain && r.checked) process.stdout.write(`${f}:\n${explain(r.checked)}\n`);
        else if (!bad) process.stdout.write(`${f}: ok\n`);
      }
      process.exitCode = failed ? 1 : 0;
    });

  program
    .command('dump')
    .description('print an intermediate form: ast (untyped syntax tree, JSON) or ir (the checked model)')
    .argument('<stage>', 'ast | ir')
    .argument('<file>', '.vmm file')
    .action((stage: string, file: string) => {
      if (stage !== 'ast' && stage !== 'ir') throw new UsageError(`unknown stage '${stage}' (expected ast or ir)`);
      const src = readSource(file);
      if (stage === 'ast') {
        const { program: p, diagnostics } = parse(src.text);
        if (diagnostics.length) process.stderr.write(renderDiagnostics(src, diagnostics) + '\n');
        process.stdout.write(JSON.stringify(stripMeta(p), null, 2) + '\n');
        process.exitCode = hasErrors(diagnostics) ? 1 : 0;
        return;
      }
      const { result, ok } = loadModel(file);
      if (!ok || !result.ir) {
        process.exitCode = 1;
        return;
      }
      process.stdout.write(printIr(result.ir));
      process.exitCode = 0;
    });

  program
    .command('fmt')
    .description('format .vmm files canonically (in place, or --check to only report)')
    .argument('<files...>', '.vmm files')
    .option('--check', 'exit 1 if a file is not formatted; change nothing')
    .option('--stdout', 'print the formatted text instead of writing the file')
    .action((files: string[], opts: { check?: boolean; stdout?: boolean }) => {
      let failed = false;
      for (const f of files) {
        const src = readSource(f);
        const { program: p, diagnostics } = parse(src.text);
        if (hasErrors(diagnostics)) {
          process.stderr.write(renderDiagnostics(src, diagnostics) + '\n');
          failed = true;
          continue;
        }
        const out = printProgram(p);
        if (opts.stdout) process.stdout.write(out);
        else if (opts.check) {
          if (out !== src.text) {
            process.stdout.write(`${f}: not formatted (run vmm fmt ${f})\n`);
            failed = true;
          }
        } else if (out !== src.text) {
          writeFileSync(f, out);
          process.stdout.write(`${f}: formatted\n`);
        }
      }
      process.exitCode = failed ? 1 : 0;
    });

  program
    .command('compile')
    .description('print the lowered plan: how each site is sampled or summed, which estimator handles it, the objective')
    .argument('<file>', '.vmm file')
    .option('--estimator <name>', 'override the estimator (vimco, reinforce, enumerate, soft, iwae)')
    .option('--k <n>', 'samples per example', (v) => parsePositiveInt(v, '--k'))
    .option('--addressing <mode>', 'hard | soft (soft is the same as --estimator soft)')
    .action((file: string, opts: { estimator?: string; k?: number; addressing?: string }) => {
      const { result, ok } = loadModel(file);
      if (!ok || !result.ir) {
        process.exitCode = 1;
        return;
      }
      const ir = applyOverrides(result.ir, opts);
      process.stdout.write(describePlan(ir));
      process.exitCode = 0;
    });
}

export function parsePositiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} expects a positive integer, got '${v}'`);
  return n;
}

export function parsePositiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} expects a positive number, got '${v}'`);
  return n;
}

import type { EstimatorKind, IrProgram } from '../ir/types.ts';
import { estimatorProblem } from '../estimators/registry.ts';

const ESTIMATORS: EstimatorKind[] = ['vimco', 'reinforce', 'enumerate', 'soft', 'iwae'];

/** Command-line training settings override the file's `train { }` block. */
export function applyOverrides(
  ir: IrProgram,
  opts: { estimator?: string; k?: number; addressing?: string; lr?: number; batch?: number; steps?: number; baseline?: string },
): IrProgram {
  const est = { ...ir.train.estimator };
  if (opts.addressing !== undefined) {
    if (opts.addressing === 'soft') est.kind = 'soft';
    else if (opts.addressing !== 'hard') throw new UsageError(`--addressing expects hard or soft, got '${opts.addressing}'`);
    else if (est.kind === 'soft') est.kind = 'vimco';
  }
  if (opts.estimator !== undefined) {
    if (!ESTIMATORS.includes(opts.estimator as EstimatorKind)) {
      throw new UsageError(`unknown estimator '${opts.estimator}' (expected one of ${ESTIMATORS.join(', ')})`);
    }
    est.kind = opts.estimator as EstimatorKind;
  }
  if (opts.k !== undefined) est.k = opts.k;
  if (est.kind === 'vimco' && est.k < 2) est.k = opts.k !== undefined ? est.k : 4;
  if (opts.baseline !== undefined) {
    if (est.kind === 'vimco') {
      if (opts.baseline !== 'geometric' && opts.baseline !== 'arithmetic') throw new UsageError(`--baseline for vimco: geometric | arithmetic`);
      est.vimcoBaseline = opts.baseline;
    } else {
      if (!['none', 'running', 'nvil'].includes(opts.baseline)) throw new UsageError(`--baseline for reinforce: none | running | nvil`);
      est.reinforceBaseline = opts.baseline as 'none' | 'running' | 'nvil';
    }
  }
  const train = { ...ir.train, estimator: est, optimizer: { ...ir.train.optimizer } };
  if (opts.lr !== undefined) train.optimizer.lr = opts.lr;
  if (opts.batch !== undefined) train.batch = opts.batch;
  if (opts.steps !== undefined) train.steps = opts.steps;
  const out = { ...ir, train };
  const problem = estimatorProblem(out);
  if (problem) throw new UsageError(problem);
  return out;
}
