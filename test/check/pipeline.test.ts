/**
 * The pipeline composed once (src/check/pipeline.ts, `compileSource`): parse -> check -> IR ->
 * settings -> addressing -> budget, stopping at the first stage that fails; the front end's result
 * is reused for a source met again (a command that opens one model several times parses it once),
 * and not once the estimators registered have changed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { compileSource, frontEnd } from '../../src/check/pipeline.ts';
import { registerEstimator, estimatorSpec } from '../../src/estimators/registry.ts';

const MODELS = join(__dirname, '..', '..', 'models');
const vma = readFileSync(join(MODELS, 'vma_mnist.vmm'), 'utf8');

it('runs every stage: the settings given, the addressing transform, the budget', () => {
  const r = compileSource(vma);
  expect(r.problem).toBeUndefined();
  expect(r.compiled!.train).toEqual(r.ir!.train);
  const soft = compileSource(vma, { settings: { overrides: { addressing: 'soft', k: 2 } } });
  expect(soft.compiled!.train.estimator.kind).toBe('soft');
  expect(soft.compiled!.softAttention).toBeDefined();
  const control = compileSource(vma, { settings: { overrides: { addressing: 'none' } } });
  expect(control.compiled!.noMemory?.length).toBeGreaterThan(0);
  // A run's saved settings are taken as they are, and transformed the same way.
  const saved = compileSource(vma, { settings: { train: soft.compiled!.train } });
  expect(saved.compiled!.softAttention).toBeDefined();
});

it('stops at the stage that refuses: errors, settings, budget', () => {
  const bad = compileSource('model m\ndata x : binary[4]\nobserve x ~ Bernoulli(logits: y)\n');
  expect(bad.diagnostics.some((d) => d.severity === 'error')).toBe(true);
  expect(bad.compiled).toBeUndefined();
  expect(bad.problem).toBeUndefined();
  const settings = compileSource(vma, { settings: { overrides: { estimator: 'nope' } } });
  expect(settings.problem).toEqual({ stage: 'settings', message: expect.stringContaining("unknown estimator 'nope'") });
  const budget = compileSource(vma, { settings: { overrides: { batch: 100_000 } }, budget: 1e6 });
  expect(budget.problem?.stage).toBe('budget');
  expect(compileSource(vma, { settings: { overrides: { batch: 100_000 } }, budget: false }).compiled!.train.batch).toBe(100_000);
});

it('checks a source once: a second compile reuses the front end, a new estimator makes it check again', () => {
  const a = compileSource(vma, { settings: { overrides: { k: 3 } } });
  const b = compileSource(vma, { budget: false });
  expect(b.checked).toBe(a.checked);
  expect(frontEnd(vma).ir).toBe(a.ir);
  const unregister = registerEstimator({ ...estimatorSpec('iwae')!, kind: 'pipeline_test_iwae' });
  try {
    expect(frontEnd(vma).checked).not.toBe(a.checked);
  } finally {
    unregister();
  }
});
