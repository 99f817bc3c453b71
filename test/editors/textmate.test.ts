/**
 * The TextMate grammar of editors/vscode, tokenized with vscode-textmate + vscode-oniguruma (the
 * engine VS Code uses): the committed file is the generator's output (no drift from
 * grammar/tokens.ts), golden snippets give every keyword, number form, comment, operator and
 * punctuation its scope, and in every file of models/ each token of the real lexer is covered by
 * exactly one TextMate token with the scope of its kind.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { IToken as LexToken, TokenType } from 'chevrotain';
import { beforeAll, describe, expect, it } from 'vitest';
import oniguruma from 'vscode-oniguruma';
import vsctm from 'vscode-textmate';
import * as T from '../../grammar/tokens.ts';
import { ELEMENT_TYPES, KEYWORD_CLASSES, PUNCTUATION_SCOPES, textmateGrammarText } from '../../src/lsp/textmate.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const GRAMMAR = join(ROOT, 'editors', 'vscode', 'syntaxes', 'vmm.tmLanguage.json');
const require = createRequire(import.meta.url);

let grammar: vsctm.IGrammar;

beforeAll(async () => {
  const wasm = readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope: string) => (scope === 'source.vmm' ? vsctm.parseRawGrammar(readFileSync(GRAMMAR, 'utf8'), GRAMMAR) : null),
  });
  const g = await registry.loadGrammar('source.vmm');
  if (!g) throw new Error('grammar did not load');
  grammar = g;
});

interface TmToken {
  start: number;
  end: number;
  text: string;
  scopes: string[];
}

/** TextMate tokens of a whole text, with offsets into it. */
function tokenize(text: string): TmToken[] {
  const out: TmToken[] = [];
  let stack = vsctm.INITIAL;
  let offset = 0;
  for (const line of text.split('\n')) {
    const r = grammar.tokenizeLine(line, stack);
    for (const t of r.tokens) {
      out.push({ start: offset + t.startIndex, end: offset + Math.min(t.endIndex, line.length), text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    }
    stack = r.ruleStack;
    offset += line.length + 1;
  }
  return out;
}

/** The innermost scope of each non-blank token of a one-line snippet: `[text, scope]`. */
function scopes(snippet: string): [string, string][] {
  return tokenize(snippet)
    .filter((t) => t.text.trim() !== '')
    .map((t) => [t.text.trim(), t.scopes[t.scopes.length - 1]!]);
}

describe('TextMate grammar', () => {
  it('is the generator output for the current grammar/tokens.ts (run `npm run grammar:textmate` if not)', () => {
    expect(readFileSync(GRAMMAR, 'utf8')).toBe(textmateGrammarText());
  });

  it('covers every keyword and punctuation token of the lexer', () => {
    const strings = T.allTokens.filter((t) => typeof t.PATTERN === 'string').map((t) => t.PATTERN as string);
    const keywords = [...Object.values(KEYWORD_CLASSES).flat(), ...ELEMENT_TYPES];
    const punct = Object.keys(PUNCTUATION_SCOPES);
    expect([...keywords, ...punct].sort()).toEqual([...strings].sort());
    const { clause, ...statements } = KEYWORD_CLASSES;
    expect(T.statementKeywords.map((t) => t.PATTERN)).toEqual(expect.arrayContaining(Object.values(statements).flat()));
    expect(T.statementKeywords.map((t) => t.PATTERN)).not.toEqual(expect.arrayContaining(clause));
  });

  it('scopes every statement keyword', () => {
    for (const [cls, words] of Object.entries(KEYWORD_CLASSES)) {
      for (const w of words) expect(scopes(`${w} name`)[0], w).toEqual([w, `keyword.other.${cls}.vmm`]);
    }
    // A keyword inside a longer name is a name.
    expect(scopes('let models = latent_z')).toEqual([
      ['let', 'keyword.other.declaration.vmm'],
      ['models', 'variable.other.vmm'],
      ['=', 'keyword.operator.assignment.vmm'],
      ['latent_z', 'variable.other.vmm'],
    ]);
  });

  it('scopes element types in type position only', () => {
    for (const e of ELEMENT_TYPES) expect(scopes(`data x : ${e}`).at(-1), e).toEqual([e, 'storage.type.vmm']);
    expect(scopes('memory mem : binary[M, D]').slice(3, 5)).toEqual([
      ['binary', 'storage.type.vmm'],
      ['[', 'punctuation.section.brackets.begin.vmm'],
    ]);
    expect(scopes('data y : cat(10)')[3]).toEqual(['cat', 'storage.type.vmm']);
    expect(scopes('let real = x')[1]).toEqual(['real', 'variable.other.vmm']);
  });

  it('scopes every number form', () => {
    for (const n of ['42', '0.5', '1e-4', '2.5e3', '3E+2']) expect(scopes(`const c = ${n}`).at(-1), n).toEqual([n, 'constant.numeric.vmm']);
    expect(scopes('let x2 = y')[1]).toEqual(['x2', 'variable.other.vmm']);
  });

  it('scopes comments, whole-line and trailing, including `//` inside them', () => {
    const toks = tokenize('// a comment: const x ~ 1\nconst D = 4  // four / 2');
    const comment = toks.filter((t) => t.scopes.includes('comment.line.double-slash.vmm')).map((t) => t.text).join('');
    expect(comment).toBe('// a comment: const x ~ 1// four / 2');
    expect(toks.find((t) => t.text === '//')?.scopes.at(-1)).toBe('punctuation.definition.comment.vmm');
  });

  it('scopes every operator and punctuation mark', () => {
    const line = 'net f = a >> b\nlet y = (a + b - c * d / e) @ m[i], {}\nlatent z ~ N(loc: 0)\nlet s = f(x).s7';
    const got = new Map(tokenize(line).filter((t) => t.text.trim()).map((t) => [t.text.trim(), t.scopes.at(-1)!]));
    for (const [text, scope] of Object.entries(PUNCTUATION_SCOPES)) expect(got.get(text), text).toBe(scope);
  });

  it('scopes distributions, layers, builtins, named arguments and net names', () => {
    expect(scopes('net enc = mlp(D, 256, 2 * Z) >> relu')).toEqual([
      ['net', 'keyword.other.declaration.vmm'],
      ['enc', 'entity.name.function.vmm'],
      ['=', 'keyword.operator.assignment.vmm'],
      ['mlp', 'support.function.vmm'],
      ['(', 'punctuation.section.parens.begin.vmm'],
      ['D', 'variable.other.vmm'],
      [',', 'punctuation.separator.comma.vmm'],
      ['256', 'constant.numeric.vmm'],
      [',', 'punctuation.separator.comma.vmm'],
      ['2', 'constant.numeric.vmm'],
      ['*', 'keyword.operator.arithmetic.vmm'],
      ['Z', 'variable.other.vmm'],
      [')', 'punctuation.section.parens.end.vmm'],
      ['>>', 'keyword.operator.compose.vmm'],
      ['relu', 'support.function.vmm'],
    ]);
    expect(scopes('observe x ~ Bernoulli(logits: dec(concat(z, r)))').slice(3, 7)).toEqual([
      ['Bernoulli', 'support.class.distribution.vmm'],
      ['(', 'punctuation.section.parens.begin.vmm'],
      ['logits', 'variable.parameter.vmm'],
      [':', 'punctuation.separator.colon.vmm'],
    ]);
  });

  const models = readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.vmm'));

  /** The scope a lexer token must get, by its kind. */
  function expected(t: LexToken): (scopes: string[]) => boolean {
    const type: TokenType = t.tokenType;
    const cats = type.CATEGORIES ?? [];
    const has = (s: string) => (scopes: string[]) => scopes.includes(s);
    if (type === T.Comment) return has('comment.line.double-slash.vmm');
    if (type === T.NumberLit) return has('constant.numeric.vmm');
    if (T.statementKeywords.includes(type)) return (s) => s.some((x) => x.startsWith('keyword.other.'));
    if (type === T.Writes) return has('keyword.other.clause.vmm'); // a keyword inside the neural declaration only
    if (typeof type.PATTERN === 'string' && PUNCTUATION_SCOPES[type.PATTERN]) return has(PUNCTUATION_SCOPES[type.PATTERN]!);
    if (type === T.Identifier || cats.includes(T.Identifier)) {
      return (s) => s.some((x) => /^(variable|support|entity\.name|storage\.type)\./.test(x));
    }
    throw new Error(`no expectation for ${type.name}`);
  }

  it.each(models)('tokenizes models/%s: every lexer token gets the scope of its kind', (file) => {
    const text = readFileSync(join(ROOT, 'models', file), 'utf8');
    const tm = tokenize(text);
    const lexed = T.vmmLexer.tokenize(text);
    expect(lexed.errors).toEqual([]);
    const all = [...lexed.tokens, ...(lexed.groups.comments ?? [])];
    expect(all.length).toBeGreaterThan(50);
    for (const t of all) {
      const end = t.startOffset + t.image.length;
      const covering = tm.filter((x) => x.start < end && x.end > t.startOffset);
      const where = `${file}: '${t.image}' at ${t.startOffset}`;
      // Token boundaries agree (a comment may be split into `//` and its text).
      expect(covering[0]?.start, where).toBe(t.startOffset);
      expect(covering.at(-1)?.end, where).toBe(end);
      if (t.tokenType !== T.Comment) expect(covering, where).toHaveLength(1);
      const ok = expected(t);
      for (const c of covering) expect(ok(c.scopes), `${where}: ${c.scopes.join(' ')}`).toBe(true);
    }
    // Nothing outside the lexer's tokens is scoped beyond the file's root scope, except whitespace.
    for (const x of tm) if (x.text.trim() !== '') expect(x.scopes.length, `'${x.text}' at ${x.start}`).toBeGreaterThan(1);
  });
});
