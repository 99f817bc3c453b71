/**
 * The pipeline composed once (stanc3's driver): parse -> check -> IR -> the settings given outside
 * the file -> the addressing transform -> the memory budget, stopping at the first stage that
 * failed. `compileSource` is the one function that runs it, for the library (src/driver/compile.ts),
 * every command of the CLI (src/cli/) and a saved run opened again (src/jobs/run_dir.ts,
 * `irOfRun`); `frontEnd` is its first half (parse -> check -> IR, with the budget at the file's own
 * settings as a located diagnostic), for `vmm check` and the language server.
 *
 * The front end is a pure function of the source (and of the estimators registered), so its result
 * is kept for the last few sources: a command that meets one model several times (`vmm compare`:
 * the flags' budget, each variant, each run's evaluation) parses and checks it once.
 */
import { parse } from '../ast/parse.ts';
import type { Program } from '../ast/types.ts';
import { error, hasErrors, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { estimatorKinds } from '../estimators/registry.ts';
import { withAddressing } from '../ir/addressing.ts';
import type { IrProgram, TrainSettings } from '../ir/types.ts';
import { budgetProblem, sizesOf } from './budget.ts';
import { check } from './check.ts';
import { applySettings, SettingsError, type SettingOverrides } from './settings.ts';
import type { CheckedProgram } from './types.ts';

export interface FrontEndResult {
  program?: Program;
  checked?: CheckedProgram;
  ir?: IrProgram;
  diagnostics: Diagnostic[];
}

/** The last few front-end results, by source; `registry` is the estimators they were checked against. */
const recent: { source: string; registry: string; result: FrontEndResult }[] = [];
const RECENT = 16;

/** Parse -> check -> IR (and the budget at the file's own settings); stops after the first stage with errors. */
export function frontEnd(source: string): FrontEndResult {
  const registry = estimatorKinds().join(',');
  const i = recent.findIndex((r) => r.source === source && r.registry === registry);
  if (i >= 0) {
    const [hit] = recent.splice(i, 1);
    recent.unshift(hit!);
    return hit!.result;
  }
  const result = runFrontEnd(source);
  recent.unshift({ source, registry, result });
  recent.length = Math.min(recent.length, RECENT);
  return result;
}

function runFrontEnd(source: string): FrontEndResult {
  const parsed = parse(source);
  if (hasErrors(parsed.diagnostics)) return { program: parsed.program, diagnostics: parsed.diagnostics };
  const c = check(parsed.program);
  const diagnostics = [...parsed.diagnostics, ...c.diagnostics];
  if (!c.checked || hasErrors(c.diagnostics)) return { program: parsed.program, diagnostics };
  const ir = c.ir;
  if (!ir) return { program: parsed.program, checked: c.checked, diagnostics };
  const tooBig = budgetDiagnostic(parsed.program, ir);
  if (tooBig) return { program: parsed.program, checked: c.checked, diagnostics: [...diagnostics, tooBig] };
  return { program: parsed.program, checked: c.checked, ir, diagnostics };
}

/** VMM3020 when the model cannot fit at its own training settings, at the net or param to blame (else the train block). */
export function budgetDiagnostic(program: Program, ir: IrProgram, maxBytes?: number): Diagnostic | undefined {
  const problem = budgetProblem(ir, sizesOf(ir.train), maxBytes);
  if (!problem) return undefined;
  const c = problem.culprit;
  const decl = c && program.items.find((i) => (i.kind === 'Net' || i.kind === 'Param') && i.kind.toLowerCase() === c.kind && i.name.name === c.name);
  const train = program.items.find((i) => i.kind === 'Train');
  const header = program.items.find((i) => i.kind === 'ModelHeader');
  const span = decl && 'name' in decl ? decl.name.span : (train?.span ?? header?.span ?? { start: 0, end: 0 });
  return error('VMM3020', problem.message, span);
}

/** Where a program's settings come from besides its file's `train { }` block. */
export type PipelineSettings =
  /** Overrides (command-line flags, `compile(source, options)`), checked as the train block is (./settings.ts). */
  | { overrides: SettingOverrides }
  /** A run's saved training settings (src/jobs/run_dir.ts), taken as they were checked then. */
  | { train: TrainSettings };

export interface PipelineOptions {
  settings?: PipelineSettings;
  /**
   * The memory the program may use, in bytes (undefined: DEFAULT_MAX_BYTES); `false` skips the
   * budget, for a caller that checks it once it knows the machine (`vmm train` after choosing the
   * backend) or a run that was checked when it started.
   */
  budget?: number | false;
}

export interface PipelineResult extends FrontEndResult {
  /** The program at its settings with the addressing transform applied, when every stage passed. */
  compiled?: IrProgram;
  /** Why a stage after the front end refused the program (one line, the user's to fix): the settings do not fit it, or it does not fit in memory. */
  problem?: { stage: 'settings' | 'budget'; message: string };
}

/** The whole pipeline: parse -> check -> IR -> settings -> addressing -> budget. */
export function compileSource(source: string, o: PipelineOptions = {}): PipelineResult {
  const front = frontEnd(source);
  if (!front.ir || hasErrors(front.diagnostics)) return front;
  let ir: IrProgram = front.ir;
  const settings = o.settings;
  if (settings && 'overrides' in settings) {
    try {
      ir = applySettings(ir, settings.overrides);
    } catch (e) {
      if (!(e instanceof SettingsError)) throw e;
      return { ...front, problem: { stage: 'settings', message: e.message } };
    }
  } else if (settings) ir = { ...ir, train: settings.train };
  ir = withAddressing(ir);
  if (o.budget !== false) {
    // The settings can push a model past what the file's own settings allowed.
    const budget = budgetProblem(ir, sizesOf(ir.train), o.budget);
    if (budget) return { ...front, problem: { stage: 'budget', message: budget.message } };
  }
  return { ...front, compiled: ir };
}
