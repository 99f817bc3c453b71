/**
 * The per-example products of a memory per episode (src/lower/evaluate.ts): `rowDot` (address
 * logits `h(mem_b) @ u_b`) and `weightedRows` (a soft read `w_b @ g(mem_b)`), values and both
 * gradients, against sums in double precision, on each route `thinProductsAsMatMul` picks: one
 * BatchMatMul (cpu; wasm with the OpenBLAS products, whose sgemv and outer-product path they
 * reach) or a broadcast multiply and a sum (wasm without them: the generic mode).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/runtime/backend.ts';
import { loadBlas } from '../../src/runtime/blas.ts';
import { thinProductsAsMatMul } from '../../src/kernels/registry.ts';
import { rowDot, weightedRows } from '../../src/lower/evaluate.ts';

const [n, m, c] = [5, 9, 300];
const values = (len: number, seed: number) => Float64Array.from({ length: len }, (_, i) => Math.sin(seed * 7.13 + i * 1.37) * 1.5);
const E = values(n * m * c, 1);
const V = values(n * c, 2);
const W = values(n * m, 3);
const DY_ROW = values(n * m, 4); // upstream gradient of rowDot's [n, m]
const DY_W = values(n * c, 5); // of weightedRows' [n, c]
const e3 = (i: number, j: number, k: number) => E[(i * m + j) * c + k]!;

/** What both products and their gradients must be, in doubles. */
function exact() {
  const row = new Float64Array(n * m);
  const read = new Float64Array(n * c);
  const dE = new Float64Array(n * m * c); // rowDot's de = dy v; weightedRows' de = w dy
  const dEw = new Float64Array(n * m * c);
  const dV = new Float64Array(n * c); // rowDot's dv = sum_j dy[i,j] e[i,j,:]
  const dW = new Float64Array(n * m); // weightedRows' dw = e[i,j,:] . dy[i,:]
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      for (let k = 0; k < c; k++) {
        row[i * m + j]! += e3(i, j, k) * V[i * c + k]!;
        read[i * c + k]! += W[i * m + j]! * e3(i, j, k);
        dE[(i * m + j) * c + k] = DY_ROW[i * m + j]! * V[i * c + k]!;
        dEw[(i * m + j) * c + k] = W[i * m + j]! * DY_W[i * c + k]!;
        dV[i * c + k]! += DY_ROW[i * m + j]! * e3(i, j, k);
        dW[i * m + j]! += e3(i, j, k) * DY_W[i * c + k]!;
      }
    }
  }
  return { row, read, dE, dEw, dV, dW };
}

/** The largest difference relative to the largest magnitude of `want` (float32 sums over c = 300). */
function relErr(got: ArrayLike<number>, want: Float64Array): number {
  let d = 0;
  let s = 0;
  want.forEach((w, i) => {
    d = Math.max(d, Math.abs(got[i]! - w));
    s = Math.max(s, Math.abs(w));
  });
  return d / s;
}

function onBackend() {
  const want = exact();
  const e = tf.tensor3d(Float32Array.from(E), [n, m, c]);
  const v = tf.tensor2d(Float32Array.from(V), [n, c]);
  const w = tf.tensor2d(Float32Array.from(W), [n, m]);
  const dyRow = tf.tensor2d(Float32Array.from(DY_ROW), [n, m]);
  const dyW = tf.tensor2d(Float32Array.from(DY_W), [n, c]);
  const before = tf.memory().numTensors;
  const [row, read] = tf.tidy(() => [rowDot(e, v).dataSync(), weightedRows(w, e).dataSync()]);
  const gRow = tf.grads((a: tf.Tensor, b: tf.Tensor) => rowDot(a, b));
  const [dE, dV] = tf.tidy(() => gRow([e, v], dyRow).map((g) => g.dataSync()));
  const gW = tf.grads((a: tf.Tensor, b: tf.Tensor) => weightedRows(a, b));
  const [dW, dEw] = tf.tidy(() => gW([w, e], dyW).map((g) => g.dataSync()));
  // A constant operand gets no gradient and the same value.
  const rowConst = tf.tidy(() => rowDot(e, v, { e: true, v: true }).dataSync());
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([e, v, w, dyRow, dyW]);
  const errs = {
    row: relErr(row!, want.row),
    rowConst: relErr(rowConst, want.row),
    read: relErr(read!, want.read),
    dE: relErr(dE!, want.dE),
    dV: relErr(dV!, want.dV),
    dW: relErr(dW!, want.dW),
    dEw: relErr(dEw!, want.dEw),
  };
  for (const [k, err] of Object.entries(errs)) expect(err, k).toBeLessThan(1e-5);
}

describe('rowDot and weightedRows on each route', () => {
  afterAll(async () => {
    await selectBackend({ force: 'cpu', kernels: 'vmm' });
  });

  it('cpu: one BatchMatMul each', async () => {
    await selectBackend({ force: 'cpu', kernels: 'vmm' });
    expect(thinProductsAsMatMul()).toBe(true);
    onBackend();
  });

  it('wasm: BatchMatMul with the OpenBLAS products, a broadcast multiply without them', async () => {
    await selectBackend({ force: 'wasm', kernels: 'vmm' });
    expect(thinProductsAsMatMul()).toBe(loadBlas() !== undefined);
    onBackend();
  });

  it('wasm, generic mode (no OpenBLAS products): a broadcast multiply and a sum', async () => {
    await selectBackend({ force: 'wasm', kernels: 'generic' });
    expect(thinProductsAsMatMul()).toBe(false);
    onBackend();
    await selectBackend({ force: 'wasm', kernels: 'vmm' });
  });
});
