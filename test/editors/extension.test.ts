/**
 * The VS Code extension's manifest agrees with the language and with itself: the language id, the
 * file extension, the grammar it points at (and that grammar's scope), the comment and bracket
 * characters of the language configuration (the lexer's), and the command it starts (`vmm lsp`,
 * which the CLI serves). VS Code itself cannot run here; the server is tested in test/lsp/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '../../grammar/tokens.ts';

const DIR = join(import.meta.dirname, '..', '..', 'editors', 'vscode');
const json = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8'));

describe('editors/vscode', () => {
  const pkg = json('package.json');

  it('declares the vmm language with its grammar and configuration', () => {
    const [lang] = pkg.contributes.languages;
    expect(lang).toMatchObject({ id: 'vmm', extensions: ['.vmm'] });
    const [grammar] = pkg.contributes.grammars;
    expect(grammar.language).toBe('vmm');
    expect(existsSync(join(DIR, grammar.path))).toBe(true);
    expect(json(grammar.path).scopeName).toBe(grammar.scopeName);
    expect(existsSync(join(DIR, lang.configuration))).toBe(true);
    expect(existsSync(join(DIR, pkg.main))).toBe(true);
  });

  it("uses the lexer's comment and bracket characters", () => {
    const conf = json('language-configuration.json');
    // What the editor inserts to comment a line out is a comment to the lexer.
    const commented = `${conf.comments.lineComment} const D = 4`;
    const lexed = T.vmmLexer.tokenize(commented);
    expect(lexed.tokens).toEqual([]);
    expect(lexed.groups.comments?.map((c) => c.image)).toEqual([commented]);
    const pairs = [
      [T.LBrace, T.RBrace],
      [T.LBracket, T.RBracket],
      [T.LParen, T.RParen],
    ].map(([o, c]) => [o!.PATTERN, c!.PATTERN]);
    expect(conf.brackets).toEqual(pairs);
    expect(conf.autoClosingPairs.map((p: { open: string; close: string }) => [p.open, p.close])).toEqual(pairs);
  });

  it('starts `vmm lsp` over stdio and packages with vsce', () => {
    const src = readFileSync(join(DIR, pkg.main), 'utf8');
    expect(src).toMatch(/args: \[\.\.\.args, 'lsp'\], transport: TransportKind\.stdio/);
    expect(pkg.dependencies['vscode-languageclient']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pkg.devDependencies['@vscode/vsce']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pkg.scripts.package).toMatch(/^vsce package /);
    expect(existsSync(join(DIR, 'package-lock.json'))).toBe(true);
  });
});
