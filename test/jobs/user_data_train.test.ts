/**
 * A model trains on a user's data: a memory model on episodes built from the labels of an .npz,
 * and a VAE on a folder of PNGs (the Omniglot originals' layout, resized to the model's 28x28).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpz } from '../../src/data/npy.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { DataError } from '../../src/data/paths.ts';
import { readZip } from '../../src/data/zip.ts';
import { selectBackend } from '../../src/runtime/backend.ts';
import { type DataOptions } from '../../src/data/bind.ts';
import { trainStream, validationBatches } from '../../src/data/source.ts';
import { validate } from '../../src/jobs/train_loop.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { irOfFile } from '../lower/helpers.ts';
import { FIXTURE_DATA, fixtureData } from '../fixtures/data.ts';

const MODELS = join(__dirname, '..', '..', 'models');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-usertrain-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
});

describe('episodes with min_shots', () => {
  it('draws each batch\'s shots from min_shots .. shots, every count in turn, and resumes the same draws from a saved state', () => {
    const o = loadOmniglot(fixtureData);
    const path = join(tmp, 'omni_shots.npz');
    writeFileSync(path, encodeNpz({ images: { data: o.images, shape: [400, 28, 28] }, labels: { data: o.labels, shape: [400] } }));
    const ir = irOfFile(join(MODELS, 'vma_omniglot_mlp.vmm'));
    const data: DataOptions = { dataset: path, seed: 3, classes: 2, shots: 3, minShots: 1, distractors: 0 };
    const stream = trainStream(ir, data);
    expect(stream.describe).toContain('2 classes x 1..3 shots (drawn per batch)');
    const sizes = (b: ReturnType<typeof stream.next>) => b.inputs.find((i) => i.name === 'mem')!.shape[1];
    const seen = new Map<number, number>();
    for (let i = 0; i < 60; i++) {
      const m = sizes(stream.next(2))!;
      seen.set(m, (seen.get(m) ?? 0) + 1);
    }
    // M = classes x shots for shots 1, 2, 3; each count drawn about a third of the time.
    expect([...seen.keys()].sort()).toEqual([2, 4, 6]);
    for (const n of seen.values()) expect(n).toBeGreaterThan(8);
    const saved = JSON.parse(JSON.stringify(stream.state()));
    const next = [stream.next(2), stream.next(2)];
    const again = trainStream(ir, data);
    again.setState(saved);
    for (const b of next) {
      const c = again.next(2);
      expect(c.inputs.map((i) => i.shape)).toEqual(b.inputs.map((i) => i.shape));
      expect(Array.from(c.inputs[0]!.data as Float32Array)).toEqual(Array.from(b.inputs[0]!.data as Float32Array));
    }
    // Without min_shots the stream is the run's one sampler, as before.
    expect(trainStream(ir, { ...data, minShots: undefined }).describe).toContain('2 classes x 3 shots = 6 memory entries');
    // The trainer takes a memory of another size every step, and no tensor is left behind.
    const trainer = new Trainer(ir, 1);
    const batches = [1, 2, 3].map((s) => trainStream(ir, { ...data, shots: s, minShots: undefined }).next(2));
    for (const b of batches) expect(Number.isFinite(trainer.step(b).bound)).toBe(true);
    const before = tf.memory().numTensors;
    for (const b of [...batches, ...batches.reverse()]) expect(Number.isFinite(trainer.step(b).bound)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
  });
});

describe('training on a user data set', () => {
  it('a memory model trains on episodes from the labels of an .npz and validates on held-out classes', async () => {
    const o = loadOmniglot(fixtureData);
    const path = join(tmp, 'omni.npz');
    writeFileSync(path, encodeNpz({ images: { data: o.images, shape: [400, 28, 28] }, labels: { data: o.labels, shape: [400] } }));
    const ir0 = irOfFile(join(MODELS, 'vma_omniglot_mlp.vmm'));
    const ir = { ...ir0, train: { ...ir0.train, batch: 4 } };
    const data: DataOptions = { dataset: path, seed: 1, classes: 2, shots: 2, distractors: 0 };
    const stream = trainStream(ir, data);
    expect(stream.describe).toContain(`${path} episodes (train_classes)`);
    const valid = validationBatches(ir, data, 8, 4);
    // Validation episodes use only held-out classes (every 5th of the 20).
    for (const v of valid) for (const c of v.episode!.memoryClass) expect(c % 5).toBe(4);
    const trainer = new Trainer(ir, 1);
    const before = await validate(trainer, valid, 2);
    for (let i = 0; i < 5; i++) {
      const batch = stream.next(4);
      for (const c of batch.episode!.memoryClass) expect(c % 5).not.toBe(4);
      trainer.step(batch);
    }
    const after = await validate(trainer, valid, 2);
    expect(Number.isFinite(before) && Number.isFinite(after)).toBe(true);
    expect(after).not.toBe(before);
    trainer.dispose();
  });

  it('a VAE trains on a folder of PNGs: the held-out bound improves by more than 20 nats in 40 steps', async () => {
    const dir = join(tmp, 'folder');
    for (const z of ['images_background_small1.zip', 'images_background_small2.zip']) {
      const zip = join(FIXTURE_DATA, 'raw', z);
      for (const e of readZip(new Uint8Array(readFileSync(zip)), zip)) {
        if (e.isDirectory || !e.name.endsWith('.png')) continue;
        const p = join(dir, ...e.name.split('/').slice(1));
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, e.read());
      }
    }
    const ir0 = irOfFile(join(MODELS, 'vae.vmm'));
    const ir = { ...ir0, train: { ...ir0.train, batch: 32 } };
    const data: DataOptions = { dataset: dir, seed: 2, classes: 2, shots: 2, distractors: 0 };
    const stream = trainStream(ir, data);
    const valid = validationBatches(ir, data, 26, 26); // 260 images, every 10th held out
    expect(valid[0]!.inputs[0]!.shape).toEqual([26, 784]);
    const trainer = new Trainer(ir, 2);
    const before = await validate(trainer, valid, 2);
    for (let i = 0; i < 40; i++) trainer.step(stream.next(32));
    const after = await validate(trainer, valid, 2);
    expect(after - before).toBeGreaterThan(20);
    trainer.dispose();
  });

  it('a data set that does not fit the model is a DataError naming the file and what was expected', () => {
    const small = join(tmp, 'small.npz');
    writeFileSync(small, encodeNpz({ x: { data: new Uint8Array(10 * 36), shape: [10, 6, 6] }, y: { data: new Int32Array(10), shape: [10] } }));
    const vae = irOfFile(join(MODELS, 'vae.vmm'));
    const data: DataOptions = { dataset: small, seed: 1, classes: 2, shots: 2, distractors: 0 };
    expect(() => trainStream(vae, data)).toThrow(DataError);
    expect(() => trainStream(vae, data)).toThrow(`${small}: the model's data input 'x' takes 784 values per example, but the images are 6x6 = 36 pixels`);
    // Too few classes for the episode: 3 classes, episodes of 2 classes x 2 shots from the training classes.
    const few = join(tmp, 'few.npz');
    const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3);
    writeFileSync(few, encodeNpz({ x: { data: new Uint8Array(30 * 784), shape: [30, 784] }, y: { data: labels, shape: [30] } }));
    const vma = irOfFile(join(MODELS, 'vma_omniglot_mlp.vmm'));
    expect(() => trainStream(vma, { ...data, dataset: few, classes: 4 })).toThrow(
      new RegExp(`^${few}: an episode needs 4 classes with at least 3 images each`),
    );
    // No labels for a memory model.
    const nolab = join(tmp, 'nolab.npz');
    writeFileSync(nolab, encodeNpz({ x: { data: new Uint8Array(4 * 784), shape: [4, 784] } }));
    expect(() => trainStream(vma, { ...data, dataset: nolab })).toThrow(new RegExp(`^${nolab}: no class labels, so it cannot make the few-shot episodes`));
  });
});
