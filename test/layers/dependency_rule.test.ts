/**
 * The layering rule (.dependency-cruiser.cjs, `npm run deps`) catches what it is meant to: run on a
 * scratch tree laid out like src/, an upward import (lower -> runtime) and a cycle are errors, an
 * import its folder's allow-list does not name (families -> estimators) is one, a folder missing from
 * the allow-list is one, and the same tree without them is clean.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'vmm-layers-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function cruise(files: Record<string, string>): { ok: boolean; out: string } {
  const dir = mkdtempSync(join(scratch, 't-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { allowImportingTsExtensions: true, noEmit: true, module: 'nodenext' } }));
  try {
    const out = execFileSync(process.execPath, [join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs'), 'src', '--config', '.dependency-cruiser.cjs'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    return { ok: true, out };
  } catch (e) {
    return { ok: false, out: String((e as { stdout?: string }).stdout ?? e) };
  }
}

it('an upward import and a cycle fail the rule; the same tree without them passes', () => {
  const clean = {
    'src/runtime/run.ts': "import { lower } from '../lower/lower.ts';\nexport const run = () => lower();\n",
    'src/lower/lower.ts': 'export const lower = () => 1;\n',
  };
  expect(cruise(clean).ok).toBe(true);
  const upward = cruise({ ...clean, 'src/lower/lower.ts': "import { run } from '../runtime/run.ts';\nexport const lower = () => 1;\nexport const again = run;\n" });
  expect(upward.ok).toBe(false);
  expect(upward.out).toContain('lower-may-import');
  expect(upward.out).toContain('no-circular');
  // The engine never reaches up into a command's job.
  const engineToJob = cruise({ ...clean, 'src/runtime/run.ts': "import { job } from '../jobs/job.ts';\nexport const run = () => job();\n", 'src/jobs/job.ts': 'export const job = () => 1;\n' });
  expect(engineToJob.ok).toBe(false);
  expect(engineToJob.out).toContain('runtime-may-import');
}, 60_000);

it('an import the allow-list does not name, and a folder missing from it, fail the rule', () => {
  const sideways = cruise({
    'src/families/normal.ts': "import { stop } from '../estimators/stop.ts';\nexport const normal = () => stop();\n",
    'src/estimators/stop.ts': 'export const stop = () => 1;\n',
  });
  expect(sideways.ok).toBe(false);
  expect(sideways.out).toContain('families-may-import');
  const unlisted = cruise({
    'src/plugins/train.ts': "import { lower } from '../lower/lower.ts';\nexport const train = () => lower();\n",
    'src/lower/lower.ts': 'export const lower = () => 1;\n',
  });
  expect(unlisted.ok).toBe(false);
  expect(unlisted.out).toContain('every-folder-listed');
  const allowed = cruise({
    'src/estimators/vimco.ts': "import { stop } from '../kernels/stop.ts';\nexport const vimco = () => stop();\n",
    'src/kernels/stop.ts': 'export const stop = () => 1;\n',
  });
  expect(allowed.ok).toBe(true);
}, 60_000);
