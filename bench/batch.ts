/**
 * The benchmark model's batch, shared by bench/vmm_config.ts, bench/memory.ts and
 * bench/serial_threshold.ts: random binary images x [B, D] and memories mem [B, M, D], uploaded
 * once and kept on the device (DeviceInput), as the reference makes its tensors once. The host
 * arrays are dropped and, where node runs with --expose-gc, collected before this returns, so the
 * peak memory holds one copy of the data, as the reference's does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { InputBatch } from '../src/lower/compile.ts';
import { Rng } from '../src/random/rng.ts';

/** n values, each 0 or 1 with probability 1/2, from a seeded generator. */
export function randomBinary(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.nextFloat() < 0.5 ? 1 : 0));
}

export async function deviceBatch(B: number, M: number, D: number): Promise<InputBatch> {
  const batch: InputBatch = {
    inputs: [
      { name: 'x', data: tf.tensor(randomBinary(B * D, 1), [B, D]), shape: [B, D], plates: ['batch'] },
      { name: 'mem', data: tf.tensor(randomBinary(B * M * D, 2), [B, M, D]), shape: [B, M, D], plates: ['batch'] },
    ],
  };
  await new Promise((r) => setImmediate(r)); // a gc in the same turn still finds the host arrays on the stack
  (globalThis as { gc?: () => void }).gc?.();
  return batch;
}
