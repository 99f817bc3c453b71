/**
 * Which backends can read a tensor back synchronously (`dataSync`, `arraySync`).
 *
 * On cpu, wasm and native TensorFlow a synchronous read is a copy; on webgpu in Node it does not
 * exist (tfjs-webgpu's `readSync` draws through an `OffscreenCanvas`, a browser object), and on a
 * GPU it would stall the queue anyway. Code that reads during a step asks `syncReads()`: where it is
 * false it keeps the computation on the device (VIMCO's signals) or hands the tensor to the
 * trainer, which reads it asynchronously with the step's metrics.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Backends whose reads must be asynchronous. */
const ASYNC_ONLY = new Set(['webgpu', 'webgl']);

/** Whether the active backend can read tensors synchronously. */
export function syncReads(): boolean {
  return !ASYNC_ONLY.has(tf.getBackend());
}

/**
 * `t`'s values, read synchronously where the backend can; where it cannot, an error that names
 * `what` and says what to use instead (`instead`, else the asynchronous form in general).
 */
export function hostRead(t: tf.Tensor, what: string, instead?: string): tf.TypedArray {
  if (!syncReads()) {
    const e = asyncOnlyError(what);
    throw instead ? new Error(`${what} reads the device synchronously, which the ${tf.getBackend()} backend cannot do in Node; ${instead}`) : e;
  }
  return t.dataSync();
}

/** A one-line error for a synchronous read where only asynchronous ones exist. */
export function asyncOnlyError(what: string): Error {
  return new Error(`${what} reads the device synchronously, which the ${tf.getBackend()} backend cannot do in Node; use the asynchronous form (e.g. \`await train(...)\`, not \`trainSync\`)`);
}
