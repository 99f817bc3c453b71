/**
 * The estimators vmm knows: one list of whole definitions (./spec.ts), each exported by its own
 * module. The checker, the settings and flags, the printers, the lowering and the trainer look an
 * estimator up here by name and read its entry; adding an estimator is its module and one line in
 * `SPECS` (docs/extending.md, "A new estimator"), and a program (or a test) may register one more
 * with `registerEstimator`.
 */
import type { EstimatorArg, EstimatorKind, EstimatorSettings, IrProgram } from '../ir/types.ts';
import { outsideLimit, type Limit } from '../ir/limits.ts';
import { enumerateSpec } from './enumerate.ts';
import { err } from './fits.ts';
import { iwaeSpec } from './iwae.ts';
import { reinforceSpec } from './reinforce.ts';
import { relaxedSpec } from './relaxed.ts';
import { rlooSpec } from './rloo.ts';
import { rwsSpec } from './rws.ts';
import { softSpec } from './soft.ts';
import type { EstimatorSpec, Misfit } from './spec.ts';
import type { Estimator } from './types.ts';
import { vimcoSpec } from './vimco.ts';

export type { ArgSpec, EstimatorSpec, HandlerName, LatentNote, Misfit, PlanText } from './spec.ts';
export { argValue } from './spec.ts';
export { scoreFunctionSites } from './fits.ts';

const SPECS: EstimatorSpec[] = [vimcoSpec, reinforceSpec, enumerateSpec, softSpec, relaxedSpec, rwsSpec, iwaeSpec, rlooSpec];

const BY_KIND = new Map(SPECS.map((s) => [s.kind, s]));

/**
 * Adds an estimator to the registry (a test's or a program's own); returns the function that
 * removes it again. Its name must be new, and an argument it shares with another estimator must be
 * of the same kind (one command-line flag serves both).
 */
export function registerEstimator(spec: EstimatorSpec): () => void {
  if (BY_KIND.has(spec.kind)) throw new Error(`registerEstimator: an estimator '${spec.kind}' is registered already`);
  for (const a of spec.args) {
    const other = estimatorArgs().find((b) => b.name === a.name);
    if (a.kind === 'count' ? a.name !== 'k' : a.name === 'k') throw new Error(`registerEstimator: '${spec.kind}': the count argument is k, and k is a count`);
    if (other && other.kind !== a.kind) throw new Error(`registerEstimator: '${spec.kind}' argument '${a.name}' is a ${a.kind}, but it is a ${other.kind} of ${other.estimators.join(', ')}`);
  }
  SPECS.push(spec);
  BY_KIND.set(spec.kind, spec);
  return () => {
    const i = SPECS.indexOf(spec);
    if (i >= 0) SPECS.splice(i, 1);
    if (BY_KIND.get(spec.kind) === spec) BY_KIND.delete(spec.kind);
  };
}

export function estimatorSpecs(): readonly EstimatorSpec[] {
  return SPECS;
}

export function estimatorKinds(): EstimatorKind[] {
  return SPECS.map((s) => s.kind);
}

export function estimatorSpec(kind: string): EstimatorSpec | undefined {
  return BY_KIND.get(kind);
}

/** An argument other than k, over every estimator that takes it: one flag, one key of the overrides. */
export interface SharedArg {
  name: string;
  kind: 'choice' | 'number';
  /** The estimators that take it, in registry order. */
  estimators: string[];
  /** For `--help`: each estimator's choices or meaning, `vimco: geometric | arithmetic; reinforce: ...`. */
  help: string;
  /** The limit of a number (the first estimator's; the command line parses with it). */
  limit?: Limit;
}

/** The arguments of all estimators other than k, each once. */
export function estimatorArgs(): SharedArg[] {
  const out = new Map<string, SharedArg>();
  for (const spec of SPECS) {
    for (const a of spec.args) {
      if (a.kind === 'count') continue;
      const help = `${spec.kind}: ${a.kind === 'choice' ? (a.help ?? a.choices.join(' | ')) : a.help}`;
      const seen = out.get(a.name);
      if (seen) {
        seen.estimators.push(spec.kind);
        seen.help += `; ${help}`;
      } else out.set(a.name, { name: a.name, kind: a.kind, estimators: [spec.kind], help, ...(a.kind === 'number' ? { limit: a.limit } : {}) });
    }
  }
  return [...out.values()];
}

/** Why `v` is not a value of argument `name` of `spec` (undefined when it is). */
export function argProblem(spec: EstimatorSpec, name: string, v: EstimatorArg): string | undefined {
  const a = spec.args.find((x) => x.name === name);
  if (!a || a.kind === 'count') return `${spec.kind} takes no ${name}`;
  if (a.kind === 'choice') {
    return typeof v === 'string' && a.choices.includes(v) ? undefined : `the ${spec.kind} ${name} is ${a.choices.join(' | ')}, got '${String(v)}'`;
  }
  const n = typeof v === 'number' ? v : Number(v);
  const p = typeof v === 'string' && v.trim() === '' ? `must be a number` : outsideLimit(a.limit, n);
  return p ? `${name} ${p}, got ${String(v)}` : undefined;
}

/**
 * Settings of estimator `kind` with every argument filled: `given` where it gives one (k, and
 * arguments the estimator takes, of the right type), else the estimator's default. An argument of
 * another estimator is dropped, so switching an estimator keeps only what the new one takes.
 */
export function estimatorSettings(kind: string, given: { k?: number; args?: Readonly<Record<string, EstimatorArg>> } = {}): EstimatorSettings {
  const spec = estimatorSpec(kind);
  if (!spec) throw new Error(`estimatorSettings: unknown estimator '${kind}'`);
  const args: Record<string, EstimatorArg> = {};
  for (const a of spec.args) {
    if (a.kind === 'count') continue;
    const v = given.args?.[a.name];
    args[a.name] = v !== undefined && typeof v === typeof a.default && (a.kind !== 'choice' || a.choices.includes(v as string)) ? v : a.default;
  }
  return { kind: spec.kind, k: given.k ?? spec.defaultK, args };
}

/** The settings with every argument the estimator takes filled in (settings from older code may lack some). */
export function filledSettings(s: EstimatorSettings): EstimatorSettings {
  const spec = estimatorSpec(s.kind);
  if (!spec) return s;
  const complete = spec.args.every((a) => a.kind === 'count' || s.args?.[a.name] !== undefined);
  return complete ? s : estimatorSettings(s.kind, { k: s.k, args: { ...(s.args ?? {}) } });
}

/** The problems of training `ir` with its estimator settings (errors and warnings). */
export function estimatorMisfits(ir: IrProgram): Misfit[] {
  const s = ir.train.estimator;
  const spec = estimatorSpec(s.kind);
  if (!spec) return [err('VMM3003', `unknown estimator \`${s.kind}\` (expected ${estimatorKinds().map((k) => `\`${k}\``).join(', ')})`)];
  return spec.fits(ir, filledSettings(s));
}

/** The first error of `estimatorMisfits` as one sentence, or undefined when the estimator fits. */
export function estimatorProblem(ir: IrProgram): string | undefined {
  return estimatorMisfits(ir).find((m) => m.severity === 'error')?.message;
}

/** Builds the estimator a program's settings ask for. */
export function makeEstimator(s: EstimatorSettings): Estimator {
  const spec = estimatorSpec(s.kind);
  if (!spec) throw new Error(`makeEstimator: unknown estimator kind '${s.kind}'`);
  return spec.make(filledSettings(s));
}
