/**
 * Golden tests. `good/*.vmm` and every `models/*.vmm` (read in place) check without errors and
 * print the IR in `good/NAME.ir.txt`; `bad/*.vmm` give the full rendered diagnostics in
 * `bad/NAME.err.txt`. `UPDATE_GOLDEN=1 npx vitest run test/golden` rewrites the expected files:
 * review the diff before keeping it.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { CODES } from '../../src/diagnostics/codes.ts';
import { renderDiagnostics, SourceFile } from '../../src/diagnostics/render.ts';
import { printIr } from '../../src/ir/print.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const GOOD = join(ROOT, 'test', 'golden', 'good');
const BAD = join(ROOT, 'test', 'golden', 'bad');
const MODELS = join(ROOT, 'models');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

const vmm = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.vmm'))
    .sort()
    .map((f) => join(dir, f));

function load(path: string): SourceFile {
  return new SourceFile(relative(ROOT, path).split('\\').join('/'), readFileSync(path, 'utf8'));
}

/** Compares `actual` with the file `expectedPath`, or writes it under UPDATE_GOLDEN=1. */
function golden(expectedPath: string, actual: string): void {
  if (UPDATE) {
    if (!existsSync(expectedPath) || readFileSync(expectedPath, 'utf8') !== actual) writeFileSync(expectedPath, actual);
    return;
  }
  expect(existsSync(expectedPath), `${relative(ROOT, expectedPath)} is missing: run UPDATE_GOLDEN=1 and review it`).toBe(true);
  expect(actual).toBe(readFileSync(expectedPath, 'utf8'));
}

const goodFiles = [...vmm(MODELS), ...vmm(GOOD)];
const badFiles = vmm(BAD);

/** Every code the front end reports on the given files. */
function codesOf(files: string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) for (const d of frontEnd(readFileSync(f, 'utf8')).diagnostics) out.add(d.code);
  return out;
}

describe('good programs: IR', () => {
  it('have distinct names (models/ and good/ share the .ir.txt folder)', () => {
    const names = goodFiles.map((f) => basename(f));
    expect(new Set(names).size).toBe(names.length);
  });
  for (const path of goodFiles) {
    it(relative(ROOT, path), () => {
      const src = load(path);
      const r = frontEnd(src.text);
      expect(renderDiagnostics(src, r.diagnostics)).toBe('');
      expect(r.ir).toBeDefined();
      golden(join(GOOD, basename(path).replace(/\.vmm$/, '.ir.txt')), printIr(r.ir!));
    });
  }
});

describe('bad programs: diagnostics', () => {
  it('there are at least 45 of them', () => expect(badFiles.length).toBeGreaterThanOrEqual(45));
  for (const path of badFiles) {
    it(relative(ROOT, path), () => {
      const src = load(path);
      const r = frontEnd(src.text);
      expect(r.diagnostics.length).toBeGreaterThan(0);
      golden(path.replace(/\.vmm$/, '.err.txt'), renderDiagnostics(src, r.diagnostics) + '\n');
    });
  }
});

describe('expected files', () => {
  it('each belongs to a .vmm file (remove stale ones by hand)', () => {
    const goodNames = new Set(goodFiles.map((f) => basename(f).replace(/\.vmm$/, '.ir.txt')));
    const stale = [
      ...readdirSync(GOOD).filter((f) => f.endsWith('.ir.txt') && !goodNames.has(f)),
      ...readdirSync(BAD).filter((f) => f.endsWith('.err.txt') && !existsSync(join(BAD, f.replace(/\.err\.txt$/, '.vmm')))),
    ];
    expect(stale).toEqual([]);
  });
});

describe('the code registry', () => {
  it('every code produced is registered', () => {
    const produced = codesOf([...goodFiles, ...badFiles]);
    const unknown = [...produced].filter((c) => !(c in CODES));
    expect(unknown).toEqual([]);
  });
  it('every registered code is produced by at least one bad file', () => {
    const produced = codesOf(badFiles);
    const missing = Object.keys(CODES).filter((c) => !produced.has(c));
    expect(missing).toEqual([]);
  });
});

describe('models/', () => {
  for (const path of vmm(MODELS)) {
    it(`${relative(ROOT, path)} checks with no errors and no warnings`, () => {
      const r = frontEnd(readFileSync(path, 'utf8'));
      expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
      expect(r.checked).toBeDefined();
    });
  }
});
