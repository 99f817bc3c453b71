/**
 * `stopGradient(x)`: the identity in the forward pass, a zero gradient in the backward pass.
 *
 * The one place the surrogate trick's `stop(.)` is defined (see src/estimators/*.ts). Built with
 * `tf.customGrad`, which is implemented in tfjs-core's engine and needs no backend kernel, so it
 * behaves identically on cpu and wasm. The forward value is `tf.clone(x)` (an Identity kernel that
 * shares the data buffer; it costs no copy).
 *
 * In the kernels layer, below the families (whose pathwise samples and fused densities use it),
 * the estimators and the lowering: every layer that stops a gradient takes it from here.
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

/**
 * `f(...xs)` computed outside the gradient tape, with a zero gradient for every input: for a
 * value that only ever enters an objective as `stop(.)` (a learning signal, a baseline). The same
 * value as `f(...xs.map(stopGradient))`, but tfjs records every op downstream of a stopped tensor
 * and its backward pass walks back through all of them just to multiply by zero at the stop (and,
 * each recorded op saves its inputs); here the whole of `f` is one op of the
 * tape whose gradient is zero. `xs` must be float32 (the tape's rule); `f` may not return an input.
 */
export function withoutGradient(f: (...xs: tf.Tensor[]) => tf.Tensor, ...xs: tf.Tensor[]): tf.Tensor {
  for (const x of xs) {
    if (!(x instanceof tf.Tensor) || x.dtype !== 'float32') throw new Error('withoutGradient: inputs must be float32 tensors');
  }
  const shapes = xs.map((x) => x.shape);
  const op = tf.customGrad(((...args: unknown[]) => {
    const inputs = args.slice(0, xs.length) as tf.Tensor[];
    const value = f(...inputs);
    return {
      value: inputs.includes(value) ? tf.clone(value) : value,
      // Shapes, not the inputs: those are disposed when the forward pass ends.
      gradFunc: () => shapes.map((s) => tf.zeros(s)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(...xs);
}
