/**
 * Renders diagnostics the way stanc3 and rustc do:
 *
 *     models/x.vmm:7:24: error[VMM2003]: concat: ...
 *        7 | latent z ~ Normal(prior(g(mem[a])))
 *          |                        ^^^^^^^^^
 *     note: ...
 *
 * Positions are computed here from offsets; columns are 1-based and count UTF-16 code units.
 */
import type { Span } from '../ast/types.ts';
import type { Diagnostic } from './diagnostic.ts';

export class SourceFile {
  private readonly lineStarts: number[];
  constructor(
    readonly path: string,
    readonly text: string,
  ) {
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.lineStarts.push(i + 1);
  }

  /** 1-based line and column of an offset (clamped into the file). */
  position(offset: number): { line: number; col: number } {
    const off = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= off) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: off - this.lineStarts[lo]! + 1 };
  }

  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    const end = next === undefined ? this.text.length : next - 1;
    return this.text.slice(start, end).replace(/\r$/, '');
  }
}

function excerpt(src: SourceFile, span: Span): string[] {
  const { line, col } = src.position(span.start);
  const end = src.position(Math.max(span.start, span.end - 1));
  const text = src.lineText(line);
  const width = end.line === line ? Math.max(1, end.col - col + 1) : Math.max(1, text.length - col + 1);
  const gutter = String(line).length;
  const pad = ' '.repeat(gutter);
  return [`${pad} |`, `${line} | ${text}`, `${pad} | ${' '.repeat(col - 1)}${'^'.repeat(width)}`];
}

export function renderDiagnostic(src: SourceFile, d: Diagnostic): string {
  const { line, col } = src.position(d.span.start);
  const out = [`${src.path}:${line}:${col}: ${d.severity}[${d.code}]: ${d.message}`, ...excerpt(src, d.span)];
  for (const n of d.notes) {
    if (n.span) {
      const p = src.position(n.span.start);
      out.push(`${src.path}:${p.line}:${p.col}: note: ${n.message}`, ...excerpt(src, n.span));
    } else {
      out.push(`  = note: ${n.message}`);
    }
  }
  return out.join('\n');
}

/** All diagnostics of one file, in source order, then a summary line. */
export function renderDiagnostics(src: SourceFile, diags: readonly Diagnostic[]): string {
  const sorted = [...diags].sort((a, b) => a.span.start - b.span.start || a.code.localeCompare(b.code));
  const errors = diags.filter((d) => d.severity === 'error').length;
  const warnings = diags.filter((d) => d.severity === 'warning').length;
  const parts = sorted.map((d) => renderDiagnostic(src, d));
  const summary: string[] = [];
  if (errors) summary.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (warnings) summary.push(`${warnings} warning${warnings === 1 ? '' : 's'}`);
  if (summary.length) parts.push(`${src.path}: ${summary.join(', ')}`);
  return parts.join('\n\n');
}
