/**
 * The front end as one function: parse -> check -> toIr, stopping after the first stage that
 * reported errors (warnings do not stop it). The CLI and `compile()` call this.
 */
import { parse } from '../ast/parse.ts';
import type { Program } from '../ast/types.ts';
import { hasErrors, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type { IrProgram } from '../ir/types.ts';
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
  return { program: parsed.program, checked: c.checked, ...(c.ir ? { ir: c.ir } : {}), diagnostics };
}
