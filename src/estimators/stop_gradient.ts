/**
 * `stopGradient(x)`: the identity in the forward pass, a zero gradient in the backward pass.
 *
 * The one place the surrogate trick's `stop(.)` is defined (see src/estimators/*.ts). Built with
 * `tf.customGrad`, which is implemented in tfjs-core's engine and needs no backend kernel, so it
 * behaves identically on cpu and wasm. The forward value is `tf.clone(x)` (an Identity kernel that
 * shares the data buffer; it costs no copy).
 */
import * as tf from '@tensorflow/tfjs-core';

const stopGradientOp = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => {
  const t = x as tf.Tensor;
  return {
    value: tf.clone(t),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  };
});

/** Identity with zero gradient. Works on every tensor rank; the result has the input's dtype. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  if (!(x instanceof tf.Tensor)) {
    throw new Error('stopGradient: expected a tf.Tensor');
  }
  if (x.dtype !== 'float32') {
    // Integer / boolean tensors carry no gradient anyway; customGrad would reject them on the tape.
    return tf.clone(x) as T;
  }
  return stopGradientOp(x) as T;
}
