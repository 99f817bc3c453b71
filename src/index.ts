/**
 * The library API: `compile(source, options) -> Trainer`, the same pipeline the `vmm` command runs
 * (parse -> check -> IR -> lower), for use from TypeScript:
 *
 *   import { compile, selectBackend } from 'vmm';
 *   await selectBackend();
 *   const trainer = compile(readFileSync('models/vma_mnist.vmm', 'utf8'), { estimator: 'soft' });
 *   const metrics = trainer.step(batch);   // batch: RawBatch (see src/runtime/data_source.ts)
 */
import { frontEnd } from './check/pipeline.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';
import { renderDiagnostics, SourceFile } from './diagnostics/render.ts';
import type { EstimatorKind, IrProgram } from './ir/types.ts';
import { estimatorProblem } from './estimators/registry.ts';
import { Trainer } from './runtime/trainer.ts';

export { selectBackend, type BackendInfo, type BackendName } from './runtime/backend.ts';
export { Trainer, type StepMetrics } from './runtime/trainer.ts';
export { frontEnd } from './check/pipeline.ts';
export { describePlan } from './lower/plan.ts';
export type { IrProgram } from './ir/types.ts';
export type { Diagnostic } from './diagnostics/diagnostic.ts';
export type { RawBatch } from './runtime/data_source.ts';

export interface CompileOptions {
  /** Overrides the file's `train { estimator = ... }`. */
  estimator?: EstimatorKind;
  /** Samples per example. */
  k?: number;
  /** 'soft' compiles the same model with soft-attention reads. */
  addressing?: 'hard' | 'soft';
  lr?: number;
  batch?: number;
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

/** Applies options to a program's training settings. */
export function withOptions(ir: IrProgram, o: CompileOptions): IrProgram {
  const estimator = { ...ir.train.estimator };
  if (o.addressing === 'soft') estimator.kind = 'soft';
  if (o.estimator) estimator.kind = o.estimator;
  if (o.k !== undefined) estimator.k = o.k;
  const optimizer = { ...ir.train.optimizer, ...(o.lr !== undefined ? { lr: o.lr } : {}) };
  return { ...ir, train: { ...ir.train, estimator, optimizer, ...(o.batch !== undefined ? { batch: o.batch } : {}) } };
}

/** Compiles a .vmm source to a trainer; throws CompileError with rendered diagnostics on errors. */
export function compile(source: string, options: CompileOptions = {}): Trainer {
  const src = new SourceFile(options.path ?? '<source>', source);
  const r = frontEnd(source);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.ir) throw new CompileError(errors, renderDiagnostics(src, errors));
  const ir = withOptions(r.ir, options);
  const problem = estimatorProblem(ir);
  if (problem) throw new CompileError([], problem);
  return new Trainer(ir, options.seed ?? 1);
}
