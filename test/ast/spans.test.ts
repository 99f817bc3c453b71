import { describe, expect, it } from 'vitest';
import { parse } from '../../src/ast/parse.ts';
import type { Call, Expr, GuideBlock, Item, LetStmt, ParamDecl, SiteStmt, Span, TrainBlock } from '../../src/ast/types.ts';
import { spanProblems } from './helpers.ts';

function parsed(source: string) {
  const r = parse(source);
  expect(r.diagnostics).toEqual([]);
  expect(spanProblems(r.program, source)).toEqual([]);
  return r.program;
}

const text = (source: string, s: Span) => source.slice(s.start, s.end);

describe('spans', () => {
  it('covers a statement from its keyword to its last token, end exclusive', () => {
    const src = '  const D = 28 * 28   // c\n';
    const [c] = parsed(src).items as [Item];
    expect(c.span).toEqual({ start: 2, end: 19 });
    expect(text(src, c.span)).toBe('const D = 28 * 28');
  });

  it('includes parentheses in the operand of a binary expression, not in the parenthesised node', () => {
    const src = 'let v = (a + b) * c';
    const v = (parsed(src).items[0] as LetStmt).value;
    expect(v.kind).toBe('Binary');
    expect(text(src, v.span)).toBe('(a + b) * c');
    const left = (v as Extract<Expr, { kind: 'Binary' }>).left;
    expect(text(src, left.span)).toBe('a + b');
  });

  it('spans left-associative chains by their operands', () => {
    const src = 'let v = a - b - c';
    const v = (parsed(src).items[0] as LetStmt).value as Extract<Expr, { kind: 'Binary' }>;
    expect(text(src, v.span)).toBe('a - b - c');
    expect(text(src, v.left.span)).toBe('a - b');
    expect(text(src, v.right.span)).toBe('c');
  });

  it('spans unary minus, index chains, calls and arguments', () => {
    const src = 'let v = -f(m[a][b], k: 1e-4)';
    const v = (parsed(src).items[0] as LetStmt).value as Extract<Expr, { kind: 'Unary' }>;
    expect(text(src, v.span)).toBe('-f(m[a][b], k: 1e-4)');
    const call = v.operand as Call;
    expect(text(src, call.span)).toBe('f(m[a][b], k: 1e-4)');
    expect(text(src, call.callee.span)).toBe('f');
    expect(call.args.map((a) => text(src, a.span))).toEqual(['m[a][b]', 'k: 1e-4']);
    const idx = call.args[0]!.value as Extract<Expr, { kind: 'Index' }>;
    expect(text(src, idx.target.span)).toBe('m[a]');
    expect(text(src, idx.index.span)).toBe('b');
    expect(text(src, call.args[1]!.name!.span)).toBe('k');
  });

  it('spans types, their element keyword, and site keywords', () => {
    const src = 'param p : real[M + 2, D] = normal(0.01)\ndiscrete  address a : cat(M) ~ Categorical(mem)';
    const [p, s] = parsed(src).items as [ParamDecl, SiteStmt];
    expect(text(src, p.type.span)).toBe('real[M + 2, D]');
    expect(text(src, p.type.elemSpan)).toBe('real');
    expect(text(src, p.init!.span)).toBe('normal(0.01)');
    expect(text(src, s.keywordSpan)).toBe('discrete  address');
    expect(text(src, s.type!.span)).toBe('cat(M)');
    expect(text(src, s.dist.span)).toBe('Categorical(mem)');
    expect(text(src, s.span)).toBe('discrete  address a : cat(M) ~ Categorical(mem)');
  });

  it('spans blocks from keyword to closing brace and their entries', () => {
    const src = 'guide {\n  let e = h(x)\n  a ~ Categorical(logits: e)\n}\ntrain { batch = 32 }';
    const [g, t] = parsed(src).items as [GuideBlock, TrainBlock];
    expect(text(src, g.span)).toBe(src.slice(0, src.indexOf('}') + 1));
    expect(g.body.map((b) => text(src, b.span))).toEqual(['let e = h(x)', 'a ~ Categorical(logits: e)']);
    expect(text(src, t.span)).toBe('train { batch = 32 }');
    expect(text(src, t.settings[0]!.span)).toBe('batch = 32');
    expect(text(src, t.settings[0]!.key.span)).toBe('batch');
  });

  it('gives the program the whole source', () => {
    const src = '\n\nconst D = 1\n\n';
    expect(parsed(src).span).toEqual({ start: 0, end: src.length });
  });

  it('net stages each have a span', () => {
    const src = 'net e = reshape(1, 28, 28) >> relu >> flatten';
    const n = parsed(src).items[0]!;
    expect(n.kind).toBe('Net');
    if (n.kind === 'Net') expect(n.stages.map((s) => text(src, s.span))).toEqual(['reshape(1, 28, 28)', 'relu', 'flatten']);
  });
});

describe('lexical details', () => {
  it('keywords need a word boundary; element types are names outside types', () => {
    const p = parsed('let models = real + cat\nlet latent_z = int');
    expect(p.items.map((i) => (i as LetStmt).name.name)).toEqual(['models', 'latent_z']);
  });

  it('reads the number forms of the reference', () => {
    const p = parsed('const a = 42 const b = 0.5 const c = 1e-4 const d = 2.5e3 const e = 1E+2');
    expect(p.items.map((i) => (i as LetStmt).value)).toMatchObject([
      { value: 42, text: '42' },
      { value: 0.5, text: '0.5' },
      { value: 1e-4, text: '1e-4' },
      { value: 2500, text: '2.5e3' },
      { value: 100, text: '1E+2' },
    ]);
  });
});
