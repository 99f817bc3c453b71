/**
 * Training settings given outside the file (command-line flags, `compile(source, options)`):
 * the one place they are applied to a checked program, with the same limits as the `train { }`
 * block (src/check/limits.ts) and the same estimator registry and fit rule
 * (src/estimators/registry.ts) the checker uses, so an override cannot produce a program the
 * checker would have refused.
 */
import { limitProblem, type LimitName } from './limits.ts';
import { argProblem, estimatorKinds, estimatorProblem, estimatorSettings, estimatorSpec } from '../estimators/registry.ts';
import { withAddressing } from '../ir/addressing.ts';
import type { AddressProposal, EstimatorArg, IrProgram } from '../ir/types.ts';
import { truncationProblem } from './train.ts';

export interface SettingOverrides {
  /** Any estimator of the registry. */
  estimator?: string;
  k?: number;
  /**
   * 'soft' is the same file as a soft-attention model (src/ir/addressing.ts); 'hard' undoes a
   * file's `soft`; 'none' is its no-memory control (every memory's entries one learned entry).
   */
  addressing?: string;
  /**
   * The estimator's own arguments by name, as its registry entry lists them (`{ baseline: 'nvil' }`
   * for reinforce, `{ temperature: 0.3 }` for relaxed); an argument the estimator does not take is
   * an error.
   */
  args?: Readonly<Record<string, EstimatorArg>>;
  lr?: number;
  batch?: number;
  steps?: number;
  /** `address = topk(k, tail)` from outside the file (`--address topk:32:8`); 'full' removes the file's. */
  address?: AddressProposal | 'full';
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
  let kind = ir.train.estimator.kind;
  let k: number | undefined = ir.train.estimator.k;
  let control = ir.train.control;
  if (o.addressing !== undefined) {
    if (!['hard', 'soft', 'none'].includes(o.addressing)) throw new SettingsError(`addressing is hard, soft or none, got '${o.addressing}'`);
    if (o.addressing === 'soft') kind = 'soft';
    else if (kind === 'soft') kind = 'vimco';
    control = o.addressing === 'none' ? true : undefined;
    if (control && ir.memories.length === 0) throw new SettingsError('addressing none is the no-memory control of a model with a memory; this model has none');
  }
  if (o.estimator !== undefined) {
    const spec = estimatorSpec(o.estimator);
    if (!spec) throw new SettingsError(`unknown estimator '${o.estimator}' (expected one of ${estimatorKinds().join(', ')})`);
    if (spec.kind !== kind && o.k === undefined) k = undefined;
    kind = spec.kind;
  }
  const spec = estimatorSpec(kind);
  if (!spec) throw new SettingsError(`unknown estimator '${kind}' (expected one of ${estimatorKinds().join(', ')})`);
  const given = checked('k', 'k', o.k);
  if (given !== undefined) k = given;
  else if (k !== undefined && k < (spec.args.find((a) => a.kind === 'count')?.min ?? 1)) k = undefined;
  // The file's arguments go on where the estimator still takes them; the given ones replace them.
  const args: Record<string, EstimatorArg> = { ...ir.train.estimator.args };
  for (const [name, v] of Object.entries(o.args ?? {})) {
    if (v === undefined) continue;
    const problem = argProblem(spec, name, v);
    if (problem) throw new SettingsError(problem);
    args[name] = typeof v === 'string' && spec.args.find((a) => a.name === name)?.kind === 'number' ? Number(v) : v;
  }
  const est = estimatorSettings(kind, { ...(k !== undefined ? { k } : {}), args });
  const train = { ...ir.train, estimator: est, optimizer: { ...ir.train.optimizer } };
  if (control) train.control = true;
  else delete train.control;
  const lr = checked('lr', 'lr', o.lr);
  if (lr !== undefined) train.optimizer.lr = lr;
  const batch = checked('batch', 'batch', o.batch);
  if (batch !== undefined) train.batch = batch;
  const steps = checked('steps', 'steps', o.steps);
  if (steps !== undefined) train.steps = steps;
  // The soft-attention variant of a file reads every entry by weight: a file's truncated proposal
  // is for its hard variant (vmm compare trains both from one file).
  if (o.address === 'full' || (kind === 'soft' && o.address === undefined)) delete train.address;
  else if (o.address !== undefined) {
    const k = checked('topk', 'address topk k', o.address.k)!;
    const tail = checked('tail', 'address tail', o.address.tail)!;
    const refresh = o.address.refresh === undefined ? undefined : checked('refresh', 'address refresh', o.address.refresh)!;
    const probe = o.address.probe === undefined ? undefined : checked('probe', 'address probe', o.address.probe)!;
    train.address = { kind: 'topk', k, tail, ...(refresh !== undefined ? { refresh } : {}), ...(probe !== undefined ? { probe } : {}) };
  }
  const out = { ...ir, train };
  const problem = estimatorProblem(out) ?? truncationProblem(withAddressing(out));
  if (problem) throw new SettingsError(problem);
  return withAddressing(out);
}

