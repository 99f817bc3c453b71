/**
 * Long left-associative chains (`x * x * ...`, `x[x][x]...`, `1 + 1 + ...`) of 10,000 terms give a
 * located diagnostic in every stage that reads them (parse, check, IR build, `vmm fmt`, `vmm dump`),
 * never a stack overflow; chains just under the bound go through every stage.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_EXPR_DEPTH, parse } from '../../src/ast/parse.ts';
import { printProgram } from '../../src/ast/print.ts';
import { frontEnd } from '../../src/check/pipeline.ts';
import { runCli as cli } from '../cli/run_cli.ts';
import { printIr } from '../../src/ir/print.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-depth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const model = (z: string, w: string) => `model chain
const Z = ${z}
data x : binary[4]
net dec = mlp(4, 8, 4)
latent z : real[4] ~ Normal(loc: 0, scale: 1)
let w = ${w}
observe x ~ Bernoulli(logits: dec(w * Z))
`;

const chains: Record<string, (n: number) => string> = {
  'x * x * ...': (n) => model('1', Array(n).fill('z').join(' * ')),
  'x[x][x]...': (n) => model('1', `z${'[z]'.repeat(n - 1)}`),
  '1 + 1 + ...': (n) => model(Array(n).fill('1').join(' + '), 'z'),
};


describe('chains of 10,000 terms', () => {
  for (const [name, make] of Object.entries(chains)) {
    const text = make(10_000);
    it(`${name}: parse and the front end report VMM1005 at the chain`, () => {
      const p = parse(text);
      expect(p.diagnostics.map((d) => d.code)).toEqual(['VMM1005']);
      const line = text.slice(0, p.diagnostics[0]!.span.start).split('\n').length;
      expect(line).toBe(name === '1 + 1 + ...' ? 2 : 6);
      expect(frontEnd(text).diagnostics.map((d) => d.code)).toEqual(['VMM1005']);
    });
    it(`${name}: vmm check, fmt and dump ir exit 1 with the diagnostic, no stack`, async () => {
      const file = join(tmp, `${name.replace(/\W/g, '')}.vmm`);
      writeFileSync(file, text);
      for (const argv of [['check', file], ['fmt', '--check', file], ['dump', 'ir', file]]) {
        const r = await cli(...argv);
        expect(r.code, argv.join(' ')).toBe(1);
        expect(r.err).toContain('error[VMM1005]');
        expect(r.err).not.toContain('internal error');
      }
    });
  }
});

describe(`chains just under the bound (${MAX_EXPR_DEPTH} levels)`, () => {
  for (const [name, make] of Object.entries(chains)) {
    if (name === 'x[x][x]...') continue; // an index must be a cat: not a valid program at any length
    it(`${name}: checks, builds the IR, prints and reparses`, () => {
      const text = make(MAX_EXPR_DEPTH - 4);
      const r = frontEnd(text);
      expect(r.diagnostics).toEqual([]);
      expect(printIr(r.ir!)).toContain('let w');
      const printed = printProgram(parse(text).program);
      expect(parse(printed).diagnostics).toEqual([]);
    });
  }
  it('x[x][x]...: a type error, not a crash', () => {
    const r = frontEnd(chains['x[x][x]...']!(MAX_EXPR_DEPTH - 4));
    expect(r.diagnostics.length).toBeGreaterThan(0);
    expect(r.diagnostics.every((d) => d.code.startsWith('VMM2'))).toBe(true);
  });
});
