/**
 * Run folders saved before the estimators' arguments were kept by name (`args`) still open: their
 * `vimcoBaseline`, `reinforceBaseline` and `temperature` become the arguments of the run's estimator
 * (the shipped pretrained/vma_omniglot was saved so).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { printEstimator } from '../../src/ir/print.ts';
import { irOfRun, RunDir, upgradeEstimator } from '../../src/jobs/run_dir.ts';
import type { EstimatorSettings } from '../../src/ir/types.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-legacy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const old = (kind: string, k: number) => ({ kind, k, vimcoBaseline: 'arithmetic', reinforceBaseline: 'nvil', temperature: 0.3 }) as unknown as EstimatorSettings;

it('an old estimator record becomes its estimator arguments; a new one is kept', () => {
  expect(upgradeEstimator(old('vimco', 4))).toEqual({ kind: 'vimco', k: 4, args: { baseline: 'arithmetic' } });
  expect(upgradeEstimator(old('reinforce', 1))).toEqual({ kind: 'reinforce', k: 1, args: { baseline: 'nvil' } });
  expect(upgradeEstimator(old('relaxed', 2))).toEqual({ kind: 'relaxed', k: 2, args: { temperature: 0.3 } });
  expect(upgradeEstimator(old('iwae', 8))).toEqual({ kind: 'iwae', k: 8, args: {} });
  const now: EstimatorSettings = { kind: 'vimco', k: 4, args: { baseline: 'geometric' } };
  expect(upgradeEstimator(now)).toBe(now);
});

it('a run folder with an old config.json opens, and its program is the run estimator', () => {
  const source = readFileSync(join(__dirname, '..', '..', 'models', 'sbn.vmm'), 'utf8');
  const config = {
    version: 1,
    modelPath: 'models/sbn.vmm',
    source,
    train: { estimator: old('vimco', 4), optimizer: { kind: 'adam', lr: 3e-4 }, batch: 16, steps: 100, episodes: { classes: 4, shots: 2, distractors: 0 }, dataset: 'binarized_mnist' },
    data: { dataset: 'binarized_mnist', seed: 1, classes: 4, shots: 2, distractors: 0 },
    seed: 1,
    checkpointEvery: 200,
    validEvery: 5,
    validSize: 256,
    createdAt: '2026-01-01T00:00:00.000Z',
  };
  const dir = join(tmp, 'run');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const opened = RunDir.open(dir).config;
  expect(opened.train.estimator).toEqual({ kind: 'vimco', k: 4, args: { baseline: 'arithmetic' } });
  expect(printEstimator(irOfRun(opened).train.estimator)).toBe('vimco(k: 4, baseline: arithmetic)');
});
