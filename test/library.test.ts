/**
 * The library API of src/library.ts: load (backend chosen), train on a data set or on batches,
 * evaluate, save/load weights as safetensors, sample; input names checked with a user error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBatch, evaluate, InputError, load, loadWeights, sample, saveWeights, train, type RawBatch } from '../src/index.ts';
import { currentBackend } from '../src/runtime/backend.ts';
import { CheckpointError } from '../src/runtime/checkpoint.ts';

const MODELS = join(__dirname, '..', 'models');
const gmm = readFileSync(join(MODELS, 'gmm.vmm'), 'utf8');
const vma = readFileSync(join(MODELS, 'vma_mnist.vmm'), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-lib-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the library API', () => {
  it('load selects a backend itself; train improves the held-out bound; weights round-trip through safetensors', async () => {
    expect(currentBackend()).toBeUndefined();
    const model = await load(gmm, { batch: 64 });
    expect(currentBackend()).toBeDefined();
    const before = evaluate(model).bound;
    const last = train(model, { steps: 150 });
    expect(last.step).toBe(150);
    expect(Number.isFinite(last.bound)).toBe(true);
    const after = evaluate(model);
    expect(after.examples).toBe(256);
    expect(after.bound - before).toBeGreaterThan(1);

    const path = join(tmp, 'gmm.safetensors');
    saveWeights(model, path);
    // The layout of the safetensors specification, read here without our decoder.
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + n)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header['__metadata__']).toEqual({ format: 'vmm-weights', model: 'gmm', step: '150' });
    const means = header['param/means']!;
    expect([means.dtype, means.shape]).toEqual(['F32', [4, 2]]);
    const values = Array.from({ length: 8 }, (_, i) => bytes.readFloatLE(8 + n + means.data_offsets[0] + 4 * i));
    expect(values).toEqual(Array.from(model.model.variables.get('param/means')!.dataSync()));
    expect((8 + n) % 8).toBe(0);

    const fresh = await load(gmm, { batch: 64, seed: 99 });
    expect(evaluate(fresh).bound).not.toBe(after.bound);
    loadWeights(fresh, path);
    expect(evaluate(fresh).bound).toBe(after.bound);
    model.dispose();
    fresh.dispose();
  });

  it('an unknown input name is an InputError listing the model inputs', async () => {
    const model = await load(gmm);
    const bad: RawBatch = { inputs: [{ name: 'y', data: new Float32Array(4), shape: [2, 2], plates: ['batch'] }] };
    expect(() => checkBatch(model, bad)).toThrow(InputError);
    expect(() => train(model, { steps: 1, stream: [bad][Symbol.iterator]() })).toThrow("gmm has no input 'y'; its inputs are 'x'");
    expect(() => checkBatch(model, { inputs: [] })).toThrow("the batch lacks the input(s) 'x' of gmm");
    expect(() => train(model, { steps: 0 })).toThrow(InputError);
    // Batches the caller makes train like a data set.
    const mine: RawBatch = { inputs: [{ name: 'x', data: new Float32Array([1, 1, -1, -1]), shape: [2, 2], plates: ['batch'] }] };
    expect(Number.isFinite(train(model, { steps: 2, stream: [mine, mine][Symbol.iterator]() }).bound)).toBe(true);
    model.dispose();
  });

  it('sample generates [count, D] values in [0, 1]; weights of another model are refused', async () => {
    const model = await load(vma, { batch: 4 });
    train(model, { steps: 2 });
    const s = sample(model, { count: 3 });
    expect(s.shape).toEqual([3, 784]);
    expect(s.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    const path = join(tmp, 'vma.safetensors');
    saveWeights(model, path);
    const other = await load(gmm);
    expect(() => loadWeights(other, path)).toThrow(CheckpointError);
    expect(() => loadWeights(other, path)).toThrow(/vma\.safetensors lacks \d+ variable\(s\) of this model: /);
    model.dispose();
    other.dispose();
  });
});
