/**
 * "A program that checks, trains": programs assembled at random from the language's pieces (memory
 * or not, learned entries stacked before or after it, an address read raw or through a net, latent
 * slots, latents and observations of every family, pooling and attention, every estimator of the
 * registry) either get an error diagnostic from the checker, or build a trainer and run a training
 * step on tiny synthetic inputs with a finite bound and no internal error.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { InternalError } from '../../src/diagnostics/diagnostic.ts';
import { applySettings, SettingsError } from '../../src/check/settings.ts';
import { estimatorKinds } from '../../src/estimators/registry.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { describeBackends } from '../estimators/backends.ts';
import { fakeBatch } from './helpers.ts';

interface Shape {
  memory: 'none' | 'mem' | 'dummies_after' | 'dummies_before' | 'slots';
  read: 'raw' | 'net';
  latent: 'none' | 'Normal' | 'Laplace' | 'Beta';
  observe: 'Bernoulli' | 'BernoulliProbs';
  pooled: boolean;
  guide: boolean;
  estimator: string;
  k: number;
}

function program(p: Shape): string {
  const lines = ['model gen', 'const D = 6', 'const H = 3', 'const S = 2', 'size M', 'data x : binary[D]'];
  const hasMem = p.memory !== 'none';
  if (hasMem) lines.push('memory mem : binary[M, D]');
  lines.push('param dummies : real[2, D] = normal(0.1)', 'net h = linear(D, H)', 'net g = linear(D, H)', 'net dec = mlp(2 * H, 8, D)', 'net q = linear(D, 2 * H)');
  const table = p.memory === 'dummies_after' ? 'stack(mem, dummies)' : p.memory === 'dummies_before' ? 'stack(dummies, mem)' : p.memory === 'slots' ? 'slots' : 'mem';
  if (p.memory === 'slots') lines.push(`latent slots : real[S, D] ~ Normal(${p.pooled ? 'pool(mem)' : '0'}, 1)`);
  let r = 'g(x) * 0';
  if (hasMem) {
    lines.push(`let t = ${table}`, 'discrete address a ~ Categorical(t)');
    r = p.read === 'net' ? 'g(t[a])' : 'h(t[a]) * 0 + g(t[a])';
  }
  let z = 'g(x) * 0';
  if (p.latent === 'Normal') lines.push('latent z : real[H] ~ Normal(0, 1)');
  if (p.latent === 'Laplace') lines.push('latent z : real[H] ~ Laplace(0, 1)');
  if (p.latent === 'Beta') lines.push('latent z : real[H] ~ Beta(2, 2)');
  if (p.latent !== 'none') z = 'z';
  const logits = `dec(concat(${z}, ${r}))`;
  lines.push(p.observe === 'Bernoulli' ? `observe x ~ Bernoulli(logits: ${logits})` : `observe x ~ Bernoulli(probs: sigmoid(${logits}))`);
  if (p.guide) {
    lines.push('guide {');
    if (p.memory === 'slots') lines.push('  slots ~ Normal(pool(mem) + sum(q(x)) * 0, 1)');
    if (hasMem) lines.push(`  let e = ${table}`, '  a ~ Categorical(logits: h(e) @ h(x))');
    if (p.latent === 'Normal' || p.latent === 'Laplace') lines.push(`  z ~ ${p.latent}(q(x)[0:3] * 0 + h(x), softplus(h(x)) + 0.1)`.replace('q(x)[0:3] * 0 + ', ''));
    if (p.latent === 'Beta') lines.push('  z ~ Beta(softplus(h(x)) + 0.5, softplus(g(x)) + 0.5)');
    lines.push('}');
  }
  return lines.join('\n') + '\n';
}

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  memory: fc.constantFrom('none', 'mem', 'dummies_after', 'dummies_before', 'slots'),
  read: fc.constantFrom('raw', 'net'),
  latent: fc.constantFrom('none', 'Normal', 'Laplace', 'Beta'),
  observe: fc.constantFrom('Bernoulli', 'BernoulliProbs'),
  pooled: fc.boolean(),
  guide: fc.boolean(),
  estimator: fc.constantFrom(...estimatorKinds()),
  k: fc.integer({ min: 1, max: 3 }),
});

describeBackends('a program that checks, trains', (backend) => {
  it('random programs: a checker error, or a finite training step', () => {
    let trained = 0;
    let refused = 0;
    fc.assert(
      fc.property(shapeArb, (p) => {
        const source = program(p);
        const r = frontEnd(source);
        if (!r.ir || r.diagnostics.some((d) => d.severity === 'error')) {
          expect(r.diagnostics.filter((d) => d.severity === 'error').length, source).toBeGreaterThan(0);
          refused++;
          return;
        }
        let ir;
        try {
          ir = applySettings(r.ir, { estimator: p.estimator, k: p.estimator === 'vimco' ? Math.max(2, p.k) : p.k });
        } catch (e) {
          // The estimator does not fit this model: a one-line settings error, never a crash.
          expect(e, source).toBeInstanceOf(SettingsError);
          refused++;
          return;
        }
        const trainer = new Trainer(ir, 2);
        try {
          const m = trainer.step(fakeBatch(ir, 2, { M: 3 }, 5));
          expect(Number.isFinite(m.bound), `${source}\n${p.estimator}: bound ${m.bound}`).toBe(true);
          trained++;
        } catch (e) {
          if (e instanceof InternalError) throw new Error(`internal error on a program that checks:\n${source}\nestimator ${p.estimator}: ${e.message}`);
          throw e;
        } finally {
          trainer.dispose();
        }
      }),
      { numRuns: 100, seed: backend === 'cpu' ? 20261201 : 20261202 },
    );
    // The generator must exercise both outcomes, mostly training.
    expect(trained).toBeGreaterThan(refused / 2);
  }, 300_000);
});
