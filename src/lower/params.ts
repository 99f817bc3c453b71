/**
 * Variables for the model's declared params (`param w: real[M, D] ~ init normal(0.01)`).
 * The CompiledModel stores them as `param/<name>`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { IrParam, Shape, Size } from '../ir/types.ts';
import type { Rng } from '../random/rng.ts';

/** The checkpoint name of a param. */
export function paramVarName(name: string): string {
  return `param/${name}`;
}

/** A size's value under the given bindings of free size symbols. */
export function resolveSize(s: Size, bindings: Readonly<Record<string, number>> = {}): number {
  let v = s.c;
  for (const [sym, k] of Object.entries(s.terms)) {
    if (k === 0) continue;
    const b = bindings[sym];
    if (b === undefined) throw new Error(`size symbol '${sym}' is not bound (a param's shape must be known when it is created)`);
    v += k * b;
  }
  if (!Number.isInteger(v) || v < 0) throw new Error(`size evaluates to ${v}, not a non-negative integer`);
  return v;
}

export function resolveShape(shape: Shape, bindings: Readonly<Record<string, number>> = {}): number[] {
  return shape.map((s) => resolveSize(s, bindings));
}

/**
 * Creates the variable of param `p`: `normal(0, std)` draws with a seed from `rng`, or zeros.
 * `bindings` resolves free size symbols in its shape, if any.
 */
export function createParam(p: IrParam, rng: Rng, bindings: Readonly<Record<string, number>> = {}): tf.Variable {
  let shape: number[];
  try {
    shape = resolveShape(p.type.shape, bindings);
  } catch (e) {
    throw new Error(`createParam(${p.name}): ${(e as Error).message}`);
  }
  switch (p.init.kind) {
    case 'normal': {
      const std = p.init.std;
      if (!(std >= 0) || !Number.isFinite(std)) throw new Error(`createParam(${p.name}): init std must be finite and >= 0, got ${std}`);
      const seed = rng.nextSeed();
      return tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed), true));
    }
    case 'zeros':
      return tf.tidy(() => tf.variable(tf.zeros(shape), true));
  }
}

/** Variables for all params, keyed by `param/<name>`. */
export function createParams(params: readonly IrParam[], rng: Rng, bindings: Readonly<Record<string, number>> = {}): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const p of params) out[paramVarName(p.name)] = createParam(p, rng, bindings);
  return out;
}
