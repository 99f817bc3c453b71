import { readFileSync } from 'node:fs';
import { createSyntaxDiagramsCode } from '../../grammar/chevrotain.ts';
import { describe, expect, it } from 'vitest';
import { parser } from '../../grammar/parser.ts';
import { cstDtsText } from '../../scripts/gen-cst-dts.ts';

const read = (rel: string) => readFileSync(new URL(rel, import.meta.url), 'utf8');

describe('files generated from the parser', () => {
  it('grammar/cst.d.ts is up to date (regenerate: node bin/run-ts.mjs scripts/gen-cst-dts.ts)', () => {
    expect(read('../../grammar/cst.d.ts')).toBe(cstDtsText());
  });

  it('grammar/diagrams.html is up to date (regenerate: npm run diagrams)', () => {
    expect(read('../../grammar/diagrams.html')).toBe(createSyntaxDiagramsCode(parser.getSerializedGastProductions()));
  });
});
