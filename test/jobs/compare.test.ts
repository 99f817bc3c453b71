/**
 * `compare()` of the library (src/jobs/compare.ts): hard addressing against the no-memory control,
 * two seeds each on the embedded MNIST digits, a few steps: per-variant means with seed-level
 * standard errors, the paired difference against the control, progress callbacks, the report in
 * its folder, and an abort that rejects with the signal's reason before anything trains.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { compare, type CompareProgress } from '../../src/index.ts';

const model = join(__dirname, '..', '..', 'models', 'vma_mnist.vmm');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-compare-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tiny = {
  variants: ['hard', 'control'],
  seeds: 2,
  overrides: { steps: 2, batch: 4 },
  classes: 2,
  shots: 1,
  validSize: 8,
  validEvery: 2,
  evalEpisodes: 4,
  evalSamples: 4,
  memorySizes: [1, 2],
  backend: { force: 'wasm' as const },
};

it('trains hard and the control over two seeds; returns means, standard errors and the paired difference', async () => {
  const out = join(tmp, 'hard-vs-control');
  const events: CompareProgress[] = [];
  const r = await compare(model, { ...tiny, out, onProgress: (p) => events.push(p) });
  expect(r.out).toBe(out);
  expect(r.entries.map((e) => `${e.variant} ${e.seed}`)).toEqual([
    'vma_mnist (hard, vimco) 1',
    'vma_mnist (hard, vimco) 2',
    'vma_mnist (no-memory control) 1',
    'vma_mnist (no-memory control) 2',
  ]);
  expect(r.variants.map((v) => [v.variant, v.control])).toEqual([
    ['vma_mnist (hard, vimco)', false],
    ['vma_mnist (no-memory control)', true],
  ]);
  for (const v of r.variants) {
    const at2 = v.nll.get(2)!;
    expect(at2.over).toBe('seeds');
    expect(at2.n).toBe(2);
    expect(Number.isFinite(at2.mean) && Number.isFinite(at2.se)).toBe(true);
  }
  // The table's paired columns: hard against the control, and the control against hard.
  expect(r.paired.map((p) => [p.variant, p.against, p.memory])).toEqual([
    ['vma_mnist (hard, vimco)', 'vma_mnist (no-memory control)', 2],
    ['vma_mnist (no-memory control)', 'vma_mnist (hard, vimco)', 2],
  ]);
  const d = r.paired[0];
  expect(r.paired[1]!.difference.mean).toBeCloseTo(-d!.difference.mean, 9);
  expect(d!.difference.over).toBe('seeds');
  expect(Number.isFinite(d!.difference.mean) && Number.isFinite(d!.difference.se)).toBe(true);
  expect(r.table).toMatch(/vs no-memory control at M=2 \(paired\)/);
  expect(existsSync(join(out, 'compare.md'))).toBe(true);
  expect(existsSync(join(out, 'hard-s1', 'summary.json'))).toBe(true);
  expect(events.filter((e) => e.stage === 'train')).toHaveLength(8);
  expect(events.some((e) => e.stage === 'evaluate')).toBe(true);
}, 300_000);

it('runs given as directories: the report names the seeds they have, not the command\'s --seeds', async () => {
  const runs = join(tmp, 'hard-vs-control');
  const out = join(tmp, 'from-dirs');
  // Two hard seeds and one control seed, with the default --seeds (3) and --seed (1) of the command.
  const r = await compare(['hard-s1', 'hard-s2', 'control-s2'].map((d) => join(runs, d)), { ...tiny, seeds: undefined, out });
  expect(r.entries.map((e) => e.seed)).toEqual([1, 2, 2]);
  const md = readFileSync(join(out, 'compare.md'), 'utf8');
  expect(md).toContain('(1 to 2 per variant here; seeds 1, 2)');
  expect(md).not.toMatch(/3 per variant|seeds 1\.\.3/);
}, 300_000);

it('rejects with the signal\'s reason, before a run starts, when aborted', async () => {
  const out = join(tmp, 'aborted');
  const stop = new AbortController();
  stop.abort();
  await expect(compare(model, { ...tiny, out, signal: stop.signal })).rejects.toThrow(/abort/i);
  expect(existsSync(join(out, 'hard-s1'))).toBe(false);
});

it('compares a model without a memory (one NLL column, no memory sizes): the table has as many cells as headers', async () => {
  const gmm = join(__dirname, '..', '..', 'models', 'gmm.vmm');
  const out = join(tmp, 'gmm');
  const r = await compare(gmm, { variants: ['hard'], seeds: 2, overrides: { steps: 3, batch: 8 }, validSize: 8, validEvery: 3, evalEpisodes: 8, evalSamples: 4, backend: { force: 'wasm' as const }, out });
  const lines = r.table.split('\n').filter((l) => l.startsWith('|'));
  const cells = (l: string) => l.split(/(?<!\\)\|/).length; // escaped pipes (q(a\|x)) are not cell borders
  expect(lines.length).toBeGreaterThanOrEqual(3);
  for (const l of lines) expect(cells(l)).toBe(cells(lines[0]!));
  expect(lines[0]).toMatch(/\| NLL +\|/);
  expect(lines[0]).not.toMatch(/M=/); // no memory-size columns
  expect(r.variants).toHaveLength(1);
  expect(r.variants[0]!.plain?.n).toBe(2);
}, 300_000);
