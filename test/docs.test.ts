/**
 * The language reference cannot drift from the compiler: every ```vmm example of docs/language.md
 * is a whole file that the checker accepts (fragments are fenced ```vmm-fragment and skipped), and
 * every statement keyword, distribution family, built-in, layer, estimator (with its arguments),
 * training setting and data set the compiler knows is named on the page. The docs' links between
 * pages point at files that exist.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../src/check/pipeline.ts';
import { BUILTINS, LAYERS } from '../src/check/context.ts';
import { TRAIN_KEYS } from '../src/check/train.ts';
import { estimatorSpecs } from '../src/estimators/registry.ts';
import { familyNames } from '../src/families/registry.ts';
import { datasetNames } from '../src/data/registry.ts';
import { statementKeywords } from '../grammar/tokens.ts';

const root = join(__dirname, '..');
const language = readFileSync(join(root, 'docs', 'language.md'), 'utf8');

/** The ```vmm blocks of a markdown text, with the line each starts on. */
function vmmBlocks(md: string): { line: number; source: string }[] {
  const out: { line: number; source: string }[] = [];
  const re = /^```vmm\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(md); m; m = re.exec(md)) out.push({ line: md.slice(0, m.index).split('\n').length, source: m[1]! });
  return out;
}

describe('docs/language.md', () => {
  const blocks = vmmBlocks(language);

  it('has examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
  });

  it.each(blocks.map((b) => [b.line, b.source] as const))('the example at line %i checks without errors', (_line, source) => {
    const r = frontEnd(source);
    const errors = r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.code} ${d.message}`);
    expect(errors).toEqual([]);
    expect(r.ir).toBeDefined();
  });

  it('names every statement keyword, family, built-in, layer, estimator and its arguments, setting and data set', () => {
    const words = [
      ...statementKeywords.map((t) => t.PATTERN as string),
      'writes',
      ...familyNames(),
      ...BUILTINS,
      ...LAYERS,
      ...TRAIN_KEYS,
      ...datasetNames(),
      'adam',
      'sgd',
      'clip',
      ...estimatorSpecs().flatMap((s) => [s.kind, ...s.args.map((a) => a.name), ...s.args.flatMap((a) => (a.kind === 'choice' ? a.choices : []))]),
      ...['binary', 'real', 'int', 'cat'],
      ...['hard', 'soft', 'none'],
    ];
    const missing = [...new Set(words)].filter((w) => !new RegExp(`\`[^\`\\n]*\\b${w}\\b[^\`\\n]*\``).test(language));
    expect(missing).toEqual([]);
  });
});

describe('docs/', () => {
  it('links only to files that exist', () => {
    const docs = join(root, 'docs');
    const pages = [join(root, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => join(docs, f))];
    const broken: string[] = [];
    for (const page of pages) {
      const md = readFileSync(page, 'utf8').replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
      for (const m of md.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(page), target))) broken.push(`${page.slice(root.length + 1)} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
