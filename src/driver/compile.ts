/**
 * The library's compiler: the pipeline (src/check/pipeline.ts, `compileSource`: parse -> check ->
 * IR -> the options' settings -> addressing -> budget), its refusals as one CompileError, then the
 * lowering into a trainer. The CLI runs the same `compileSource` with its flags.
 */
import { compileSource } from '../check/pipeline.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { renderDiagnostics, SourceFile } from '../diagnostics/render.ts';
import type { IrProgram } from '../ir/types.ts';
import { BackendError, currentBackend } from '../runtime/backend.ts';
import { Trainer } from '../runtime/trainer.ts';
import type { SettingOverrides } from '../check/settings.ts';

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
  const r = compileSource(source, { settings: { overrides: options } });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.ir) throw new CompileError(errors, renderDiagnostics(src, errors));
  if (r.problem || !r.compiled) throw new CompileError([], r.problem?.message ?? 'the program did not compile');
  return r.compiled;
}

/** Compiles a .vmm source to a trainer; throws CompileError with rendered diagnostics on errors. */
export function compile(source: string, options: CompileOptions = {}): Trainer {
  const ir = compileIr(source, options);
  // Choosing a backend loads wasm or native TensorFlow, which is asynchronous: `load()` does it.
  if (!currentBackend()) throw new BackendError('compile() needs a backend: `await selectBackend()` first, or use `await load(source)`, which selects one');
  return new Trainer(ir, options.seed ?? 1);
}
