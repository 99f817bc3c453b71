/**
 * How many pairs a fixed-size memory written by the Titans rule can hold, before any training:
 * random key features `relu(W x / sqrt(K) - t)` of N random K-bit keys (W Gaussian, fixed), values
 * the V value bits (-1 / +1), written in chunks of C by writeMemory with momentum 0 and forgetting
 * 0 (a linear memory: the delta rule; `--hidden H`: an MLP memory [D] -> [H] -> [V], tanh), biases
 * not written; then every stored key read back. Separates the memory's capacity from what the
 * outer training of bench/titans_recall.ts has to learn (key features that ignore the value bits,
 * values that carry them): `--keys key-only` computes the written keys' features from the key bits
 * alone (the value bits zeroed, as in a query: what a trained key net does), `--keys entry` from
 * the whole entry, key and value bits, and reads with the value bits zeroed (an untrained key net).
 *
 *   node bin/run-ts.mjs bench/titans_capacity.ts [--k 64] [--d 2048] [--chunk 16] [--threshold 0]
 *     [--theta 0.1] [--hidden 0] [--keys key-only|entry] [--ns 256,1024,4096] [--episodes 4] [--seed 1]
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/runtime/backend.ts';
import { initialState, readMemory, writeMemory } from '../src/lower/neural_memory.ts';
import { Rng } from '../src/random/rng.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const K = Number(arg('k', '64'));
const V = 8;
const D = Number(arg('d', '2048'));
const chunk = Number(arg('chunk', '16'));
const thr = Number(arg('threshold', '0'));
const theta = Number(arg('theta', '0.1'));
const hidden = Number(arg('hidden', '0'));
const keys = arg('keys', 'key-only');
const ns = arg('ns', '256,1024,4096').split(',').map(Number);
const B = Number(arg('episodes', '4'));
const seed = Number(arg('seed', '1'));

await selectBackend({});
const rng = new Rng(seed, 'titans-capacity');
const gauss = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
const W = tf.tensor2d(gauss((K + V) * D), [K + V, D]);
const features = (x: tf.Tensor) => tf.relu(tf.sub(tf.div(tf.matMul(tf.reshape(x, [-1, K + V]), W), Math.sqrt(K)), thr));
for (const n of ns) {
  const t0 = performance.now();
  const bits = tf.tidy(() => {
    const pairs = tf.sub(tf.mul(tf.tensor3d(Float32Array.from({ length: B * n * (K + V) }, () => (rng.next() < 0.5 ? 1 : 0)), [B, n, K + V]), 2), 1);
    const q = tf.reshape(features(tf.concat([tf.slice(pairs, [0, 0, 0], [B, n, K]), tf.zeros([B, n, V])], 2)), [B, n, D]);
    const k = keys === 'key-only' ? q : tf.reshape(features(pairs), [B, n, D]);
    const v = tf.slice(pairs, [0, 0, K], [B, n, V]);
    const gates = { theta: tf.fill([B, n], theta), eta: tf.zeros([B, n]), alpha: tf.zeros([B, n]) };
    const init = hidden
      ? initialState([tf.div(tf.tensor2d(gauss(D * hidden), [D, hidden]), Math.sqrt(D)), tf.div(tf.tensor2d(gauss(hidden * V), [hidden, V]), Math.sqrt(hidden))], [tf.zeros([hidden]), tf.zeros([V])], B)
      : initialState([tf.zeros([D, V])], [tf.zeros([V])], B);
    const fn = hidden ? 'tanh' : 'identity';
    const st = writeMemory(init, k, v, gates, fn, chunk, false);
    return tf.mean(tf.cast(tf.equal(tf.sign(readMemory(st.mem, q, fn)), v), 'float32')).dataSync()[0]!;
  });
  const mem = hidden ? `mlp(${D}, ${hidden}, ${V}, tanh)` : `linear(${D}, ${V})`;
  console.log(`K=${K} D=${D} ${mem} chunk=${chunk} threshold=${thr} theta=${theta} keys=${keys} N=${n}: ${(100 * bits).toFixed(1)}% of bits (${B} episodes, every key read; ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
