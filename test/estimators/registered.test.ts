/**
 * An estimator is one registry entry: a toy one registered here, in the test, with an argument of
 * its own (`step_scale`, a number with limits) is usable end to end without any other file knowing
 * it: the checker reads its arguments from the file (limits, unknown arguments), the IR printer, the
 * explanation and the plan show it, the settings and the command-line flags override its argument,
 * and the trainer takes a step with it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../../src/check/explain.ts';
import { frontEnd } from '../../src/check/pipeline.ts';
import { addEstimatorArgFlags, estimatorArgFlags } from '../../src/cli/front_end.ts';
import { applySettings, SettingsError } from '../../src/check/settings.ts';
import { argValue, estimatorArgs, estimatorKinds, registerEstimator, type EstimatorSpec } from '../../src/estimators/registry.ts';
import type { Estimator, EstimatorResult, EstimatorState, EstimatorTerms } from '../../src/estimators/types.ts';
import { VimcoEstimator, type VimcoBaseline } from '../../src/estimators/vimco.ts';
import { printIr } from '../../src/ir/print.ts';
import { describePlan } from '../../src/lower/plan.ts';
import { selectBackend } from '../../src/runtime/backend.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { fakeBatch } from '../lower/helpers.ts';

/** VIMCO whose surrogate is multiplied by `step_scale` (a per-estimator step size). */
class ScaledVimco implements Estimator {
  readonly kind = 'scaled_vimco';
  readonly discrete = 'score' as const;
  readonly needsBaselineNet = false;
  private readonly inner: VimcoEstimator;
  calls = 0;
  constructor(
    readonly k: number,
    readonly scale: number,
    baseline: VimcoBaseline,
  ) {
    this.inner = new VimcoEstimator(k, baseline);
  }
  initState(): EstimatorState {
    return this.inner.initState();
  }
  estimate(terms: EstimatorTerms, state: EstimatorState): EstimatorResult {
    this.calls++;
    const r = this.inner.estimate(terms, state);
    return { ...r, surrogate: tf.tidy(() => tf.mul(r.surrogate, this.scale) as tf.Scalar) };
  }
}

let made: ScaledVimco | undefined;

const SPEC: EstimatorSpec = {
  kind: 'scaled_vimco',
  args: [
    { name: 'k', kind: 'count', min: 2, below: { code: 'VMM3012', why: 'it is VIMCO' } },
    { name: 'step_scale', kind: 'number', limit: { what: 'the step scale', integer: false, min: 0, minExclusive: true, max: 10 }, default: 1, help: 'the factor on the surrogate' },
    { name: 'baseline', kind: 'choice', choices: ['geometric', 'arithmetic'], default: 'geometric' },
  ],
  defaultK: 3,
  handlers: [],
  terms: 'sampled',
  summary: 'VIMCO with its surrogate scaled (a test estimator)',
  fits: () => [],
  make: (s) => (made = new ScaledVimco(s.k, argValue(s, 'step_scale') as number, argValue(s, 'baseline') as VimcoBaseline)),
  explain: (s, l) => `${l.what}; scaled VIMCO (step scale ${argValue(s, 'step_scale')})`,
  plan: { signal: (s) => `VIMCO signal scaled by ${argValue(s, 'step_scale')}` },
};

const model = (estimator: string) => `model tiny_sbn
data x : binary[4]
param b : real[3] = zeros
net px = linear(3, 4)
net q1 = linear(4, 3)
discrete h ~ Bernoulli(logits: b)
observe x ~ Bernoulli(logits: px(h))
guide {
  h ~ Bernoulli(logits: q1(x))
}
train {
  estimator = ${estimator}
  batch = 2
}
`;

let unregister: () => void;
beforeAll(async () => {
  unregister = registerEstimator(SPEC);
  await selectBackend({ force: 'cpu', log: () => {} });
});
afterAll(() => unregister());

describe('an estimator registered in a test', () => {
  it('is one of the estimators, and its argument is a flag of its own', () => {
    expect(estimatorKinds()).toContain('scaled_vimco');
    expect(estimatorArgs().find((a) => a.name === 'step_scale')).toMatchObject({ kind: 'number', estimators: ['scaled_vimco'], help: 'scaled_vimco: the factor on the surrogate' });
    // `baseline` is vimco's, reinforce's and now the toy's: one flag for all three.
    expect(estimatorArgs().find((a) => a.name === 'baseline')!.estimators).toEqual(['vimco', 'reinforce', 'scaled_vimco']);
    expect(() => registerEstimator(SPEC)).toThrow(/registered already/);
  });

  it('is checked in the train block: its arguments, defaults and limits', () => {
    const r = frontEnd(model('scaled_vimco(k: 4, step_scale: 0.5)'));
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(r.ir!.train.estimator).toEqual({ kind: 'scaled_vimco', k: 4, args: { step_scale: 0.5, baseline: 'geometric' } });
    expect(frontEnd(model('scaled_vimco')).ir!.train.estimator).toEqual({ kind: 'scaled_vimco', k: 3, args: { step_scale: 1, baseline: 'geometric' } });

    const tooBig = frontEnd(model('scaled_vimco(k: 4, step_scale: 20)'));
    expect(tooBig.diagnostics.map((d) => [d.code, d.message])).toContainEqual(['VMM3005', 'the step scale must be a number above 0 and at most 10, found 20']);
    const unknown = frontEnd(model('scaled_vimco(k: 4, temperature: 1)'));
    expect(unknown.diagnostics.map((d) => d.code)).toContain('VMM3004');
    expect(unknown.diagnostics.find((d) => d.code === 'VMM3004')!.message).toContain('`step_scale:`');
    const fewK = frontEnd(model('scaled_vimco(k: 1)'));
    expect(fewK.diagnostics.map((d) => d.message)).toContain('`scaled_vimco` needs k >= 2 samples: it is VIMCO; found k = 1');
  });

  it('is printed in the IR, explained and planned from its entry', () => {
    const r = frontEnd(model('scaled_vimco(k: 4, step_scale: 0.5)'));
    expect(printIr(r.ir!)).toContain('estimator = scaled_vimco(k: 4, step_scale: 0.5, baseline: geometric)');
    const text = explain(r.checked!);
    expect(text).toContain('discrete Bernoulli; scaled VIMCO (step scale 0.5)');
    const plan = describePlan(r.ir!);
    expect(plan).toContain('lowered for scaled_vimco(k: 4, step_scale: 0.5, baseline: geometric)');
    expect(plan).toContain('sampled K=4 per example from q; VIMCO signal scaled by 0.5');
  });

  it('takes overrides of its argument from the settings and the command line', () => {
    const ir = frontEnd(model('vimco(k: 4, baseline: arithmetic)')).ir!;
    // Switching to it keeps the arguments it shares with the file's estimator and fills the others.
    const switched = applySettings(ir, { estimator: 'scaled_vimco' });
    expect(switched.train.estimator).toEqual({ kind: 'scaled_vimco', k: 3, args: { step_scale: 1, baseline: 'arithmetic' } });
    expect(applySettings(ir, { estimator: 'scaled_vimco', args: { step_scale: 2 } }).train.estimator.args).toEqual({ step_scale: 2, baseline: 'arithmetic' });
    expect(() => applySettings(ir, { estimator: 'scaled_vimco', args: { step_scale: 11 } })).toThrow(SettingsError);
    expect(() => applySettings(ir, { estimator: 'scaled_vimco', args: { temperature: 1 } })).toThrow(/scaled_vimco takes no temperature/);
    // vimco does not take it.
    expect(() => applySettings(ir, { args: { step_scale: 2 } })).toThrow(/vimco takes no step_scale/);

    const cmd = addEstimatorArgFlags(new Command().exitOverride());
    cmd.parse(['--step-scale', '0.25', '--baseline', 'geometric'], { from: 'user' });
    expect(estimatorArgFlags(cmd.opts())).toEqual({ baseline: 'geometric', step_scale: 0.25 });
    expect(() => addEstimatorArgFlags(new Command().exitOverride()).parse(['--step-scale', '99'], { from: 'user' })).toThrow(/--step-scale expects a number above 0 and at most 10, got '99'/);
  });

  it('trains: the trainer builds it from the settings and takes steps with it', () => {
    const ir = frontEnd(model('scaled_vimco(k: 2, step_scale: 0.5)')).ir!;
    const trainer = new Trainer(ir, 1);
    expect(made).toBeInstanceOf(ScaledVimco);
    expect(made!.scale).toBe(0.5);
    for (let i = 0; i < 2; i++) {
      const m = trainer.step(fakeBatch(ir, 2));
      expect(Number.isFinite(m.loss)).toBe(true);
      expect(Number.isFinite(m.bound)).toBe(true);
    }
    expect(made!.calls).toBe(2);
  });
});
