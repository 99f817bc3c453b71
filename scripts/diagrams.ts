/**
 * Writes grammar/diagrams.html: railroad diagrams of the `.vmm` grammar, drawn by chevrotain's
 * `createSyntaxDiagramsCode` from the parser itself (so they never drift from it).
 * `npm run diagrams`, then open the file in a browser. The page loads chevrotain's diagram
 * script from a CDN.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSyntaxDiagramsCode } from '../grammar/chevrotain.ts';
import { parser } from '../grammar/parser.ts';

const out = fileURLToPath(new URL('../grammar/diagrams.html', import.meta.url));
writeFileSync(out, createSyntaxDiagramsCode(parser.getSerializedGastProductions()));
console.log(`wrote ${out}`);
