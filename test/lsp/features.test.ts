/**
 * The language server's features as functions of a document (in process, no protocol): hover on
 * diagnostic codes, which names completion offers where, the outline of a guide, and a property
 * test: on mutated model files (syntax errors, wrong shapes) no feature throws at any position and
 * every range lies inside the document.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { vmmLexer } from '../../grammar/tokens.ts';
import { BUILTINS, DISTRIBUTIONS, LAYERS } from '../../src/check/context.ts';
import {
  analyze,
  BUILTIN_DOCS,
  completion,
  definition,
  DISTRIBUTION_FORMS,
  documentSymbols,
  format,
  hover,
  LAYER_FORMS,
  lspDiagnostics,
  references,
  semanticTokens,
  type Analysis,
} from '../../src/lsp/features.ts';
import { modelFiles } from '../ast/helpers.ts';

const of = (text: string) => analyze(TextDocument.create('file:///t.vmm', 'vmm', 1, text));
const hoverAt = (a: Analysis, needle: string, k = 0) => {
  const h = hover(a, a.doc.getText().indexOf(needle) + k);
  return h && typeof h.contents === 'object' && 'value' in h.contents ? h.contents.value : '';
};
const labels = (a: Analysis, offset: number) => completion(a, offset).map((i) => i.label);

const MODEL = `const D = 4
size M
data x : real[D]
memory mem : real[M, D]
net f = mlp(D, 8, 2)
let r = f(x)
discrete address a ~ Categorical(mem)
observe x ~ Normal(loc: mem[a], scale: 1)

guide {
  let e = f(mem)
  a ~ Categorical(logits: sum(e))
}

train {
  batch = D
}
`;

describe('hover', () => {
  it("documents exactly the checker's builtins, layers and distributions", () => {
    expect(Object.keys(BUILTIN_DOCS).sort()).toEqual([...BUILTINS].sort());
    expect(Object.keys(LAYER_FORMS).sort()).toEqual([...LAYERS].sort());
    expect(Object.keys(DISTRIBUTION_FORMS).sort()).toEqual([...DISTRIBUTIONS].sort());
  });

  it('shows a distribution family with its parameters, and completes them by name', () => {
    const a = of('data x : real[2]\nobserve x ~ Laplace(loc: 0, scale: 1)\n');
    expect(hoverAt(a, 'Laplace')).toContain('Laplace(loc: real, scale: positive)');
    expect(DISTRIBUTION_FORMS['Laplace']!.snippet).toBe('Laplace(loc: ${1}, scale: ${2})');
    expect(DISTRIBUTION_FORMS['Categorical']!.snippet).toBe('Categorical(${1:logits: })');
  });

  it('explains a diagnostic code written in a comment', () => {
    const a = of('// see VMM2022 and VMM2003\nconst D = 4\n');
    expect(hoverAt(a, 'VMM2022', 3)).toContain("a net applied to a value whose trailing shape is not the net's input shape");
    expect(hoverAt(a, 'VMM2003')).toContain('declared twice');
    expect(hoverAt(a, 'see')).toBe('');
  });

  it('explains the code of a diagnostic under the cursor', () => {
    const a = of(MODEL.replace('f(x)', 'f(mem[x])'));
    expect(a.diagnostics.map((d) => d.code)).toEqual(['VMM2023']);
    const h = hoverAt(a, 'mem[x]', 4);
    expect(h).toContain('x : real[4]');
    expect(h).toContain('**VMM2023**: an entry read `t[i]` whose index is not a cat(N)');
  });

  it('gives guide lets their type', () => {
    expect(hoverAt(of(MODEL), 'let e', 4)).toContain('e : real[M, 2]');
    expect(hoverAt(of(MODEL), 'sum(e)', 0)).toContain('sum(e) : real[M]');
  });
});

describe('completion offers the names visible where the cursor is', () => {
  const a = of(MODEL);
  const text = MODEL;
  it('in the model: names declared before the statement', () => {
    const at = labels(a, text.indexOf('f(x)'));
    expect(at).toEqual(expect.arrayContaining(['D', 'M', 'x', 'mem', 'f']));
    expect(at).not.toContain('r');
    expect(at).not.toContain('a');
  });
  it("in the guide: declarations, the model's latents and the guide's lets before the cursor, not the model's lets", () => {
    const at = labels(a, text.indexOf('sum(e)'));
    expect(at).toEqual(expect.arrayContaining(['D', 'mem', 'f', 'a', 'e']));
    expect(at).not.toContain('r');
    expect(labels(a, text.indexOf('f(mem)'))).not.toContain('e');
  });
  it('in train: the setting keys at a line start, estimators after `estimator =`', () => {
    const t = 'const K = 4\ntrain {\n  \n  estimator = \n}\n';
    const b = of(t);
    expect(labels(b, t.indexOf('  \n') + 2)).toEqual(['estimator', 'optimizer', 'batch', 'steps', 'episodes', 'dataset', 'address']);
    expect(labels(b, t.indexOf('estimator = ') + 12)).toEqual(expect.arrayContaining(['vimco', 'reinforce', 'enumerate', 'soft', 'iwae', 'K']));
    expect(labels(b, 0)).not.toContain('estimator');
  });
  it('in train: consts', () => {
    const at = labels(a, text.indexOf('batch = D') + 8);
    expect(at).toContain('D');
    expect(at).not.toContain('x');
  });
});

describe('outline', () => {
  it('has the guide and train blocks with their entries and types', () => {
    const syms = documentSymbols(of(MODEL));
    const guide = syms.find((s) => s.name === 'guide');
    expect(guide?.children?.map((c) => [c.name, c.detail])).toEqual([
      ['e', 'real[M, 2]'],
      ['a', 'cat(M)'],
    ]);
    expect(syms.find((s) => s.name === 'train')?.children?.map((c) => [c.name, c.detail])).toEqual([['batch', 'D']]);
  });
});

// ---------------------------------------------------------------- property

const models = modelFiles().map(([, src]) => src);
const fragments = ['(', ')', '[', ']', '{', '}', ',', ':', '=', '~', '+', '@', '>>', '//', '\n', 'guide {', 'let', 'net', 'x', 'mem[a]', 'Normal(', 'f(x)', 'real[', '2 * Z'];
const RUNS = Number(process.env['RUNS'] ?? 40);

function everyFeature(text: string, probes: number[]): void {
  const a = of(text);
  const len = text.length;
  const inside = (r: { start: { line: number; character: number }; end: { line: number; character: number } }) => {
    const [s, e] = [a.doc.offsetAt(r.start), a.doc.offsetAt(r.end)];
    expect(0 <= s && s <= e && e <= len).toBe(true);
  };
  for (const d of lspDiagnostics(a)) inside(d.range);
  for (const s of documentSymbols(a)) inside(s.range);
  for (const e of format(a)) inside(e.range);
  const data = semanticTokens(a);
  expect(data.length % 5).toBe(0);
  for (const p of probes) {
    const offset = p % (len + 1);
    const h = hover(a, offset);
    if (h?.range) inside(h.range);
    const d = definition(a, offset);
    if (d) inside(d.range);
    for (const r of references(a, offset, true)) inside(r.range);
    expect(Array.isArray(completion(a, offset))).toBe(true);
  }
}

describe('no feature throws', () => {
  it('on mutated model files, at any position', () => {
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 12 }), ins: fc.constantFrom(...fragments, '') });
    fc.assert(
      fc.property(fc.nat({ max: models.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), (which, edits, probes) => {
        let src = models[which]!;
        for (const e of edits) {
          const at = e.at % (src.length + 1);
          src = src.slice(0, at) + e.ins + src.slice(at + e.del);
        }
        everyFeature(src, probes);
      }),
      { numRuns: RUNS },
    );
  });

  it('at every token of every model', () => {
    for (const src of models) everyFeature(src, vmmLexer.tokenize(src).tokens.map((t) => t.startOffset));
  });
});
