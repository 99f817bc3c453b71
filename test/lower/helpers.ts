/**
 * Test helpers for the lowering: compile a .vmm source to IR, and fabricate a batch of inputs
 * with the right shapes (random binary data and memories) for any model.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { CompiledModel } from '../../src/lower/compile.ts';
import { frontEnd } from '../../src/check/pipeline.ts';
import type { EstimatorKind, IrProgram, Size } from '../../src/ir/types.ts';
import { estimatorSettings } from '../../src/estimators/registry.ts';
import type { RawBatch } from '../../src/data/bind.ts';

export function irOf(source: string): IrProgram {
  const r = frontEnd(source);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.ir) throw new Error(`model does not compile: ${errors.map((d) => `${d.code} ${d.message}`).join('; ')}`);
  return r.ir;
}

export function irOfFile(path: string): IrProgram {
  return irOf(readFileSync(path, 'utf8'));
}

function concrete(s: Size, sizes: Record<string, number>): number {
  let n = s.c;
  for (const [k, c] of Object.entries(s.terms)) n += c * (sizes[k] ?? 3);
  return n;
}

/** `ir` with estimator `kind` (K = `k`, its arguments from `args`, else their defaults) and a batch of 2. */
export function withEstimator(ir: IrProgram, kind: EstimatorKind, k: number, args: IrProgram['train']['estimator']['args'] = {}): IrProgram {
  return { ...ir, train: { ...ir.train, batch: 2, estimator: estimatorSettings(kind, { k, args }) } };
}

/** A deterministic pseudo-random batch for a model: binary data, binary memories, real data ~ N(0,1)-ish. */
export function fakeBatch(ir: IrProgram, batch: number, sizes: Record<string, number> = {}, seed = 1): RawBatch {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const fill = (n: number, elem: string) => Float32Array.from({ length: n }, () => (elem === 'real' ? rand() * 4 - 2 : rand() < 0.3 ? 1 : 0));
  const inputs: RawBatch['inputs'] = [];
  for (const d of ir.data) {
    const shape = d.type.shape.map((x) => concrete(x, sizes));
    const n = batch * shape.reduce((a, b) => a * b, 1);
    inputs.push({ name: d.name, data: fill(n, d.type.elem), shape: [batch, ...shape], plates: ['batch'] });
  }
  for (const m of ir.memories) {
    const shape = m.type.shape.map((x) => concrete(x, sizes));
    const n = batch * shape.reduce((a, b) => a * b, 1);
    inputs.push({ name: m.name, data: fill(n, m.type.elem), shape: [batch, ...shape], plates: ['batch'] });
  }
  return { inputs };
}

/** The smallest VMA model: one address over M entries of `d` pixels, an addressing embedding of width `h`, no continuous latent (enumerable exactly). */
export function tinyVma(d: number, h: number, name = 'tiny'): string {
  return `
model ${name}
const D = ${d}
size M
data x : binary[D]
memory mem : binary[M, D]
net h = linear(D, ${h})
net f = linear(D, D)
discrete address a ~ Categorical(mem)
observe x ~ Bernoulli(logits: f(mem[a]))
guide {
  a ~ Categorical(logits: h(mem) @ h(x))
}
`;
}

export const TINY_VMA = tinyVma(4, 3);

/**
 * `n` copies of a one-example batch: the batch mean of a surrogate over it averages n gradient
 * draws (the exact-gradient checks).
 */
export function repeatExample(one: RawBatch, n: number): RawBatch {
  return {
    inputs: one.inputs.map((i) => {
      const data = new Float32Array(i.data.length * n);
      for (let c = 0; c < n; c++) data.set(i.data, c * i.data.length);
      return { ...i, data, shape: [n, ...i.shape.slice(1)] };
    }),
  };
}

/** The gradients of `f` in every trainable variable of `model`, read asynchronously (any backend, webgpu too). */
export async function gradsOf(model: CompiledModel, f: () => tf.Scalar): Promise<Map<string, Float32Array>> {
  const { value, grads } = tf.variableGrads(f, model.trainableVariables());
  value.dispose();
  const out = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(grads)) out.set(name, (await g.data()) as Float32Array);
  tf.dispose(grads);
  return out;
}

/**
 * The worst |mean - exact| / SE over every coordinate of every gradient, the mean and its
 * standard error over `draws` (one gradient estimate each) against the exact gradient.
 */
export function worstDeviation(exact: Map<string, Float32Array>, draws: Map<string, Float32Array>[]): number {
  const n = draws.length;
  let worst = 0;
  for (const [name, ex] of exact) {
    for (let i = 0; i < ex.length; i++) {
      const xs = draws.map((d) => d.get(name)![i]!);
      const mean = xs.reduce((a, b) => a + b, 0) / n;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
      worst = Math.max(worst, Math.abs(mean - ex[i]!) / Math.max(sd / Math.sqrt(n), 1e-6));
    }
  }
  return worst;
}
