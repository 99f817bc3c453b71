/**
 * The front end as one function: parse -> check -> toIr -> the memory budget, stopping after the
 * first stage that reported errors (warnings do not stop it). The CLI and `compile()` call this.
 * The budget is checked at the file's own training settings against DEFAULT_MAX_BYTES; a caller
 * that changes the settings or knows the machine calls `budgetProblem` again (src/cli/).
 */
import { parse } from '../ast/parse.ts';
import type { Program } from '../ast/types.ts';
import { error, hasErrors, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type { IrProgram } from '../ir/types.ts';
import { budgetProblem, sizesOf } from './budget.ts';
import { check } from './check.ts';
import type { CheckedProgram } from './types.ts';

export interface FrontEndResult {
  program?: Program;
  checked?: CheckedProgram;
  ir?: IrProgram;
  diagnostics: Diagnostic[];
}

export function frontEnd(source: string): FrontEndResult {
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
