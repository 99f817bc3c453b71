/** The library API: compile(source, options) -> Trainer, and its errors. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, CompileError, selectBackend } from '../src/index.ts';
import { fakeBatch } from './lower/helpers.ts';

const source = readFileSync(join(__dirname, '..', 'models', 'vma_mnist.vmm'), 'utf8');
beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
});

describe('compile()', () => {
  it('returns a trainer for hard and soft addressing of the same file', () => {
    for (const addressing of ['hard', 'soft'] as const) {
      const trainer = compile(source, { addressing, batch: 2, k: 2 });
      expect(trainer.estimator.kind).toBe(addressing === 'soft' ? 'soft' : 'vimco');
      const m = trainer.step(fakeBatch(trainer.ir, 2, { M: 3 }));
      expect(Number.isFinite(m.bound)).toBe(true);
      trainer.dispose();
    }
  });

  it('throws CompileError with rendered diagnostics for a model with mistakes', () => {
    const bad = source.replace('observe x ~ Bernoulli(logits: dec(concat(z, r)))', 'observe x ~ Bernoulli(logits: dec(concat(z, q)))');
    try {
      compile(bad, { path: 'bad.vmm' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toMatch(/^VMM2/);
      expect((e as Error).message).toMatch(/^bad\.vmm:\d+:\d+: error\[VMM2\d{3}\]/);
    }
  });

  it('refuses an estimator that does not apply', () => {
    expect(() => compile(source, { estimator: 'vimco', k: 1 })).toThrow(/k >= 2/);
  });
});

describe('compile() without a backend', () => {
  it('is a one-line BackendError naming the fix (in a process where none was selected)', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = "import { compile } from './src/index.ts'; try { compile(`model m\\ndata x : binary[4]\\nnet f = linear(4, 4)\\nparam b : real[4] = zeros\\nlatent z : real[4] ~ Normal(b, 1)\\nobserve x ~ Bernoulli(logits: f(z))\\n`); console.log('no error'); } catch (e) { console.log(e.name + ': ' + e.message); }";
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(__dirname, '..'), encoding: 'utf8' });
    expect(out.trim()).toBe('BackendError: compile() needs a backend: `await selectBackend()` first, or use `await load(source)`, which selects one');
  }, 60_000);
});
