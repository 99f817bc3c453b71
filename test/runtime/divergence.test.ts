/**
 * Why a training stopped, told apart (issue #22): NaN from invalid model maths names the first site
 * whose value is not finite (not the learning rate); a bound that runs away to implausible values
 * stops the run instead of training on silently.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli as run } from '../cli/run_cli.ts';
import { implausibleBound } from '../../src/runtime/divergence.ts';
import { RunDir } from '../../src/jobs/run_dir.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-divergence-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const tiny = ['--steps', '3', '--batch', '2', '--valid-size', '2', '--quiet', '--backend', 'wasm'];

function model(name: string, logits: string): string {
  const file = join(tmp, `${name}.vmm`);
  writeFileSync(
    file,
    `model ${name}\ndata x : binary[784]\nnet dec = mlp(4, 8, 784)\nlatent z : real[4] ~ Normal(loc: 0, scale: 1)\n` +
      `observe x ~ Bernoulli(logits: ${logits})\ntrain { estimator = iwae(k: 1) }\n`,
  );
  return file;
}

describe('NaN from the model maths', () => {
  it.each([
    ['badlog', 'log(dec(z))'],
    ['divzero', 'dec(z) / 0'],
  ])('%s: names the site whose value is not finite, not the learning rate', async (name, logits) => {
    const r = await run('train', model(name, logits), '--out', join(tmp, name), ...tiny);
    expect(r.code).toBe(1);
    expect(r.err).toContain('at step 1; training stopped');
    expect(r.err).toMatch(/The first value that is not finite is the logits of Bernoulli at the model's observe site 'x' \((NaN|-?Infinity)\)/);
    expect(r.err).toContain('a lower learning rate will not help');
    expect(r.err).not.toContain('start again with a lower learning rate');
    expect(r.err).not.toContain('internal error');
  });
});

describe('divergence', () => {
  it('a bound four orders of magnitude below the first one stops the run, saying so', async () => {
    const out = join(tmp, 'gmm');
    const r = await run('train', join(__dirname, '..', '..', 'models', 'gmm.vmm'), '--out', out, '--lr', '1000', '--steps', '30', '--batch', '4', '--valid-size', '4', '--quiet', '--backend', 'wasm');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the bound diverged to -[\d.]+e\+\d+ at step \d+ \(it was -[\d.]+ at the start\); training stopped/);
    expect(r.err).toContain('Try a lower learning rate (--lr)');
    const records = new RunDir(out).readMetrics();
    expect(records.at(-1)?.['kind']).toBe('error');
    expect((records.at(-1)?.['step'] as number) < 30).toBe(true);
  });

  it('implausibleBound: relative to the first bound', () => {
    expect(implausibleBound(-1e14, -550)).toBe(true);
    expect(implausibleBound(-5e6, -550)).toBe(false);
    expect(implausibleBound(-100, -0.5)).toBe(false);
    expect(implausibleBound(-2e4, -0.5)).toBe(true);
  });
});
