/**
 * Special functions as differentiable tfjs ops (tfjs has no lgamma).
 */
import * as tf from '@tensorflow/tfjs-core';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * `log Γ(x)` for x > 0: the recurrence `Γ(x) = Γ(x + 6) / (x (x+1) ... (x+5))` moves the argument
 * to y = x + 6 >= 6, where Stirling's series `(y - 1/2) log y - y + log(2π)/2 + 1/(12y) - 1/(360y^3)
 * + 1/(1260y^5)` is accurate to ~1e-10 (Abramowitz & Stegun 6.1.40), far below float32 rounding.
 */
export function lgamma(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let prod = x;
    for (let i = 1; i < 6; i++) prod = tf.mul(prod, tf.add(x, i));
    const y = tf.add(x, 6);
    const inv = tf.reciprocal(y);
    const inv2 = tf.square(inv);
    const series = tf.mul(inv, tf.add(1 / 12, tf.mul(inv2, tf.add(-1 / 360, tf.mul(inv2, 1 / 1260)))));
    const stirling = tf.add(tf.sub(tf.mul(tf.sub(y, 0.5), tf.log(y)), y), tf.add(series, HALF_LOG_2PI));
    return tf.sub(stirling, tf.log(prod));
  });
}

/** `log B(a, b) = log Γ(a) + log Γ(b) - log Γ(a + b)`. */
export function lbeta(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.add(lgamma(a), lgamma(b)), lgamma(tf.add(a, b))));
}
