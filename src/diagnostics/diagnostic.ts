/**
 * Diagnostics are data: a stable code, a severity, a message, a primary span and notes that point
 * at second places ("declared here"). Rendering to `file:line:col: error[VMMxxxx]: ...` happens in
 * render.ts; nothing else in the compiler formats positions.
 *
 * Code ranges: 1xxx syntax, 2xxx names/types/shapes/distributions, 3xxx lowering constraints
 * and training settings. The registry of every code with a one-line summary is codes.ts.
 */
import type { Span } from './span.ts';

export type Severity = 'error' | 'warning' | 'note';

export interface DiagnosticNote {
  message: string;
  span?: Span;
}

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  span: Span;
  notes: DiagnosticNote[];
}

export function error(code: string, message: string, span: Span, notes: DiagnosticNote[] = []): Diagnostic {
  return { code, severity: 'error', message, span, notes };
}

export function warning(code: string, message: string, span: Span, notes: DiagnosticNote[] = []): Diagnostic {
  return { code, severity: 'warning', message, span, notes };
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/**
 * A failure inside the compiler itself (a bug), never a user's mistake. The CLI reports it with the
 * stage it happened in and asks for a bug report, instead of printing a stack trace as if it were
 * the user's fault.
 */
export class InternalError extends Error {
  constructor(
    readonly stage: string,
    message: string,
  ) {
    super(`internal error in ${stage}: ${message}`);
    this.name = 'InternalError';
  }
}
