import { describe, expect, it } from 'vitest';
import { parse, SYNTAX_CODES } from '../../src/ast/parse.ts';
import type { Diagnostic } from '../../src/diagnostics/diagnostic.ts';
import { renderDiagnostics, SourceFile } from '../../src/diagnostics/render.ts';
import { spanProblems } from './helpers.ts';

/** Diagnostics as `line:col code message` (1-based, via SourceFile, as the CLI shows them). */
function located(source: string, diags: readonly Diagnostic[]): string[] {
  const file = new SourceFile('t.vmm', source);
  return diags.map((d) => {
    const { line, col } = file.position(d.span.start);
    return `${line}:${col} ${d.code} ${d.message}`;
  });
}

describe('several syntax errors in one file', () => {
  const src = [
    'model broken', //                       1
    'const D = 28 * 28', //                  2
    'let r = g(mem[a]', //                   3  missing ')'
    'latent z ~ Normal(r)', //               4
    'observe x ~ 3', //                      5  not a distribution
    'data y : reel[D]', //                   6  not a type
    'net h = mlp(D 256)', //                 7  missing ','
    'guide {', //                            8
    '  z ~ Normal(enc(x))', //               9
    'train {', //                            10 guide's '}' missing
    '  batch = 32', //                       11
    '}', //                                  12
  ].join('\n');

  const { program, diagnostics } = parse(src);

  it('reports each error once, at the right place, with the right code', () => {
    expect(located(src, diagnostics)).toEqual([
      "3:17 VMM1003 missing ')'",
      "5:13 VMM1002 expected a distribution after '~', found '3'",
      "6:10 VMM1002 expected a type (binary[...], real[...], int or cat(N)) after ':', found 'reel'",
      "7:15 VMM1002 expected ',' or ')' after 'D', found '256'",
      "9:21 VMM1003 missing '}'",
    ]);
  });

  it('points the missing-bracket notes at the opening bracket', () => {
    const file = new SourceFile('t.vmm', src);
    const notes = diagnostics.filter((d) => d.code === 'VMM1003').map((d) => d.notes[0]!);
    expect(notes.map((n) => [n.message, file.position(n.span!.start)])).toEqual([
      ["to close the '(' opened here", { line: 3, col: 10 }],
      ["to close the '{' opened here", { line: 8, col: 7 }],
    ]);
  });

  it('still returns the statements that parsed', () => {
    // `net h = mlp(D 256)` is recovered by deleting '256'
    expect(program.items.map((i) => i.kind)).toEqual(['ModelHeader', 'Const', 'Let', 'Site', 'Net', 'Guide', 'Train']);
    const guide = program.items[5]!;
    expect(guide.kind === 'Guide' && guide.body.map((b) => b.kind)).toEqual(['GuideSite']);
    const train = program.items[6]!;
    expect(train.kind === 'Train' && train.settings.map((s) => s.key.name)).toEqual(['batch']);
    expect(spanProblems(program, src)).toEqual([]);
  });

  it('renders like a compiler', () => {
    const text = renderDiagnostics(new SourceFile('t.vmm', src), diagnostics);
    expect(text).toContain("t.vmm:5:13: error[VMM1002]: expected a distribution after '~', found '3'\n  |\n5 | observe x ~ 3\n  |             ^");
    expect(text).toContain('t.vmm: 5 errors');
  });
});

describe('syntax codes', () => {
  it('lists every code it reports', () => {
    expect(Object.keys(SYNTAX_CODES)).toEqual(['VMM1001', 'VMM1002', 'VMM1003', 'VMM1004', 'VMM1005', 'VMM1006']);
  });

  it('VMM1001: an unexpected character, the rest still parsed', () => {
    const src = 'const D = 3 $\nconst E = 4';
    const r = parse(src);
    expect(located(src, r.diagnostics)).toEqual(["1:13 VMM1001 unexpected character '$'"]);
    expect(r.program.items).toHaveLength(2);
  });

  it('VMM1001: a run of unexpected characters is one error; control characters are escaped', () => {
    const src = 'let a = b ?? c\nlet d = \u0001';
    // the parse errors the dropped characters cause are not reported on top
    expect(located(src, parse(src).diagnostics)).toEqual([
      "1:11 VMM1001 unexpected characters '??'",
      "2:9 VMM1001 unexpected character '\\u{1}'",
    ]);
  });

  it("VMM1001: a single '>' hints at '>>'", () => {
    const d = parse('net f = linear(1, 2) > relu').diagnostics[0]!;
    expect(d.code).toBe('VMM1001');
    expect(d.notes[0]!.message).toContain("'>>'");
  });

  it('VMM1002: names what was expected in user terms', () => {
    const cases: [string, string][] = [
      ['const = 3', "expected the name of the constant after 'const', found '='"],
      ['let x = ', "expected an expression after '=', found end of file"],
      ['let x = 1 +', "expected an expression after '+', found end of file"],
      ['data x binary[D]', "expected ':' after 'x', found 'binary'"],
      ['latent z Normal(x)', "expected '~' after 'z', found 'Normal'"],
      ['latent z ~ Normal', "expected '(' after 'Normal', found end of file"],
      ['size M,', "expected a size name after ',', found end of file"],
      ['guide { a b }', "expected '~' (a guide site) or '=' (a training setting) after 'a', found 'b'"],
      ['let x = f(a)(b)', "expected a statement ('const', 'data', 'net', 'let', 'latent', 'observe', 'guide', ...), found '('"],
      ['train { estimator: vimco(k: 4) }', "expected '~' (a guide site) or '=' (a training setting) after 'estimator', found ':'"],
      ['latent z = Normal(x)', "expected '~' after 'z', found '='"],
      // a closer without an opener
      ['}', "unmatched '}'"],
      ['latent z ~ Normal(prior(r)))', "unmatched ')'"],
      // a name after a complete statement: the name is the mistake, not what follows it
      ['const D = 28 x 28', "unexpected name 'x' after '28'"],
      ['size M N\nlet q = 1', "unexpected name 'N' after 'M'"],
    ];
    for (const [src, message] of cases) {
      const diags = parse(src).diagnostics;
      expect(diags.map((d) => `${d.code} ${d.message}`), src).toEqual([`VMM1002 ${message}`]);
    }
  });

  it('VMM1003: missing closers at the end of the file point just after the last token', () => {
    const src = 'latent z ~ Normal(f(x)\n';
    const r = parse(src);
    expect(located(src, r.diagnostics)).toEqual(["1:23 VMM1003 missing ')'"]);
    expect(r.diagnostics[0]!.span).toEqual({ start: 22, end: 22 });
    expect(located(src, parse('memory m : binary[M, D\nnet f = relu').diagnostics)).toEqual(["1:23 VMM1003 missing ']'"]);
    expect(parse('train {\n  batch = 3').diagnostics.map((d) => d.code)).toEqual(['VMM1003']);
  });

  it('VMM1004: statements in the wrong place', () => {
    const src = [
      'k = 3', //                             1 setting outside train
      'a ~ Categorical(mem)', //              2 bare site outside guide
      'model late', //                        3 header not first
      'guide {',
      '  observe x ~ Normal(0, 1)', //        5
      '  net f = relu', //                    6
      '  batch = 2', //                       7
      '  let e = 1', //                       ok
      '}',
      'train {',
      '  latent z ~ Normal(0, 1)', //         11
      '  steps = 10',
      '}',
    ].join('\n');
    const r = parse(src);
    expect(located(src, r.diagnostics)).toEqual([
      "1:1 VMM1004 the setting 'k = ...' is not allowed outside train: training settings go inside 'train { }'",
      "2:1 VMM1004 the site 'a ~ ...' is not allowed outside guide: a model site needs a keyword, as in 'latent a ~ ...' or 'observe a ~ ...'",
      "3:1 VMM1004 the 'model' header is not allowed here: the 'model' header must be the first statement of the file",
      "5:3 VMM1004 'observe' is not allowed inside guide: a guide site is written without keywords, as 'x ~ ...'",
      "6:3 VMM1004 'net' is not allowed inside guide: a guide holds sites (name ~ DIST) and lets; declare it before the model statements",
      "7:3 VMM1004 the setting 'batch = ...' is not allowed inside guide: training settings go inside 'train { }'",
      "11:3 VMM1004 'latent' is not allowed inside train: a train block holds settings 'key = value' only",
    ]);
    const guide = r.program.items.find((i) => i.kind === 'Guide');
    expect(guide?.kind === 'Guide' && guide.body.map((b) => b.kind)).toEqual(['Let']);
    const train = r.program.items.find((i) => i.kind === 'Train');
    expect(train?.kind === 'Train' && train.settings.map((s) => s.key.name)).toEqual(['steps']);
  });
});

describe('robustness', () => {
  it('accepts the empty file and whitespace', () => {
    for (const src of ['', '   \n\t\r\n', '// only a comment']) {
      const r = parse(src);
      expect(r.diagnostics).toEqual([]);
      expect(r.program.items).toEqual([]);
    }
  });

  it('refuses absurd nesting with a diagnostic instead of a stack overflow', () => {
    for (const src of [`let x = ${'('.repeat(5000)}1${')'.repeat(5000)}`, `let x = ${'-'.repeat(5000)}1`, `let x = ${'f('.repeat(3000)}`]) {
      const r = parse(src);
      expect(r.diagnostics.map((d) => d.code)).toContain('VMM1002');
    }
  });

  it('parses moderate nesting', () => {
    const src = `let x = ${'('.repeat(60)}1${')'.repeat(60)}`;
    expect(parse(src).diagnostics).toEqual([]);
  });

  it('is reusable: a failed parse does not affect the next one', () => {
    parse('let x = (((');
    expect(parse('const D = 1').diagnostics).toEqual([]);
  });
});
