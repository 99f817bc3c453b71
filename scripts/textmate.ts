/**
 * Writes editors/vscode/syntaxes/vmm.tmLanguage.json, the TextMate grammar generated from
 * grammar/tokens.ts by src/lsp/textmate.ts. `npm run grammar:textmate`; test/editors/textmate.test.ts
 * checks that the committed file is up to date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { textmateGrammarText } from '../src/lsp/textmate.ts';

const out = fileURLToPath(new URL('../editors/vscode/syntaxes/vmm.tmLanguage.json', import.meta.url));
writeFileSync(out, textmateGrammarText());
console.log(`wrote ${out}`);
