/**
 * grammar/chevrotain.ts inside a bundle (bench/gpu.sh's kit bundles the compiler with esbuild and
 * runs it where no node_modules exist): chevrotain is then not a package to resolve, and the
 * module must fall back to the copy the bundler inlined instead of throwing MODULE_NOT_FOUND
 * (which stopped the kit's webgpu stage until 2026-12-08).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('grammar/chevrotain.ts bundled', () => {
  it('loads the inlined chevrotain where no package resolves, and lexes with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmm-chevrotain-'));
    try {
      const outfile = join(dir, 'chevrotain_bundle.mjs');
      buildSync({
        entryPoints: [join(import.meta.dirname, '..', '..', 'grammar', 'chevrotain.ts')],
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        outfile,
        logLevel: 'error',
      });
      const m = (await import(pathToFileURL(outfile).href)) as typeof import('../../grammar/chevrotain.ts');
      const Word = m.createToken({ name: 'Word', pattern: /[a-z]+/ });
      const Space = m.createToken({ name: 'Space', pattern: / +/, group: m.Lexer.SKIPPED });
      const lexed = new m.Lexer([Word, Space]).tokenize('memory read');
      expect(lexed.errors).toEqual([]);
      expect(lexed.tokens.map((t) => t.image)).toEqual(['memory', 'read']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
