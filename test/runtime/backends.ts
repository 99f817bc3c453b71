/**
 * Test helper: the backends numeric tests run on (every one that starts here: cpu, wasm, and the
 * native one when installed), selected through `selectBackend` so tests see what training sees
 * (gradients registered, wasm kernel fixes applied).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe } from 'vitest';
import { availableBackends, selectBackend, type BackendName } from '../../src/runtime/backend.ts';

/**
 * Backends that start in this process (decided once, at collection time), webgpu aside: these
 * suites read tensors synchronously, which webgpu cannot do in Node; test/runtime/webgpu.test.ts
 * runs the asynchronous suites (test/lower/suites/) there.
 */
export const BACKENDS: BackendName[] = await availableBackends(['webgpu']);

export async function use(name: BackendName): Promise<void> {
  await selectBackend({ force: name });
  if (tf.getBackend() !== name) throw new Error(`backend ${name} did not become active`);
}

/** `describe(`${title} [backend]`, ...)` once per available backend, with that backend active. */
export function describeBackends(title: string, body: (backend: BackendName) => void): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend}]`, () => {
      beforeAll(() => use(backend));
      body(backend);
    });
  }
}

/** Values of a tensor as a plain array (does not dispose). */
export function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/** max_i |a_i - b_i| / max(1, |b_i|). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return m;
}
