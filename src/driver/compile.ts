/**
 * The pipeline composed once (stanc3's driver): parse -> check -> IR (src/check/pipeline.ts), the
 * settings given outside the file (./settings.ts), the memory budget at those settings, then the
 * lowering into a trainer. The library's `compile` is this function; the CLI runs the same steps
 * with its flags.
 */
import { budgetProblem, sizesOf } from '../check/budget.ts';
import { frontEnd } from '../check/pipeline.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { renderDiagnostics, SourceFile } from '../diagnostics/render.ts';
import type { IrProgram } from '../ir/types.ts';
import { BackendError, currentBackend } from '../runtime/backend.ts';
import { Trainer } from '../runtime/trainer.ts';
import { applySettings, SettingsError, type SettingOverrides } from './settings.ts';

export interface CompileOptions extends SettingOverrides {
  seed?: number;
  /** File name used in rendered diagnostics. */
  path?: string;
}

/** The model has errors: `diagnostics` holds them, `message` has them rendered. */
export class CompileError extends Error {
  override name = 'CompileError';
  constructor(
    readonly diagnostics: Diagnostic[],
    rendered: string,
  ) {
    super(rendered);
  }
}

/** The checked program with the options applied; throws CompileError on any error. */
export function compileIr(source: string, options: CompileOptions = {}): IrProgram {
  const src = new SourceFile(options.path ?? '<source>', source);
  const r = frontEnd(source);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.ir) throw new CompileError(errors, renderDiagnostics(src, errors));
  let ir: IrProgram;
  try {
    ir = applySettings(r.ir, options);
  } catch (e) {
    if (e instanceof SettingsError) throw new CompileError([], e.message);
    throw e;
  }
  // A caller's batch or k can push a model past what the file's own settings allowed.
  const budget = budgetProblem(ir, sizesOf(ir.train));
  if (budget) throw new CompileError([], budget.message);
  return ir;
}

/** Compiles a .vmm source to a trainer; throws CompileError with rendered diagnostics on errors. */
export function compile(source: string, options: CompileOptions = {}): Trainer {
  const ir = compileIr(source, options);
  // Choosing a backend loads wasm or native TensorFlow, which is asynchronous: `load()` does it.
  if (!currentBackend()) throw new BackendError('compile() needs a backend: `await selectBackend()` first, or use `await load(source)`, which selects one');
  return new Trainer(ir, options.seed ?? 1);
}
