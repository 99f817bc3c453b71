/**
 * Prints expressions, types and statements in .vmm syntax: for messages ("`g(mem[a])`"), for the
 * guide shown by `--explain` and for derived guides. Expressions and types use the formatter's printer.
 */
import { printExpr, printType } from '../ast/print.ts';
import type { Call, Expr, GuideBlock, GuideSite, LetStmt, NetDecl, SiteStmt, TypeExpr } from '../ast/types.ts';

/** An expression in .vmm syntax with the fewest parentheses (the formatter's printer). */
export function formatExpr(e: Expr): string {
  return printExpr(e);
}

export function formatCall(c: Call): string {
  const args = c.args.map((a) => (a.name ? `${a.name.name}: ${formatExpr(a.value)}` : formatExpr(a.value)));
  return `${c.callee.name}(${args.join(', ')})`;
}

export function formatTypeExpr(t: TypeExpr): string {
  return printType(t);
}

export function formatNet(n: NetDecl): string {
  return `net ${n.name.name} = ${n.stages.map(formatExpr).join(' >> ')}`;
}

export function formatLet(l: LetStmt): string {
  return `let ${l.name.name} = ${formatExpr(l.value)}`;
}

export function formatSite(s: SiteStmt): string {
  const ty = s.type ? ` : ${formatTypeExpr(s.type)}` : '';
  return `${s.keywords.join(' ')} ${s.name.name}${ty} ~ ${formatCall(s.dist)}`;
}

export function formatGuideSite(s: GuideSite): string {
  return `${s.name.name} ~ ${formatCall(s.dist)}`;
}

/** The guide block, one statement per line, indented by `indent`. */
export function formatGuide(g: GuideBlock, indent = ''): string[] {
  const lines = [`${indent}guide {`];
  for (const s of g.body) lines.push(`${indent}  ${s.kind === 'Let' ? formatLet(s) : formatGuideSite(s)}`);
  lines.push(`${indent}}`);
  return lines;
}
