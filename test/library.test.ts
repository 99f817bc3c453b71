/**
 * The library API of src/library.ts: load (backend chosen), train on a data set or on batches,
 * evaluate, save/load weights as safetensors, sample; input names checked with a user error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classify, checkBatch, evaluate, evaluateFewShot, InputError, load, loadWeights, openRun, sample, saveWeights, train, trainSync, type RawBatch, type StepMetrics } from '../src/index.ts';
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
    const before = (await evaluate(model)).bound;
    const last = await train(model, { steps: 150 });
    expect(last.step).toBe(150);
    expect(Number.isFinite(last.bound)).toBe(true);
    const after = await evaluate(model);
    expect(after.examples).toBe(256);
    expect(after.bound - before).toBeGreaterThan(1);

    const path = join(tmp, 'gmm.safetensors');
    await saveWeights(model, path);
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
    expect((await evaluate(fresh)).bound).not.toBe(after.bound);
    loadWeights(fresh, path);
    expect((await evaluate(fresh)).bound).toBe(after.bound);
    model.dispose();
    fresh.dispose();
  });

  it('an unknown input name is an InputError listing the model inputs', async () => {
    const model = await load(gmm);
    const bad: RawBatch = { inputs: [{ name: 'y', data: new Float32Array(4), shape: [2, 2], plates: ['batch'] }] };
    expect(() => checkBatch(model, bad)).toThrow(InputError);
    await expect(train(model, { steps: 1, stream: [bad][Symbol.iterator]() })).rejects.toThrow("gmm has no input 'y'; its inputs are 'x'");
    expect(() => checkBatch(model, { inputs: [] })).toThrow("the batch lacks the input(s) 'x' of gmm");
    expect(() => train(model, { steps: 0 })).toThrow(InputError);
    // Batches the caller makes train like a data set.
    const mine: RawBatch = { inputs: [{ name: 'x', data: new Float32Array([1, 1, -1, -1]), shape: [2, 2], plates: ['batch'] }] };
    expect(Number.isFinite((await train(model, { steps: 2, stream: [mine, mine][Symbol.iterator]() })).bound)).toBe(true);
    expect(Number.isFinite(trainSync(model, { steps: 2, stream: [mine, mine][Symbol.iterator]() }).bound)).toBe(true);
    model.dispose();
  });

  it('sample generates [count, D] values in [0, 1]; weights of another model are refused', async () => {
    const model = await load(vma, { batch: 4 });
    await train(model, { steps: 2 });
    const s = sample(model, { count: 3 });
    expect(s.shape).toEqual([3, 784]);
    expect(s.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    // As a tensor on the backend: the same values (same seed).
    const t = sample(model, { count: 3, as: 'tensor' });
    expect(t.shape).toEqual([3, 784]);
    expect(Array.from(t.dataSync())).toEqual(Array.from(s.data));
    t.dispose();
    const path = join(tmp, 'vma.safetensors');
    await saveWeights(model, path);
    const other = await load(gmm);
    expect(() => loadWeights(other, path)).toThrow(CheckpointError);
    expect(() => loadWeights(other, path)).toThrow(/vma\.safetensors lacks \d+ variable\(s\) of this model: /);
    model.dispose();
    other.dispose();
  });

  it('train is a promise and an async iterable; it yields to the event loop and stops on an AbortSignal', async () => {
    const model = await load(gmm, { batch: 16 });
    // Step by step with for await; timers run between steps.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const seen: number[] = [];
    for await (const m of train(model, { steps: 5 })) seen.push(m.step);
    clearInterval(timer);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(ticks).toBeGreaterThan(0);
    // An async stream of batches.
    async function* batches(): AsyncGenerator<RawBatch> {
      for (;;) yield { inputs: [{ name: 'x', data: new Float32Array([1, 1, -1, -1]), shape: [2, 2], plates: ['batch'] }] };
    }
    expect((await train(model, { steps: 3, stream: batches() })).step).toBe(8);
    // Aborted after the second step: the promise rejects with an AbortError; the steps taken stay.
    const stop = new AbortController();
    const steps: StepMetrics[] = [];
    const run = train(model, { steps: 1000, signal: stop.signal, onStep: (m) => (steps.push(m), steps.length === 2 && stop.abort()) });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(steps).toHaveLength(2);
    expect(model.stepCount).toBe(10);
    model.dispose();
  });

  it('openRun loads a run folder; evaluateFewShot and classify work on it', async () => {
    const run = await openRun(join(__dirname, '..', 'pretrained', 'vma_omniglot'));
    expect(run.state).toBe('finished');
    expect(run.model.ir.name).toBe('vma_omniglot');
    expect(run.model.stepCount).toBeGreaterThan(0);
    const data = { dataset: 'omniglot', dataDir: join(__dirname, 'fixtures', 'data') };
    const acc = await evaluateFewShot(run.model, { ...data, ways: 5, shots: 1, episodes: 20 });
    expect(acc).toMatchObject({ ways: 5, shots: 1, episodes: 20 });
    expect(acc.accuracy).toBeGreaterThan(0.4); // chance is 0.2
    // classify: memory = one image per class, queries = the same images: each finds itself.
    const D = 28 * 28;
    const memory = new Float32Array(3 * D);
    for (let k = 0; k < 3; k++) for (let i = 0; i < D; i++) memory[k * D + i] = (i * (k + 3)) % 7 < 2 ? 1 : 0;
    const r = await classify(run.model, { memory, queries: memory, labels: ['a', 'b', 'c'], top: 2 });
    expect(r.map((q) => q.query)).toEqual([0, 1, 2]);
    expect(r.every((q) => q.top.length === 2 && q.prob >= q.top[1]!.prob)).toBe(true);
    await expect(classify(run.model, { memory: new Float32Array(5), queries: memory })).rejects.toThrow(InputError);
    run.model.dispose();
  });
});
