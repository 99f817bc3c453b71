/**
 * Commands over the front half of the compiler: `check`, `dump`, `fmt`, `compile`. Results go to
 * stdout, diagnostics and progress to stderr; `-` as a file reads standard input (`check`, `fmt`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { Command } from 'commander';
import { parse } from '../ast/parse.ts';
import { printProgram, stripMeta } from '../ast/print.ts';
import { budgetProblem, describeBudget, estimateBudget, sizesOf, WASM_MAX_BYTES } from '../check/budget.ts';
import { explain } from '../check/explain.ts';
import { parseLimited, type LimitName } from '../check/limits.ts';
import { compileSource, frontEnd, type PipelineResult } from '../check/pipeline.ts';
import { hasErrors, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { renderDiagnostics, SourceFile } from '../diagnostics/render.ts';
import { printIr } from '../ir/print.ts';
import { describePlan } from '../lower/plan.ts';
import { estimatorArgs, estimatorKinds } from '../estimators/registry.ts';
import { parseWithin } from '../ir/limits.ts';
import { fileSystemMessage, RunError, UsageError } from './errors.ts';

/** The name standard input is shown under. */
export const STDIN_NAME = '<stdin>';

/** Reads standard input (a seam for tests). */
export const stdin = { read: (): string => readFileSync(0, 'utf8') };

export function readSource(path: string): SourceFile {
  if (path === '-') return new SourceFile(STDIN_NAME, stdin.read());
  try {
    return new SourceFile(path, readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read '${path}': ${fileSystemMessage(e)?.replace(/^cannot \w+ '[^']*': /, '') ?? (e as Error).message}`);
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

/** The memory a run may use: the machine's, and at most the 4 GiB heap of the wasm backend. */
export function availableBytes(backend?: string): number {
  const machine = totalmem();
  return backend === 'wasm' ? Math.min(machine, WASM_MAX_BYTES) : machine;
}

/** Refuses (one line, exit 1) a model that cannot fit at its effective settings; see src/check/budget.ts. */
export function checkBudget(ir: IrProgram, backend?: string): void {
  const problem = budgetProblem(ir, sizesOf(ir.train), availableBytes(backend));
  if (problem) throw new RunError(problem.message);
}

/** A diagnostic as data for `--json`: offsets, and 1-based lines and columns (UTF-16 code units, as editors count). */
function diagnosticJson(src: SourceFile, d: Diagnostic) {
  const at = (span: { start: number; end: number }) => {
    const s = src.position(span.start);
    const e = src.position(span.end);
    return { start: span.start, end: span.end, line: s.line, col: s.col, endLine: e.line, endCol: e.col };
  };
  return {
    code: d.code,
    severity: d.severity,
    message: d.message,
    ...at(d.span),
    notes: d.notes.map((n) => ({ message: n.message, ...(n.span ? at(n.span) : {}) })),
  };
}

export function registerFrontEndCommands(program: Command): void {
  program
    .command('check')
    .description('parse and check models; print diagnostics as file:line:col (- reads standard input)')
    .argument('<files...>', '.vmm files, or - for standard input')
    .option('--explain', "print each model's sites, shapes, nets and the guide the compiler will use")
    .option('--deny-warnings', 'exit 1 on warnings too')
    .option('--json', 'print the results as JSON on stdout (diagnostics with offsets, lines and columns)')
    .action((files: string[], opts: { explain?: boolean; denyWarnings?: boolean; json?: boolean }) => {
      let failed = false;
      let unreadable = false;
      const results: unknown[] = [];
      // Every file is checked, even after one that cannot be read.
      for (const f of files) {
        let src: SourceFile;
        try {
          src = readSource(f);
        } catch (e) {
          if (!(e instanceof UsageError)) throw e;
          unreadable = true;
          if (opts.json) results.push({ file: f, ok: false, error: e.message, diagnostics: [] });
          else process.stderr.write(`vmm: ${e.message}\n`);
          continue;
        }
        const r = frontEnd(src.text);
        const bad = hasErrors(r.diagnostics) || (opts.denyWarnings === true && r.diagnostics.length > 0);
        if (bad) failed = true;
        if (opts.json) {
          results.push({ file: src.path, ok: !bad, diagnostics: r.diagnostics.map((d) => diagnosticJson(src, d)) });
          continue;
        }
        if (r.diagnostics.length) process.stderr.write(renderDiagnostics(src, r.diagnostics) + '\n');
        if (bad) continue;
        if (opts.explain && r.checked) process.stdout.write(`${src.path}:\n${explain(r.checked)}\n`);
        else process.stdout.write(`${src.path}: ok\n`);
      }
      if (opts.json) process.stdout.write(JSON.stringify({ ok: !failed && !unreadable, files: results }, null, 2) + '\n');
      process.exitCode = unreadable ? 2 : failed ? 1 : 0;
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
    .description('format .vmm files canonically (in place, or --check to only report; - formats standard input to stdout)')
    .argument('<files...>', '.vmm files, or - for standard input')
    .option('--check', 'exit 1 if a file is not formatted; change nothing')
    .option('--stdout', 'print the formatted text instead of writing the file')
    .action((files: string[], opts: { check?: boolean; stdout?: boolean }) => {
      let failed = false;
      let unreadable = false;
      for (const f of files) {
        let src: SourceFile;
        try {
          src = readSource(f);
        } catch (e) {
          if (!(e instanceof UsageError)) throw e;
          process.stderr.write(`vmm: ${e.message}\n`);
          unreadable = true;
          continue;
        }
        const { program: p, diagnostics } = parse(src.text);
        if (hasErrors(diagnostics)) {
          process.stderr.write(renderDiagnostics(src, diagnostics) + '\n');
          failed = true;
          continue;
        }
        const out = printProgram(p);
        if (opts.check) {
          if (out !== src.text) {
            process.stdout.write(`${src.path}: not formatted (run vmm fmt ${f})\n`);
            failed = true;
          }
        } else if (opts.stdout || f === '-') process.stdout.write(out);
        else if (out !== src.text) {
          try {
            writeFileSync(f, out);
          } catch (e) {
            const why = fileSystemMessage(e);
            if (!why) throw e;
            process.stderr.write(`vmm: ${why}; the file is left as it was\n`);
            failed = true;
            continue;
          }
          process.stdout.write(`${f}: formatted\n`);
        }
      }
      process.exitCode = unreadable ? 2 : failed ? 1 : 0;
    });

  const compile = program
    .command('compile')
    .description('print the lowered plan: how each site is sampled or summed, which estimator handles it, the objective')
    .argument('<file>', '.vmm file')
    .option('--estimator <name>', `override the estimator (${estimatorKinds().join(', ')})`)
    .option('--k <n>', 'samples per example', limitedFlag('k', '--k'))
    .option('--batch <n>', 'examples per step (for the memory estimate)', limitedFlag('batch', '--batch'))
    .option('--addressing <mode>', 'hard | soft | none (soft: the soft-attention model, as --estimator soft; none: the no-memory control)');
  addEstimatorArgFlags(compile).action((file: string, opts: { estimator?: string; k?: number; batch?: number; addressing?: string }) => {
    const { ir } = compileModel(file, opts);
    if (!ir) {
      process.exitCode = 1;
      return;
    }
    process.stdout.write(describePlan(ir));
    const sizes = sizesOf(ir.train);
    process.stdout.write(`memory: ${describeBudget(estimateBudget(ir, sizes), sizes)}\n`);
    process.exitCode = 0;
  });
}

/** A commander value parser for a flag with a limit of src/check/limits.ts; the error echoes what was typed. */
export function limitedFlag(name: LimitName, flag: string): (v: string) => number {
  return (v) => {
    const r = parseLimited(name, v, flag);
    if (typeof r === 'string') throw new UsageError(r);
    return r;
  };
}

import type { EstimatorArg, IrProgram } from '../ir/types.ts';
import type { SettingOverrides } from '../check/settings.ts';

/** The flag of an estimator argument: `--baseline`, `--temperature`; `control_variate` is `--control-variate`. */
export function argFlag(name: string): { flag: string; key: string } {
  const flag = name.replace(/_/g, '-');
  return { flag: `--${flag}`, key: flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()) };
}

/**
 * The estimators' own arguments as flags, one per argument name of the registry
 * (src/estimators/registry.ts): a number is parsed against its limit, a choice is checked against
 * the estimator the run ends up with (src/check/settings.ts).
 */
export function addEstimatorArgFlags(cmd: Command): Command {
  for (const a of estimatorArgs()) {
    const { flag } = argFlag(a.name);
    if (a.kind === 'number' && a.limit) {
      const limit = a.limit;
      cmd.option(`${flag} <x>`, a.help, (v: string) => {
        const r = parseWithin(limit, v, flag);
        if (typeof r === 'string') throw new UsageError(r);
        return r;
      });
    } else cmd.option(`${flag} <name>`, a.help);
  }
  return cmd;
}

/** The estimator arguments among parsed flags, by argument name. */
export function estimatorArgFlags(flags: object): Record<string, EstimatorArg> {
  const out: Record<string, EstimatorArg> = {};
  for (const a of estimatorArgs()) {
    const v = (flags as Record<string, unknown>)[argFlag(a.name).key];
    if (typeof v === 'string' || typeof v === 'number') out[a.name] = v;
  }
  return out;
}

/** The flags of the settings: the overrides, and the estimator arguments under their own names. */
export type SettingFlags = Omit<SettingOverrides, 'args'>;

/** The overrides the flags give (the estimator arguments gathered by name). */
export function settingOverrides(flags: SettingFlags): SettingOverrides {
  return { ...flags, args: estimatorArgFlags(flags) };
}

/** A refusal of the pipeline after the front end: a setting the model cannot take is misuse of the command; a model too big for the machine is not. */
export function refuse(problem: NonNullable<PipelineResult['problem']>): never {
  throw problem.stage === 'settings' ? new UsageError(problem.message) : new RunError(problem.message);
}

/**
 * A model file through the whole pipeline (src/check/pipeline.ts) at the flags' settings, its
 * diagnostics printed; `ir` is undefined when the file has errors (the caller exits 1). `budget`:
 * the bytes it may use (default: the machine's), or false to leave it to the caller.
 */
export function compileModel(path: string, flags: SettingFlags, opts: { quietWarnings?: boolean; budget?: number | false } = {}) {
  const src = readSource(path);
  const result = compileSource(src.text, { settings: { overrides: settingOverrides(flags) }, budget: opts.budget ?? availableBytes() });
  const shown = opts.quietWarnings ? result.diagnostics.filter((d) => d.severity === 'error') : result.diagnostics;
  if (shown.length) process.stderr.write(renderDiagnostics(src, shown) + '\n');
  if (hasErrors(result.diagnostics) || !result.ir) return { src, result, ir: undefined };
  if (result.problem) refuse(result.problem);
  return { src, result, ir: result.compiled };
}
