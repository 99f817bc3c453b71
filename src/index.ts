/**
 * The library API: `compile(source, options) -> Trainer`, the same pipeline the `vmm` command runs
 * (parse -> check -> IR -> lower, composed in src/driver/), for use from TypeScript:
 *
 *   import { compile, selectBackend } from 'vmm';
 *   await selectBackend();
 *   const trainer = compile(readFileSync('models/vma_mnist.vmm', 'utf8'), { estimator: 'soft' });
 *   const metrics = trainer.step(batch);   // batch: RawBatch (see src/data/bind.ts)
 *
 * An input used again across steps (a fixed memory, a batch) can be a tensor the caller keeps
 * on the device ({ name, data: tensor, shape, plates }, a DeviceInput): no upload per step.
 */
export { selectBackend, type BackendInfo, type BackendName } from './runtime/backend.ts';
export { Trainer, type StepMetrics } from './runtime/trainer.ts';
export { frontEnd } from './check/pipeline.ts';
export { describePlan } from './lower/plan.ts';
export type { IrProgram } from './ir/types.ts';
export type { Diagnostic } from './diagnostics/diagnostic.ts';
export type { RawBatch } from './data/bind.ts';
export type { DeviceInput, RawInput } from './lower/compile.ts';
export type { InputBatch } from './lower/compile.ts';
// load, train, evaluate, saveWeights/loadWeights (safetensors), sample, data sets: src/driver/library.ts.
export * from './driver/library.ts';
// compare: variants of a model trained over seeds and evaluated on the same targets (vmm compare).
export * from './driver/compare.ts';

export { compile, compileIr, CompileError, type CompileOptions } from './driver/compile.ts';
export { applySettings, SettingsError, type SettingOverrides } from './check/settings.ts';
