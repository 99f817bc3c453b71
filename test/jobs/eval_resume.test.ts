/**
 * `vmm eval` respects the user's time: progress with an ETA, partial results kept when it is
 * stopped (Ctrl-C: its AbortSignal) and resumed by the same call, with exactly the figures of an
 * uninterrupted evaluation; plots as SVG with a PNG beside each, ticks at the evaluated sizes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backend.ts';
import { EvalInterrupted, runEval, type EvalOptions, type EvalProgress } from '../../src/jobs/evaluate_run.ts';
import { runCli } from '../cli/run_cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const RUN = join(ROOT, 'pretrained', 'vma_omniglot');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'data');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-eval-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
});

const options = (out: string): EvalOptions => ({
  data: FIXTURES,
  samples: 5,
  episodes: 40,
  memorySizes: '1,2,4',
  classesList: '1,2',
  ways: '5',
  large: '',
  seed: 12345,
  quiet: true,
  out,
});

describe('vmm eval: progress, interruption and resume', () => {
  it('reports progress with an ETA, and a resumed evaluation gives the figures of an uninterrupted one', async () => {
    const seen: EvalProgress[] = [];
    const straight = await runEval(RUN, { ...options(join(tmp, 'straight')), onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.at(-1)!.done).toBe(seen.at(-1)!.total);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.done).toBeGreaterThan(seen[i - 1]!.done);
    expect(seen.every((p) => p.etaSeconds === undefined || p.etaSeconds >= 0)).toBe(true);
    expect(seen[0]!.stage).toMatch(/C=1/);

    // Stopped after its second batch (as Ctrl-C does), then run again.
    const out = join(tmp, 'resumed');
    const stop = new AbortController();
    let calls = 0;
    const first = runEval(RUN, { ...options(out), signal: stop.signal, onProgress: () => ++calls === 2 && stop.abort() });
    await expect(first).rejects.toBeInstanceOf(EvalInterrupted);
    expect(existsSync(join(out, 'partial.json'))).toBe(true);
    expect(existsSync(join(out, 'eval.json'))).toBe(false);
    const after: EvalProgress[] = [];
    const resumed = await runEval(RUN, { ...options(out), onProgress: (p) => after.push(p) });
    expect(after[0]!.done).toBeGreaterThan(seen[1]!.done); // the first two batches were not done again
    expect(resumed.nll).toEqual(straight.nll);
    expect(resumed.ways).toEqual(straight.ways);
    expect(existsSync(join(out, 'partial.json'))).toBe(false);

    // Other options: the partial results are not used.
    const other = join(tmp, 'other');
    const stop2 = new AbortController();
    await expect(runEval(RUN, { ...options(other), signal: stop2.signal, onProgress: () => stop2.abort() })).rejects.toBeInstanceOf(EvalInterrupted);
    const fresh: EvalProgress[] = [];
    await runEval(RUN, { ...options(other), samples: 6, onProgress: (p) => fresh.push(p) });
    expect(fresh[0]!.done).toBeLessThanOrEqual(seen[0]!.done * 2);
  }, 120_000);

  it('writes a PNG beside every SVG, with the evaluated memory sizes as ticks and error bars', () => {
    const out = join(tmp, 'straight');
    for (const name of ['nll_vs_memory', 'kl_vs_memory', 'accuracy_vs_memory']) {
      const svg = readFileSync(join(out, `${name}.svg`), 'utf8');
      const png = readFileSync(join(out, `${name}.png`));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      const ticks = [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="middle">(\d+)<\/text>/g)].map((m) => m[1]);
      expect(ticks).toEqual(['1', '2', '4']);
      expect(svg).toMatch(/<path d="M[\d.]+ [\d.]+V[\d.]+M/); // error bars
    }
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('Protocol: 40 test episodes per configuration, 5 importance samples');
  });

  it('vmm eval --quick states its preset in the report; explicit --episodes wins', async () => {
    const out = join(tmp, 'quick');
    const r = await runCli('eval', RUN, '--quick', '--episodes', '20', '--out', out, '--data', FIXTURES, '--memory-sizes', '1,2', '--classes-list', '1', '--ways', '', '--large', '', '--backend', 'wasm', '--json');
    expect(r.code, r.err).toBe(0);
    const result = JSON.parse(r.out) as { samples: number; episodes: number; quick: boolean };
    expect(result).toMatchObject({ samples: 100, episodes: 20, quick: true });
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('Quick evaluation');
  }, 120_000);
});
