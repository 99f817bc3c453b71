/**
 * Property tests (fast-check): whatever the input, `parse` returns instead of throwing, every
 * diagnostic is a syntax code with a span inside the source, the partial AST has valid spans,
 * and an input that parses cleanly round-trips through the printer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProgramCstNode } from '../../grammar/cst.d.ts';
import { parser } from '../../grammar/parser.ts';
import { vmmLexer } from '../../grammar/tokens.ts';
import { parse, SYNTAX_CODES } from '../../src/ast/parse.ts';
import { printProgram, stripMeta } from '../../src/ast/print.ts';
import { toAst } from '../../src/ast/visitor.ts';
import { modelFiles, spanProblems } from './helpers.ts';

const models = modelFiles().map(([, src]) => src);

/** Runs per property; raise it to hunt for bugs (e.g. `RUNS=5000 npx vitest run test/ast/property.test.ts`). */
const RUNS = Number(process.env['RUNS'] ?? 150);

function checkInvariants(source: string): void {
  // The AST builder itself must cope with every partial CST (parse() would hide a crash behind the syntax errors).
  const lexed = vmmLexer.tokenize(source);
  parser.input = lexed.tokens;
  const cst = parser.program() as ProgramCstNode;
  expect(() => toAst(cst, lexed.groups['comments'] ?? [], source)).not.toThrow();

  const { program, diagnostics } = parse(source);
  for (const d of diagnostics) {
    expect(Object.keys(SYNTAX_CODES)).toContain(d.code);
    expect(d.span.start).toBeGreaterThanOrEqual(0);
    expect(d.span.start).toBeLessThanOrEqual(d.span.end);
    expect(d.span.end).toBeLessThanOrEqual(source.length);
    expect(d.message.length).toBeGreaterThan(0);
    for (const n of d.notes) if (n.span) expect(n.span.end).toBeLessThanOrEqual(source.length);
  }
  expect(spanProblems(program, source)).toEqual([]);
  if (diagnostics.length === 0) {
    const printed = printProgram(program);
    const again = parse(printed);
    expect(again.diagnostics).toEqual([]);
    expect(stripMeta(again.program)).toEqual(stripMeta(program));
    expect(printProgram(again.program)).toBe(printed);
  }
}

// ---------------------------------------------------------------- mutations of real models

const fragments = [
  '(', ')', '[', ']', '{', '}', ',', ':', '=', '~', '+', '-', '*', '/', '@', '>>', '>', '//', '\n', ' ', '$', '.', '1e-4', '0',
  'guide', 'train', 'latent', 'observe', 'discrete', 'address', 'let', 'net', 'const', 'size', 'data', 'memory', 'param',
  'model', 'real', 'binary', 'cat', 'int', 'x', 'mem[a]', 'Normal(', 'f(x)', '// c\n', 'guide {', '}\n',
];

type Mutation =
  | { op: 'delete'; at: number; len: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'swap'; a: number; b: number }
  | { op: 'dropToken'; index: number }
  | { op: 'dupToken'; index: number }
  | { op: 'swapTokens'; a: number; b: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...fragments), fc.string({ maxLength: 3 })) }),
  fc.record({ op: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ op: fc.constant('dropToken' as const), index: fc.nat() }),
  fc.record({ op: fc.constant('dupToken' as const), index: fc.nat() }),
  fc.record({ op: fc.constant('swapTokens' as const), a: fc.nat(), b: fc.nat() }),
);

function tokenRanges(src: string): [number, number][] {
  const lexed = vmmLexer.tokenize(src);
  return [...lexed.tokens, ...(lexed.groups['comments'] ?? [])]
    .map((t): [number, number] => [t.startOffset, t.startOffset + t.image.length])
    .sort((a, b) => a[0] - b[0]);
}

function mutate(src: string, m: Mutation): string {
  const n = src.length;
  switch (m.op) {
    case 'delete': {
      const at = n ? m.at % n : 0;
      return src.slice(0, at) + src.slice(at + m.len);
    }
    case 'insert': {
      const at = m.at % (n + 1);
      return src.slice(0, at) + m.text + src.slice(at);
    }
    case 'swap': {
      if (n < 2) return src;
      const chars = [...src];
      const a = m.a % chars.length;
      const b = m.b % chars.length;
      [chars[a], chars[b]] = [chars[b]!, chars[a]!];
      return chars.join('');
    }
    default: {
      const toks = tokenRanges(src);
      if (toks.length === 0) return src;
      if (m.op === 'dropToken') {
        const [s, e] = toks[m.index % toks.length]!;
        return src.slice(0, s) + src.slice(e);
      }
      if (m.op === 'dupToken') {
        const [s, e] = toks[m.index % toks.length]!;
        return src.slice(0, e) + ' ' + src.slice(s, e) + src.slice(e);
      }
      const [a, b] = [toks[m.a % toks.length]!, toks[m.b % toks.length]!].sort((x, y) => x[0] - y[0]) as [[number, number], [number, number]];
      if (a[0] === b[0]) return src;
      return src.slice(0, a[0]) + src.slice(b[0], b[1]) + src.slice(a[1], b[0]) + src.slice(a[0], a[1]) + src.slice(b[1]);
    }
  }
}

describe('parse never throws', () => {
  it('on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), checkInvariants), { numRuns: RUNS });
  });

  it('on arbitrary unicode', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), checkInvariants), { numRuns: Math.ceil(RUNS / 2) });
  });

  it('on token soup', () => {
    const soup = fc.array(fc.constantFrom(...fragments), { maxLength: 60 }).map((parts) => parts.join(' '));
    fc.assert(fc.property(soup, checkInvariants), { numRuns: RUNS });
  });

  it('on mutations of the model files', () => {
    const arb = fc.tuple(fc.nat({ max: models.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: 5 }));
    fc.assert(
      fc.property(arb, ([which, muts]) => {
        checkInvariants(muts.reduce(mutate, models[which]!));
      }),
      { numRuns: RUNS },
    );
  });
});
