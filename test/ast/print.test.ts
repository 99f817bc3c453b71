import { describe, expect, it } from 'vitest';
import { parse } from '../../src/ast/parse.ts';
import { printExpr, printProgram, stripMeta } from '../../src/ast/print.ts';
import type { Expr, LetStmt } from '../../src/ast/types.ts';
import { expectRoundTrip } from './helpers.ts';

function fmt(source: string): string {
  const { program, diagnostics } = parse(source);
  expect(diagnostics).toEqual([]);
  return printProgram(program);
}

function letValue(expr: string): Expr {
  const { program, diagnostics } = parse(`let v = ${expr}`);
  expect(diagnostics).toEqual([]);
  return (program.items[0] as LetStmt).value;
}

const snippets: Record<string, string> = {
  empty: '',
  'only comments': '// one\n// two\n',
  'everything on one line': 'model m const D = 2 size M, N data x : real[D] memory m : binary[M, D] param p : real[D] = normal(0.01) net f = linear(D, D) >> relu let y = f(x) latent z : real[D] ~ Normal(loc: y, scale: 1) observe x ~ Normal(z, 0.1) guide { let e = f(x) z ~ Normal(e, 1) } train { batch = 3 estimator = iwae(k: 2) }',
  precedence: 'let a = (1 + 2) * 3 - -(4 - 5) / x @ y\nlet b = 1 - (2 - 3)\nlet c = (1 - 2) - 3\nlet d = -(-x)[0]\nlet e = (-x)[i][j]\nlet f = (a + b)[i]\nlet g = a * (b * c)',
  types: 'data l : cat(10)\ndata i : int\nmemory m : binary[M + 2, 28 * 28]\nlatent z : real[2 * Z] ~ Normal(q(x))',
  'site keywords': 'discrete address a ~ Categorical(mem)\nlatent discrete c ~ Categorical(3)',
  'numbers as written': 'const a = 1e-4\nconst b = 2.5e3\nconst c = 0.50\nconst d = 007',
  'comments everywhere': `// header
model m // after header

// before const
const D = 3 // after const
net f = linear(D, // inside a statement
  D) >> relu
guide { // after brace
  // lead
  z ~ Normal(f(x)) // trailing
  // closing
} // after guide
train {
}
// the end
`,
  'empty blocks': 'guide {}\ntrain { }',
  'empty comment': '//\nconst D = 1 //\n',
};

describe('printer round trip', () => {
  it.each(Object.entries(snippets))('%s', (_name, source) => {
    expectRoundTrip(source);
  });
});

describe('canonical layout', () => {
  it('puts one statement per line, groups kinds with blank lines, indents bodies', () => {
    const src = 'model m const D = 28*28 size M data x:binary[D] memory mem:binary[M,D] param p:real[2,D]=zeros net h=mlp(D,H,act:relu)>>relu let r=h(x) discrete address a~Categorical(mem) guide{a~Categorical(logits:h(mem)@h(x))} train{batch=32 estimator=vimco(k:4)}';
    expect(fmt(src)).toBe(
      [
        'model m',
        '',
        'const D = 28 * 28',
        'size M',
        '',
        'data x : binary[D]',
        'memory mem : binary[M, D]',
        '',
        'param p : real[2, D] = zeros',
        '',
        'net h = mlp(D, H, act: relu) >> relu',
        '',
        'let r = h(x)',
        'discrete address a ~ Categorical(mem)',
        '',
        'guide {',
        '  a ~ Categorical(logits: h(mem) @ h(x))',
        '}',
        '',
        'train {',
        '  batch = 32',
        '  estimator = vimco(k: 4)',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('keeps leading comments above and aligns trailing comments in a run of lines', () => {
    expect(fmt('// what\nconst D = 3 // dims\nconst Zeta = 32   //latent size\n\n\nsize M')).toBe(
      '// what\nconst D = 3      // dims\nconst Zeta = 32  //latent size\nsize M\n',
    );
  });

  it('moves a comment from inside a multi-line statement above it, never drops it', () => {
    expect(fmt('net f = linear(2, 3) // first\n  >> relu')).toBe('// first\nnet f = linear(2, 3) >> relu\n');
  });

  it('keeps comments after the last entry of a block inside the block', () => {
    expect(fmt('train {\n  batch = 3\n  // more later\n}')).toBe('train {\n  batch = 3\n  // more later\n}\n');
  });

  it('prints end-of-file comments after a blank line', () => {
    expect(fmt('const D = 1\n// bye')).toBe('const D = 1\n\n// bye\n');
  });
});

describe('minimal parentheses', () => {
  const cases: [string, string][] = [
    ['(a + b) + c', 'a + b + c'],
    ['a + (b + c)', 'a + (b + c)'],
    ['a - (b - c)', 'a - (b - c)'],
    ['(a * b) + (c / d)', 'a * b + c / d'],
    ['(a + b) * c', '(a + b) * c'],
    ['a @ (b * c)', 'a @ (b * c)'],
    ['(a @ b) * c', 'a @ b * c'],
    ['-(a)', '-a'],
    ['-(a + b)', '-(a + b)'],
    ['- - a', '-(-a)'],
    ['(-a) * b', '-a * b'],
    ['(m[a])[b]', 'm[a][b]'],
    ['(-m)[a]', '(-m)[a]'],
    ['((f((x))))', 'f(x)'],
    ['f( a , k : -1e-4 )', 'f(a, k: -1e-4)'],
  ];
  it.each(cases)('%s prints as %s', (input, expected) => {
    expect(printExpr(letValue(input))).toBe(expected);
    // the printed form parses back to the same tree
    expect(stripMeta(parse(`let v = ${expected}`).program)).toEqual(stripMeta(parse(`let v = ${input}`).program));
  });
});

describe('stripMeta', () => {
  it('drops spans and comments only', () => {
    const { program } = parse('// c\nconst D = 2 // t\n// end');
    expect(stripMeta(program)).toEqual({
      kind: 'Program',
      items: [{ kind: 'Const', name: { kind: 'Ident', name: 'D' }, value: { kind: 'Number', value: 2, text: '2' } }],
    });
  });
});
