/**
 * What an estimator says about itself: one `EstimatorSpec` is the whole definition, read by the
 * checker (its arguments, with defaults and limits, and which models it fits), the settings given
 * outside the file and the command-line flags (the same arguments), the printers (`vmm check
 * --explain`, `vmm compile`'s plan), the lowering (the trace handlers it needs) and the trainer (its
 * constructor). Each estimator module exports its spec; src/estimators/registry.ts lists them.
 * Nothing else switches on an estimator's name (docs/extending.md, "A new estimator").
 */
import type { EstimatorArg, EstimatorSettings, IrProgram, IrSite } from '../ir/types.ts';
import type { Limit } from '../ir/limits.ts';
import type { Estimator } from './types.ts';

/**
 * An argument of an estimator in the train block, `vimco(k: 4, baseline: geometric)`; the same
 * name is its command-line flag (`--baseline`) and its key in `compile(source, { args })`.
 */
export type ArgSpec =
  /** The samples per example, every estimator's; `below`: the diagnostic when a count under `min` is written (its code and why). */
  | { name: 'k'; kind: 'count'; min: number; below?: { code: string; why: string } }
  /** One of a few names. */
  | { name: string; kind: 'choice'; choices: readonly string[]; default: string; help?: string }
  /** A number within `limit` (checked in the file and on the command line alike). */
  | { name: string; kind: 'number'; limit: Limit; default: number; help: string };

/** Why an estimator does not fit a model; `site` names the latent a note points at. */
export interface Misfit {
  code: string;
  severity: 'error' | 'warning';
  message: string;
  notes: { message: string; site?: string }[];
  /** Reported at the estimator's `k:` argument rather than at the estimator. */
  atK?: boolean;
}

/** Handler names of src/lower/handlers.ts (the lowering maps each to its handler). */
export type HandlerName = 'enumerate' | 'soft' | 'relaxed' | 'wake';

/** A latent drawn without a pathwise gradient, as `vmm check --explain` describes it. */
export interface LatentNote {
  name: string;
  /** What it is: "one of the 20 entries of `mem`", "discrete Bernoulli", ... */
  what: string;
  /** How many values it takes, printed ('' when not known). */
  values: string;
}

/**
 * The estimator's lines in `vmm compile`'s plan (src/lower/plan.ts); each left out takes the
 * plan's default: discrete latents sampled K times from q with `signal`, reads run on the K sampled
 * entries, the objective the K-sample bound.
 */
export interface PlanText {
  /** How a latent is drawn, when the estimator draws it its own way (undefined: the default). */
  site?(s: EstimatorSettings, site: IrSite): string | undefined;
  /** The learning signal of a sampled discrete latent. */
  signal?(s: EstimatorSettings): string;
  /** What a memory read `g(mem[a])` runs on. */
  reads?: string;
  /** The objective's lines, replacing the K-sample bound. */
  objective?(s: EstimatorSettings, memory: boolean): string[];
  /** A line after the K-sample bound: the surrogate whose gradient is the estimator. */
  surrogate?(s: EstimatorSettings): string;
}

export interface EstimatorSpec {
  kind: string;
  args: readonly ArgSpec[];
  /** Samples per example when the file gives no k. */
  defaultK: number;
  /** The trace handlers it needs, top of the stack first. */
  handlers: readonly HandlerName[];
  /** What the lowering hands it: K-sample terms, or terms per enumerated value. */
  terms: 'sampled' | 'enumerated';
  /** A one-line summary for `--help` and the editor. */
  summary: string;
  /** The problems of training `ir` with it (errors and warnings); `s` has every argument filled. */
  fits(ir: IrProgram, s: EstimatorSettings): Misfit[];
  /** Its estimator; `s` has every argument filled and checked. */
  make(s: EstimatorSettings): Estimator;
  /** `vmm check --explain`: how the gradient reaches the guide of a latent without a pathwise gradient. */
  explain(s: EstimatorSettings, latent: LatentNote): string;
  plan?: PlanText;
  /**
   * The PyTorch emission (`vmm export pytorch`, src/export/torch/): a Python function
   * `estimate(t, state, args)` over a vmm_runtime.Trace `t` (its terms by name: `t.term('logP')`,
   * `'logQ'`, `'logQScore'`, `'logQEnum'`, each [K, B] or [E, K, B]; `t.baseline` [B] for a learned
   * baseline) returning `{'surrogate', 'bound', 'state'}` and optionally `'extra_loss'`, as `estimate`
   * does. Absent: a model trained with the estimator is not exported (VMM3040).
   */
  torch?: string;
}

/** The value of argument `name` of filled settings (src/estimators/registry.ts fills them). */
export function argValue(s: EstimatorSettings, name: string): EstimatorArg {
  const v = s.args[name];
  if (v === undefined) throw new Error(`${s.kind}: no argument '${name}' in the settings (fill them with estimatorSettings)`);
  return v;
}
