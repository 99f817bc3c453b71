/**
 * `vmm sample` accepts every run `vmm train` makes (issue #22): models whose data are not square
 * images (a Gaussian mixture's points, a recall task's value bits) get their generations and
 * reconstructions as CSV tables, not an internal error from the PNG writer.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli as run } from './run_cli.ts';

const MODELS = join(__dirname, '..', '..', 'models');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-sample-tables-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('vmm sample on data that are not images', () => {
  it.each([
    ['gmm', 2],
    ['titans_recall', 8],
  ])('%s: samples.csv and reconstructions.csv with %i values per row', async (model, d) => {
    const out = join(tmp, model);
    const trained = await run('train', join(MODELS, `${model}.vmm`), '--out', out, '--steps', '1', '--batch', '2', '--valid-size', '2', '--quiet', '--backend', 'wasm');
    expect(trained.code, trained.err).toBe(0);
    const r = await run('sample', out, '--rows', '3', '--samples', '2', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toContain('internal error');
    expect(r.err).toContain('not a square image: writing the values as tables');
    expect(r.out.trim().split('\n')).toEqual([join(out, 'samples', 'samples.csv'), join(out, 'samples', 'reconstructions.csv')]);
    const samples = readFileSync(join(out, 'samples', 'samples.csv'), 'utf8').trim().split('\n');
    expect(samples[0]).toBe(`episode,sample,${Array.from({ length: d }, (_, i) => `x${i}`).join(',')}`);
    expect(samples.slice(1).map((l) => l.split(',').slice(0, 2).join())).toEqual(['0,0', '0,1', '1,0', '1,1', '2,0', '2,1']);
    for (const line of samples.slice(1)) expect(line.split(',').slice(2).every((v) => Number.isFinite(Number(v)))).toBe(true);
    const recon = readFileSync(join(out, 'samples', 'reconstructions.csv'), 'utf8').trim().split('\n');
    expect(recon.slice(1).map((l) => l.split(',').slice(0, 2).join())).toEqual(['0,target', '0,reconstruction', '1,target', '1,reconstruction', '2,target', '2,reconstruction']);
    expect(recon.every((l) => l.split(',').length === d + 2)).toBe(true);
  }, 30_000);
});
