/** Shared helpers for the parser tests: model files, span walking, the round-trip property. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { parse } from '../../src/ast/parse.ts';
import { printProgram, stripMeta } from '../../src/ast/print.ts';
import type { Program, Span } from '../../src/ast/types.ts';

export const modelsDir = fileURLToPath(new URL('../../models/', import.meta.url));

/** Every `models/*.vmm` as [file name, source]. */
export function modelFiles(): [string, string][] {
  return readdirSync(modelsDir)
    .filter((f) => f.endsWith('.vmm'))
    .sort()
    .map((f) => [f, readFileSync(modelsDir + f, 'utf8')]);
}

function isSpan(x: unknown): x is Span {
  return typeof x === 'object' && x !== null && typeof (x as Span).start === 'number' && typeof (x as Span).end === 'number';
}

/**
 * Problems with the spans of an AST: every node span lies inside the source and inside its
 * parent's span; names and numbers span exactly their text. Returns messages (empty when fine).
 */
export function spanProblems(program: Program, source: string): string[] {
  const problems: string[] = [];
  const visit = (node: unknown, parent: Span, path: string): void => {
    if (Array.isArray(node)) {
      node.forEach((n, i) => visit(n, parent, `${path}[${i}]`));
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const rec = node as Record<string, unknown>;
    let own = parent;
    for (const key of ['span', 'elemSpan', 'keywordSpan']) {
      const s = rec[key];
      if (s === undefined) continue;
      if (!isSpan(s)) {
        problems.push(`${path}.${key} is not a span`);
        continue;
      }
      if (!(0 <= s.start && s.start <= s.end && s.end <= source.length)) problems.push(`${path}.${key} ${s.start}..${s.end} outside the source`);
      if (s.start < parent.start || s.end > parent.end) problems.push(`${path}.${key} ${s.start}..${s.end} outside its parent ${parent.start}..${parent.end}`);
      if (key === 'span') own = s;
    }
    const text = isSpan(rec['span']) ? source.slice(rec['span'].start, rec['span'].end) : undefined;
    if (rec['kind'] === 'Ident' && text !== rec['name']) problems.push(`${path}: Ident span text '${text}' != '${String(rec['name'])}'`);
    if (rec['kind'] === 'Number' && text !== rec['text']) problems.push(`${path}: Number span text '${text}' != '${String(rec['text'])}'`);
    for (const [k, v] of Object.entries(rec)) if (k !== 'span' && k !== 'elemSpan' && k !== 'keywordSpan') visit(v, own, `${path}.${k}`);
  };
  visit(program.items, program.span, 'items');
  return problems;
}

/** The round-trip property: printing and re-parsing gives the same AST, and printing is idempotent. */
export function expectRoundTrip(source: string): void {
  const first = parse(source);
  expect(first.diagnostics).toEqual([]);
  const printed = printProgram(first.program);
  const second = parse(printed);
  expect(second.diagnostics).toEqual([]);
  expect(stripMeta(second.program)).toEqual(stripMeta(first.program));
  expect(printProgram(second.program)).toBe(printed);
}
