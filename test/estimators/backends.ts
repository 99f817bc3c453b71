/**
 * Test helper: run a describe block once per tfjs backend available (cpu, wasm).
 *
 * Also registers tfjs-core's gradient functions (`register_all_gradients`): `@tensorflow/tfjs-core`
 * alone does not register them, so `tf.grad` fails with "gradient function not found for Sum"
 * without this import. (Vitest inlines the ESM dist file; a plain `tsx` run cannot import it,
 * because the ESM build uses a directory import: the runtime must solve that for training.)
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe } from 'vitest';

export const BACKENDS = ['cpu', 'wasm'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Backends whose factory is registered in this process. */
export function availableBackends(): BackendName[] {
  return BACKENDS.filter((b) => tf.findBackendFactory(b) !== null);
}

/** `describe(`${title} [backend]`, ...)` for every available backend (of `only`, when given), with that backend active. */
export function describeBackends(title: string, body: (backend: BackendName) => void, only?: readonly BackendName[]): void {
  for (const backend of availableBackends().filter((b) => !only || only.includes(b))) {
    describe(`${title} [${backend}]`, () => {
      beforeAll(async () => {
        let ok = false;
        try {
          ok = await tf.setBackend(backend);
          await tf.ready();
        } catch (e) {
          throw new Error(`backend ${backend} failed to initialize: ${(e as Error).message}`);
        }
        if (!ok || tf.getBackend() !== backend) throw new Error(`backend ${backend} failed to initialize`);
      });
      body(backend);
    });
  }
}

/** `Array.from(t.dataSync())` and dispose. */
export function toArray(t: tf.Tensor): number[] {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
}
