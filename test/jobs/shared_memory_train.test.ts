/**
 * `vmm train --memory FILE` (issue #26): one memory file that every target addresses, instead of
 * few-shot episodes. Built from the Omniglot fixture: drawers 1..15 of its 20 characters are the
 * memory, drawers 16..20 the targets (a user's .npz with labels), so no target is in the memory.
 */
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy, encodeNpz } from '../../src/data/npy.ts';
import { loadOmniglot } from '../../src/data/omniglot.ts';
import { memoryFileHash } from '../../src/data/shared_memory.ts';
import { trainStream, validationBatches } from '../../src/data/source.ts';
import { selectBackend } from '../../src/runtime/backend.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { irOfFile } from '../lower/helpers.ts';
import { fixtureData } from '../fixtures/data.ts';
import { runCli } from '../cli/run_cli.ts';

const MODEL = join(__dirname, '..', '..', 'models', 'vma_omniglot_large.vmm');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-sharedmem-'));
const memPath = join(tmp, 'memory.npy');
const targetsPath = join(tmp, 'targets.npz');
const D = 784;

beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
  const o = loadOmniglot(fixtureData);
  const mem: number[] = [];
  const tgt: number[] = [];
  for (let i = 0; i < o.images.length / D; i++) ((i % 20) < 15 ? mem : tgt).push(i);
  const pick = (ids: number[]) => {
    const a = new Uint8Array(ids.length * D);
    ids.forEach((k, j) => a.set(o.images.subarray(k * D, (k + 1) * D), j * D));
    return a;
  };
  writeFileSync(memPath, encodeNpy(pick(mem), [mem.length, 28, 28]));
  writeFileSync(targetsPath, encodeNpz({ images: { data: pick(tgt), shape: [tgt.length, 28, 28] }, labels: { data: Int32Array.from(tgt, (k) => o.labels[k]!), shape: [tgt.length] } }));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('training against one shared memory file', () => {
  it('every batch gets the same [M, D] memory with no batch plate, and the trainer keeps its keys between refreshes', () => {
    const ir0 = irOfFile(MODEL);
    const ir = { ...ir0, train: { ...ir0.train, batch: 4 } };
    const memory = { path: memPath, sha256: memoryFileHash(memPath) };
    const data = { dataset: targetsPath, seed: 1, classes: 2, shots: 2, distractors: 0, memory };
    const stream = trainStream(ir, data);
    expect(stream.describe).toContain('addressing one memory of 300 entries');
    const a = stream.next(4);
    const b = stream.next(4);
    const memA = a.inputs.find((i) => i.name === 'mem')!;
    expect(memA.shape).toEqual([300, D]);
    expect(memA.plates).toEqual([]);
    expect(b.inputs.find((i) => i.name === 'mem')!.data).toBe(memA.data);
    // Binarized once, 0/1.
    expect(memA.data.every((v) => v === 0 || v === 1)).toBe(true);
    const valid = validationBatches(ir, data, 8, 4);
    expect(valid[0]!.inputs.find((i) => i.name === 'mem')!.data).toBe(memA.data);
    const trainer = new Trainer(ir, 1);
    for (let i = 0; i < 3; i++) expect(Number.isFinite(trainer.step(stream.next(4)).bound)).toBe(true);
    // The cached-key path ran: keys computed at step 0, not recomputed since (refresh: 100).
    expect(trainer.keysComputedAt()).toBe(0);
    // The shared memory goes to the device once and stays there: no tensor more per step, and
    // another array replaces it (its keys recomputed) instead of adding to it.
    const before = tf.memory().numTensors;
    trainer.step(stream.next(4));
    expect(tf.memory().numTensors).toBe(before);
    const other = stream.next(4);
    const copy = other.inputs.map((i) => (i.name === 'mem' ? { ...i, data: Float32Array.from(i.data) } : i));
    trainer.step({ ...other, inputs: copy });
    expect(trainer.keysComputedAt()).toBe(4);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
  });

  it('vmm train --memory: trains, keeps the file and its hash in the run, evaluates against it, refuses a changed file on resume', async () => {
    const out = join(tmp, 'run');
    const t = await runCli('train', MODEL, '--dataset', targetsPath, '--memory', memPath, '--steps', '6', '--batch', '4', '--valid-size', '8', '--checkpoint-every', '3', '--out', out, '--quiet', '--backend', 'wasm');
    expect(t.err).not.toContain('rror');
    expect(t.code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { data: { memory?: { path: string; sha256: string } } };
    expect(config.data.memory).toEqual({ path: memPath, sha256: memoryFileHash(memPath) });
    const e = await runCli('eval', out, '--samples', '4', '--episodes', '8', '--json', '--backend', 'wasm');
    expect(e.code).toBe(0);
    const r = JSON.parse(e.out) as { plainNll: { nll: number; examples: number }; sharedMemory: { entries: number } };
    expect(r.sharedMemory.entries).toBe(300);
    expect(r.plainNll.examples).toBe(8);
    expect(r.plainNll.nll).toBeGreaterThan(0);
    // Samples: PNG grids (the memory is not drawn on every row, and not taken for [B, M, D]).
    const s = await runCli('sample', out, '--rows', '2', '--samples', '3', '--backend', 'wasm');
    expect(s.code).toBe(0);
    expect(s.err).not.toContain('not a square image');
    expect(existsSync(join(out, 'samples', 'samples.png')) && existsSync(join(out, 'samples', 'reconstructions.png'))).toBe(true);
    // The memory file changes under the run: resuming it is a one-line error, not a silent switch.
    const saved = join(tmp, 'saved.npy');
    copyFileSync(memPath, saved);
    appendFileSync(memPath, 'x');
    try {
      const resumed = await runCli('train', '--resume', out, '--steps', '8', '--quiet', '--backend', 'wasm');
      expect(resumed.code).not.toBe(0);
      expect(resumed.err).toContain(`--memory ${memPath} has changed since the run began`);
      expect(resumed.err.trim().split('\n').filter((l) => l.startsWith('vmm:'))).toHaveLength(1);
    } finally {
      copyFileSync(saved, memPath);
    }
  });

  it('a memory file where the model or the data cannot take one is a one-line error', async () => {
    const vae = await runCli('train', join(__dirname, '..', '..', 'models', 'vae.vmm'), '--memory', memPath, '--steps', '1', '--out', join(tmp, 'vae'), '--quiet');
    expect(vae.code).not.toBe(0);
    expect(vae.err).toContain(`--memory ${memPath}: vae has no memory input to give it to`);
    const missing = await runCli('train', MODEL, '--memory', join(tmp, 'none.npy'), '--steps', '1', '--out', join(tmp, 'missing'), '--quiet');
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain('cannot read (ENOENT)');
    const small = join(tmp, 'small.npy');
    writeFileSync(small, encodeNpy(new Uint8Array(3 * 36), [3, 6, 6]));
    const wrong = await runCli('train', MODEL, '--dataset', targetsPath, '--memory', small, '--steps', '1', '--out', join(tmp, 'wrong'), '--quiet', '--backend', 'wasm');
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toContain('entries of 6x6 = 36 values, but the model');
  });
});
