import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { IrLayer, IrNet } from '../../src/ir/types.ts';
import { applyNet, createNetParams, layerOutputShape, paramCount } from '../../src/lower/nets.ts';
import {
  CheckpointError,
  checkpointFile,
  loadCheckpoint,
  readCheckpoint,
  saveCheckpoint,
  writeCheckpoint,
} from '../../src/runtime/checkpoint.ts';
import { makeOptimizer, type Optimizer } from '../../src/runtime/optimizer.ts';
import { Rng } from '../../src/random/rng.ts';
import { describeBackends, values } from './backends.ts';

const root = mkdtempSync(join(tmpdir(), 'vmm-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

function mlp(name: string, sizes: number[]): IrNet {
  const layers: IrLayer[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push({ kind: 'linear', in: sizes[i]!, out: sizes[i + 1]! });
    if (i + 2 < sizes.length) layers.push({ kind: 'act', fn: 'relu' });
  }
  let shape = [sizes[0]!];
  for (const l of layers) shape = layerOutputShape(l, shape);
  return { name, layers, inShape: [sizes[0]!], outShape: shape, paramCount: paramCount(layers) };
}

const NET = mlp('f', [5, 16, 3]);
const NETS = new Map([[NET.name, NET]]);

/** A tiny training setup: variables, optimizer, and one step driven by a generator per step, new Rng(seed, `step-${step}`). */
function setup(seed: number) {
  const vars = new Map(Object.entries(createNetParams(NET, new Rng(seed))));
  const opt = makeOptimizer({ kind: 'adam', lr: 0.01 }, vars);
  return { vars, opt };
}

function trainStep(vars: Map<string, tf.Variable>, opt: Optimizer, master: number): void {
  const rng = new Rng(master, `step-${opt.step}`);
  tf.tidy(() => {
    const x = tf.randomNormal([8, 5], 0, 1, 'float32', rng.nextSeed());
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(applyNet(NET, vars, NETS, x))) as tf.Scalar, [...vars.values()]);
    opt.apply(grads);
    return value;
  });
}

describe('checkpoint file', () => {
  it('round-trips variables, optimizer state, rng state, step and metadata', () => {
    const dir = freshDir();
    const rng = new Rng(5);
    rng.nextSeed();
    writeCheckpoint(dir, {
      variables: { 'net/h/0/w': { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) }, 'param/z': { shape: [], data: Float32Array.from([-0]) } },
      optimizer: {
        config: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, momentum: 0, clipNorm: null },
        step: 12,
        slots: { m: { 'net/h/0/w': { shape: [2, 3], data: new Float32Array(6).fill(0.25) } }, v: {} },
      },
      rng: rng.state(),
      step: 12,
      metadata: { note: 'hello', nested: [1, 2] },
    });
    const ck = readCheckpoint(dir);
    expect(ck.step).toBe(12);
    expect(Array.from(ck.variables['net/h/0/w']!.data)).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(ck.variables['net/h/0/w']!.shape).toEqual([2, 3]);
    expect(ck.variables['param/z']!.shape).toEqual([]);
    expect(Object.is(ck.variables['param/z']!.data[0], -0)).toBe(true);
    expect(ck.optimizer!.step).toBe(12);
    expect(Array.from(ck.optimizer!.slots['m']!['net/h/0/w']!.data)).toEqual(new Array(6).fill(0.25));
    expect(ck.metadata).toEqual({ note: 'hello', nested: [1, 2] });
    expect(Rng.fromState(ck.rng!).nextSeed()).toBe(rng.nextSeed());
  });

  it('detects a corrupted or truncated file, and says when there is none', () => {
    const dir = freshDir();
    writeCheckpoint(dir, { variables: { a: { shape: [4], data: Float32Array.from([1, 2, 3, 4]) } }, step: 1 });
    const file = checkpointFile(dir);
    const good = readFileSync(file);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3]! ^= 0x40;
    writeFileSync(file, flipped);
    expect(() => readCheckpoint(dir)).toThrow(/checksum mismatch/);
    writeFileSync(file, good.subarray(0, good.length - 4));
    expect(() => readCheckpoint(dir)).toThrow(CheckpointError);
    expect(() => readCheckpoint(freshDir())).toThrow(/no checkpoint in/);
  });

  it('a write killed at any moment leaves the previous checkpoint readable', async () => {
    const dir = freshDir();
    const script = resolve(__dirname, 'fixtures/write_checkpoints.ts');
    const runTs = resolve(__dirname, '../../bin/run-ts.mjs');
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, [runTs, script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((ok, fail) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && ok());
        child.on('exit', (code) => fail(new Error(`writer exited early (${code})`)));
      });
      await new Promise((r) => setTimeout(r, 30 + 40 * round));
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      await exited;
      const ck = readCheckpoint(dir);
      const i = (ck.metadata as { i: number }).i;
      expect(ck.step).toBe(i);
      const d = ck.variables['big']!.data;
      expect(d[0]).toBe(i);
      expect(d[d.length - 1]).toBe(i);
    }
    // Killed writers may leave temporary files behind; the next write removes them.
    writeCheckpoint(dir, { variables: {}, step: 0 });
    expect(readdirSync(dir)).toEqual(['checkpoint.safetensors']);
  }, 30_000);
});

describeBackends('saveCheckpoint / loadCheckpoint', () => {
  it('save -> load gives the same values', async () => {
    const dir = freshDir();
    const a = setup(1);
    trainStep(a.vars, a.opt, 9);
    await saveCheckpoint(dir, a.vars, a.opt, { hello: 'world' });
    const b = setup(2); // different initial weights
    const meta = loadCheckpoint(dir, b.vars, b.opt);
    expect(meta).toEqual({ hello: 'world' });
    for (const [name, v] of a.vars) expect(values(b.vars.get(name)!)).toEqual(values(v));
    expect(b.opt.step).toBe(1);
    for (const s of [a, b]) {
      s.opt.dispose();
      tf.dispose([...s.vars.values()]);
    }
  });

  it('a run resumed from a checkpoint takes bitwise the same steps as an uninterrupted one', async () => {
    const dir = freshDir();
    const master = 1234;
    const a = setup(3);
    for (let i = 0; i < 3; i++) trainStep(a.vars, a.opt, master);
    await saveCheckpoint(dir, a.vars, a.opt);
    for (let i = 0; i < 3; i++) trainStep(a.vars, a.opt, master);

    const b = setup(4);
    loadCheckpoint(dir, b.vars, b.opt);
    for (let i = 0; i < 3; i++) trainStep(b.vars, b.opt, master);
    expect(b.opt.step).toBe(6);
    for (const [name, v] of a.vars) {
      const x = new Uint32Array(Float32Array.from(values(v)).buffer);
      const y = new Uint32Array(Float32Array.from(values(b.vars.get(name)!)).buffer);
      expect(Array.from(y), name).toEqual(Array.from(x));
    }
    for (const s of [a, b]) {
      s.opt.dispose();
      tf.dispose([...s.vars.values()]);
    }
  });

  it('refuses a checkpoint that does not fit, without changing anything', async () => {
    const dir = freshDir();
    const a = setup(1);
    await saveCheckpoint(dir, a.vars, undefined, { final: true });
    // No optimizer state in a weights-only checkpoint.
    expect(() => loadCheckpoint(dir, a.vars, a.opt)).toThrow(/has no optimizer state/);
    // A model with another variable.
    const extra = new Map(a.vars);
    const z = tf.variable(tf.zeros([2]));
    extra.set('param/z', z);
    expect(() => loadCheckpoint(dir, extra)).toThrow(/lacks 1 variable\(s\) of this model: param\/z/);
    // A variable of another shape.
    const c = new Map(a.vars);
    const wrong = tf.variable(tf.zeros([5, 17]));
    const before = values(wrong);
    c.set('net/f/0/w', wrong);
    expect(() => loadCheckpoint(dir, c)).toThrow(/net\/f\/0\/w has shape \[5,16\], the model's is \[5,17\]/);
    expect(values(wrong)).toEqual(before);
    a.opt.dispose();
    tf.dispose([...a.vars.values(), z, wrong]);
  });
});
