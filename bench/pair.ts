/**
 * The native module's pair helper alone (src/runtime/blas/vmm_blas.c): each product shape of the
 * benchmark model's dense layers at M = 8 (n rows x k in x m out), forward (bias + relu) and
 * backward (dense_grad: dw and dx), and the Adam update of the model's largest parameter arrays,
 * with pairs off and on, alternating twice; medians of 200 calls (Adam: 300 rounds).
 *
 *   node bin/run-ts.mjs bench/pair.ts
 *
 * Needs the OpenBLAS module with pair() (npm run build:blas) and two OpenBLAS threads.
 */
import { loadBlas } from '../src/runtime/blas.ts';
import { medianTime } from './stats.ts';

const blas = loadBlas();
if (!blas?.pair) throw new Error('bench/pair.ts needs the OpenBLAS module with pair() (npm run build:blas)');
const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const time = (f: () => void, reps: number) => medianTime(f, reps, 20);
const initial = blas.pair(-1);
process.stdout.write(`OpenBLAS threads ${blas.threads()}; ms, median of 200 calls, pairs off / on (twice)\n| n x k x m | forward off | on | backward off | on |\n|---|---:|---:|---:|---:|\n`);
for (const [n, k, m] of [[128, 400, 400], [128, 256, 400], [128, 400, 128], [256, 256, 128], [128, 256, 256], [128, 160, 256], [32, 784, 256]] as const) {
  const dy = rnd(n * m), y = rnd(n * m), x = rnd(n * k), w = rnd(k * m), bias = rnd(m);
  const dx = new Float32Array(n * k), dw = new Float32Array(k * m), db = new Float32Array(m), out = new Float32Array(n * m);
  const cells: string[] = [];
  for (const pass of [0, 1]) {
    const fwd: number[] = [], bwd: number[] = [];
    for (const mode of [0, 1]) {
      blas.pair(mode);
      fwd.push(time(() => blas.gemm(x, w, out, 1, n, m, k, false, false, bias, true), 200));
      bwd.push(time(() => blas.dense_grad(dy, y, x, w, dx, dw, db, n, k, m), 200));
    }
    cells[pass] = `${fwd[0]!.toFixed(3)} | ${fwd[1]!.toFixed(3)} | ${bwd[0]!.toFixed(3)} | ${bwd[1]!.toFixed(3)}`;
  }
  process.stdout.write(`| ${n} x ${k} x ${m} | ${cells[0]} |\n| (again) | ${cells[1]} |\n`);
}
const sizes = [313_600, 200_704, 160_000, 102_400, 65_536, 51_200, 100_352, 51_200, 16_384, 40_960, 65_536];
const arrays = sizes.map((n) => [rnd(n), rnd(n), rnd(n).map(Math.abs), rnd(n).map(Math.abs)] as const);
const adam = () => {
  for (const [w, g, m, v] of arrays) blas.adam(w, g, m, v, w, m, v, 0.9, 0.999, 1e-4, 1, 1e-8);
};
const rounds: string[] = [];
for (const mode of [0, 1, 0, 1]) {
  blas.pair(mode);
  rounds.push(`${mode ? 'on' : 'off'} ${time(adam, 300).toFixed(3)}`);
}
process.stdout.write(`Adam over ${sizes.reduce((s, n) => s + n, 0)} parameters in ${sizes.length} arrays, ms: ${rounds.join(', ')}\n`);
blas.pair(initial);
