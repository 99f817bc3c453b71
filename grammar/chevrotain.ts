/**
 * chevrotain, as the grammar uses it, loaded from the single-file ES module its package ships
 * (`lib/chevrotain.mjs`) rather than from its entry point. The entry (`lib/src/api.js`) imports
 * lodash-es, about 650 modules: 0.45 s to load in Node, 1.3 s through tsx's loader (how `vmm` runs
 * in a checkout), against 0.03 s for the one file, on every `vmm` command, language-server start
 * and test file that parses. The package's `exports` expose only the entry, so the file is found
 * beside it; that layout is chevrotain's own, hence the exact version pinned in package.json.
 * Should the file be missing, or chevrotain not be a package here (inside a bundle), the entry
 * point loads instead (slower, the same API).
 *
 * Every runtime use of chevrotain goes through this module: two copies of the library in one
 * process would have two `EOF` token types. Types still come from 'chevrotain' (no code).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

type Chevrotain = typeof import('chevrotain');

async function load(): Promise<Chevrotain> {
  let bundle: string | undefined;
  try {
    bundle = join(dirname(createRequire(import.meta.url).resolve('chevrotain')), '..', 'chevrotain.mjs');
  } catch {
    // Bundled (bench/gpu.sh's kit, an application's bundle): no package to resolve, and the
    // import below is the copy the bundler inlined.
  }
  return (bundle !== undefined && existsSync(bundle) ? await import(pathToFileURL(bundle).href) : await import('chevrotain')) as Chevrotain;
}

const chevrotain = await load();

export const { createToken, createSyntaxDiagramsCode, CstParser, EOF, Lexer } = chevrotain;
