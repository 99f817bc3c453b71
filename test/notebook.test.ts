/**
 * examples/notebook.ipynb runs: its code cells, in order, as one ES module (what a tslab or Deno
 * kernel does cell by cell), with `'vmm'` resolved to this checkout's src/index.ts, in a child
 * Node process started the way `vmm` is (bin/run-ts.mjs). The cells run from the repository root,
 * with the Omniglot fixture as $VMM_DATA.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
// Inside the checkout (scratch/ is ignored by git), so that the script resolves this checkout's packages.
mkdirSync(join(ROOT, 'scratch'), { recursive: true });
const tmp = mkdtempSync(join(ROOT, 'scratch', 'notebook-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Cell {
  cell_type: string;
  source: string[];
}

describe('examples/notebook.ipynb', () => {
  it('runs its code cells in order from plain Node', () => {
    const nb = JSON.parse(readFileSync(join(ROOT, 'examples', 'notebook.ipynb'), 'utf8')) as { cells: Cell[] };
    const code = nb.cells.filter((c) => c.cell_type === 'code').map((c) => c.source.join(''));
    expect(code.length).toBeGreaterThanOrEqual(4);
    const script = code.join('\n\n').replaceAll("from 'vmm'", `from ${JSON.stringify(join(ROOT, 'src', 'index.ts'))}`);
    const file = join(tmp, 'notebook.ts');
    writeFileSync(file, script + '\nexport {};\n');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'run-ts.mjs'), file], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, VMM_DATA: join(ROOT, 'test', 'fixtures', 'data') },
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step 40: bound -\d+\.\d nats/);
    expect(r.stdout).toMatch(/held-out bound: -\d+\.\d nats/);
    expect(r.stdout).toContain('samples: 4 x 784');
    expect(r.stdout).toMatch(/vma_omniglot: finished, trained \d+ steps/);
    expect(r.stdout).toMatch(/5-way 1-shot: \d+\.\d% ± \d+\.\d/);
    // Each shape moved by a pixel finds its memory entry.
    expect(r.stdout).toMatch(/query 0 -> bar .*\n.*query 1 -> column .*\n.*query 2 -> ring/);
  }, 150_000);
});
