/** The library API: compile(source, options) -> Trainer, and its errors. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile, CompileError, selectBackend, type InputBatch } from '../src/index.ts';
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

  it('steps on inputs kept on the device (DeviceInput) as on host arrays, and leaves them alone', () => {
    const host = compile(source, { batch: 2, k: 2, seed: 3 });
    const device = compile(source, { batch: 2, k: 2, seed: 3 });
    const batch = fakeBatch(host.ir, 2, { M: 3 });
    const tensors = batch.inputs.map((i) => tf.tensor(i.data, i.shape));
    const onDevice: InputBatch = { inputs: batch.inputs.map((i, k) => ({ ...i, data: tensors[k]! })) };
    for (let s = 0; s < 3; s++) expect(device.step(onDevice).bound).toBeCloseTo(host.step(batch).bound, 4);
    // No tensor is made per step for them, and none of them is disposed.
    const before = tf.memory().numTensors;
    for (let s = 0; s < 5; s++) device.step(onDevice);
    expect(tf.memory().numTensors).toBe(before);
    expect(tensors.every((t) => !t.isDisposed)).toBe(true);
    // A tensor whose shape is not the batch's is a user error naming the input.
    const wrong: InputBatch = { inputs: onDevice.inputs.map((i, k) => (k === 0 ? { ...i, shape: [...i.shape.slice(0, -1), i.shape[i.shape.length - 1]! + 1] } : i)) };
    expect(() => device.step(wrong)).toThrow(new RegExp(`input '${batch.inputs[0]!.name}' is a tensor of shape`));
    tf.dispose(tensors);
    host.dispose();
    device.dispose();
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
