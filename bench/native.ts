/**
 * The native module's kernels alone, at the benchmark model's sizes (median of 40 calls after 5):
 * a dense layer's backward pass with a random relu pattern (the memory's first `h` layer at M = 128),
 * Adam over the model's 1.3M parameters in place, the Bernoulli log-density and its gradient on
 * the decoder's [4, 32, 784] logits; and, through the wasm backend, `Tile` (the guide's broadcast of
 * h(x)), which vmm replaces. Prints one line per kernel.
 *
 *   node bin/run-ts.mjs bench/native.ts
 *
 * For before/after comparisons of a change to src/runtime/blas/vmm_blas.c: build both, run this
 * with each (VMM_BLAS=source picks the source build over the prebuilt one).
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/runtime/backend.ts';
import { loadBlas } from '../src/runtime/blas.ts';
import { Rng } from '../src/random/rng.ts';

await selectBackend({ force: 'wasm', log: () => {} });
const blas = loadBlas();
const rng = new Rng(1);
const uniform = (n: number, lo = 0, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.nextFloat());
const time = (name: string, f: () => void) => {
  for (let i = 0; i < 5; i++) f();
  const ts: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  ts.sort((p, q) => p - q);
  process.stdout.write(`${name.padEnd(62)} ${ts[20]!.toFixed(3)} ms\n`);
};

if (blas) {
  {
    const [n, k, m] = [4096, 784, 256];
    const dy = uniform(n * m, -1, 1);
    const y = uniform(n * m, -0.5, 0.5); // half the units active, at random: the relu mask's worst case
    const x = uniform(n * k);
    const w = uniform(k * m, -0.1, 0.1);
    const [dw, db] = [new Float32Array(k * m), new Float32Array(m)];
    time(`dense_grad relu ${n}x${k}x${m} (dw, db)`, () => blas.dense_grad(dy, y, x, w, null, dw, db, n, k, m));
  }
  {
    const n = 1_300_000;
    const [w, g, m, v] = [uniform(n, -0.1, 0.1), uniform(n, -1e-3, 1e-3), new Float32Array(n), new Float32Array(n)];
    time(`adam in place, ${n} parameters`, () => blas.adam(w, g, m, v, w, m, v, 0.9, 0.999, 1e-4, 0.03, 1e-8));
  }
  if (blas.bernoulli_logprob && blas.bernoulli_logprob_grad) {
    const [rows, d] = [128, 784];
    const l = uniform(rows * d, -8, 8);
    const x = Float32Array.from(uniform(32 * d), (u) => (u < 0.5 ? 1 : 0));
    const out = new Float32Array(rows);
    const dy = uniform(rows, -1, 1);
    const dl = new Float32Array(rows * d);
    time(`bernoulli_logprob [4,32,784] at x [32,784]`, () => blas.bernoulli_logprob!(l, x, out));
    time(`bernoulli_logprob_grad [4,32,784]`, () => blas.bernoulli_logprob_grad!(dy, l, x, dl));
  }
} else {
  process.stdout.write('no OpenBLAS module: only the wasm kernels below\n');
}
const hx = tf.randomNormal([1, 32, 128]);
const mem = tf.randomNormal([32, 8, 784]);
time('wasm Tile [1,32,128] x [4,1,1]', () => tf.tile(hx, [4, 1, 1]).dispose());
time('wasm Tile [32,8,784] x [1,4,1]', () => tf.tile(mem, [1, 4, 1]).dispose());
tf.dispose([hx, mem]);
