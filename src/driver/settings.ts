/**
 * Training settings given outside the file (command-line flags, `compile(source, options)`):
 * the one place they are applied to a checked program, with the same limits as the `train { }`
 * block (src/check/limits.ts) and the same estimator registry and fit rule
 * (src/estimators/registry.ts) the checker uses, so an override cannot produce a program the
 * checker would have refused.
 */
import { limitProblem, type LimitName } from '../check/limits.ts';
import { estimatorKinds, estimatorProblem, estimatorSpec } from '../estimators/registry.ts';
import { withAddressing } from '../ir/soft_attention.ts';
import type { EstimatorKind, EstimatorSettings, IrProgram } from '../ir/types.ts';

export interface SettingOverrides {
  /** Any estimator of the registry. */
  estimator?: string;
  k?: number;
  /**
   * 'soft' is the same file as a soft-attention model (src/ir/soft_attention.ts); 'hard' undoes a
   * file's `soft`; 'none' is its no-memory control (every memory's entries one learned entry).
   */
  addressing?: string;
  /** vimco: geometric | arithmetic; reinforce: none | running | nvil. */
  baseline?: string;
  temperature?: number;
  lr?: number;
  batch?: number;
  steps?: number;
}

/** A setting the program cannot take: the user's to fix (one line, never a bug). */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

function checked(name: LimitName, flag: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const p = limitProblem(name, v);
  if (p) throw new SettingsError(`${flag} ${p}, got ${v}`);
  return v;
}

/** The program with the overrides applied; throws SettingsError when one does not fit it. */
export function applySettings(ir: IrProgram, o: SettingOverrides): IrProgram {
  const est: EstimatorSettings = { ...ir.train.estimator };
  let control = ir.train.control;
  if (o.addressing !== undefined) {
    if (!['hard', 'soft', 'none'].includes(o.addressing)) throw new SettingsError(`addressing is hard, soft or none, got '${o.addressing}'`);
    if (o.addressing === 'soft') est.kind = 'soft';
    else if (est.kind === 'soft') est.kind = 'vimco';
    control = o.addressing === 'none' ? true : undefined;
    if (control && ir.memories.length === 0) throw new SettingsError('addressing none is the no-memory control of a model with a memory; this model has none');
  }
  if (o.estimator !== undefined) {
    const spec = estimatorSpec(o.estimator);
    if (!spec) throw new SettingsError(`unknown estimator '${o.estimator}' (expected one of ${estimatorKinds().join(', ')})`);
    if (spec.kind !== est.kind && o.k === undefined) est.k = spec.defaultK;
    est.kind = spec.kind as EstimatorKind;
  }
  const k = checked('k', 'k', o.k);
  if (k !== undefined) est.k = k;
  else if (est.kind === 'vimco' && est.k < 2) est.k = estimatorSpec('vimco')!.defaultK;
  if (o.baseline !== undefined) {
    const arg = estimatorSpec(est.kind)?.args.find((a) => a.name === 'baseline');
    if (!arg || arg.kind !== 'choice') throw new SettingsError(`${est.kind} takes no baseline`);
    if (!arg.choices.includes(o.baseline)) throw new SettingsError(`the ${est.kind} baseline is ${arg.choices.join(' | ')}, got '${o.baseline}'`);
    (est as unknown as Record<string, unknown>)[arg.field] = o.baseline;
  }
  const t = checked('temperature', 'temperature', o.temperature);
  if (t !== undefined) est.temperature = t;
  const train = { ...ir.train, estimator: est, optimizer: { ...ir.train.optimizer } };
  if (control) train.control = true;
  else delete train.control;
  const lr = checked('lr', 'lr', o.lr);
  if (lr !== undefined) train.optimizer.lr = lr;
  const batch = checked('batch', 'batch', o.batch);
  if (batch !== undefined) train.batch = batch;
  const steps = checked('steps', 'steps', o.steps);
  if (steps !== undefined) train.steps = steps;
  const out = { ...ir, train };
  const problem = estimatorProblem(out);
  if (problem) throw new SettingsError(problem);
  return withAddressing(out);
}

