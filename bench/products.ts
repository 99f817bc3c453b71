/**
 * The dense layers of one training step of the benchmark model (models/bench_vma.vmm, hard, B = 32,
 * K = 4, M = 8 by default), each timed alone, forward and backward, through vmm's OpenBLAS module
 * and through PyTorch (bench/reference/products.py, the same shapes, the same library underneath
 * where Debian's torch links OpenBLAS): whether vmm's products are slower than PyTorch's at the
 * sizes where its steps are (issue #23). Each side runs as its user runs it (OPENBLAS_NUM_THREADS
 * from the environment; torch with one intra-op thread), interleaved vmm, torch, torch, vmm.
 *
 *   node bin/run-ts.mjs bench/products.ts [--M 8] [--rounds 2] [--reps 60]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadBlas } from '../src/runtime/blas.ts';
import { Rng } from '../src/random/rng.ts';
import { medianTime } from './stats.ts';

const { values: a } = parseArgs({ options: { M: { type: 'string', default: '8' }, rounds: { type: 'string', default: '2' }, reps: { type: 'string', default: '60' }, python: { type: 'string' } } });
const [B, K, M, reps] = [32, 4, Number(a.M), Number(a.reps)];

/** [name, rows, in, out, relu, needs dx]: the step's dense layers (bench-model.md). */
const LAYERS: [string, number, number, number, boolean, boolean][] = [
  ['h1 mem', B * M, 784, 256, true, false],
  ['h2 mem', B * M, 256, 128, false, true],
  ['h1 x', B, 784, 256, true, false],
  ['h2 x', B, 256, 128, false, true],
  ['g1', K * B, 784, 400, true, false],
  ['g2', K * B, 400, 400, true, true],
  ['g3', K * B, 400, 128, false, true],
  ['prior', K * B, 128, 64, false, true],
  ['enc1', K * B, 256, 256, true, true],
  ['enc2', K * B, 256, 64, false, true],
  ['dec1', K * B, 160, 256, true, true],
  ['dec2', K * B, 256, 400, true, true],
  ['dec3', K * B, 400, 784, false, true],
];

function vmmSide(): number[] {
  const blas = loadBlas();
  if (!blas) throw new Error('no OpenBLAS module (npm run build:blas)');
  const rng = new Rng(1);
  const u = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.nextFloat());
  return LAYERS.map(([, n, k, m, relu, needDx]) => {
    const [x, w, b, dy] = [u(n * k, 0, 1), u(k * m, -0.1, 0.1), u(m, -0.1, 0.1), u(n * m, -1, 1)];
    const [y, dw, db, dx] = [new Float32Array(n * m), new Float32Array(k * m), new Float32Array(m), needDx ? new Float32Array(n * k) : null];
    const once = () => {
      blas.gemm(x, w, y, 1, n, m, k, false, false, b, relu);
      blas.dense_grad(dy, relu ? y : null, x, w, dx, dw, db, n, k, m);
    };
    return medianTime(once, reps);
  });
}

/** The first of these with torch, as bench/run.ts looks (Debian's python3-torch is /usr/bin's). */
const python = [a.python, '/usr/bin/python3', 'python3'].find((py) => py && spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);

function torchSide(): number[] | undefined {
  if (!python) return undefined;
  const r = spawnSync(python, [join(import.meta.dirname, 'reference', 'products.py'), JSON.stringify({ layers: LAYERS, reps })], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`PyTorch side failed: ${r.stderr || r.error}\n`);
    return undefined;
  }
  return JSON.parse(r.stdout) as number[];
}

const runs: { vmm: number[][]; torch: number[][] } = { vmm: [], torch: [] };
for (let round = 0; round < Number(a.rounds); round++) {
  const order = round % 2 === 0 ? ['vmm', 'torch'] : ['torch', 'vmm'];
  for (const side of order) {
    if (side === 'vmm') runs.vmm.push(vmmSide());
    else {
      const t = torchSide();
      if (t) runs.torch.push(t);
    }
  }
}
if (!python) process.stdout.write('no python with torch (apt-get install python3-torch): vmm side only\n');
const best = (rs: number[][], i: number) => Math.min(...rs.map((r) => r[i]!));
process.stdout.write(`M = ${M}, B = ${B}, K = ${K}; ms per layer (forward + backward), the best of ${a.rounds} runs' medians of ${reps}; OPENBLAS_NUM_THREADS=${process.env['OPENBLAS_NUM_THREADS'] ?? '(unset)'}\n`);
process.stdout.write(`| layer | rows x in x out | vmm ms | torch ms | vmm / torch |\n|---|---|---:|---:|---:|\n`);
let [sv, st] = [0, 0];
LAYERS.forEach(([name, n, k, m], i) => {
  const v = best(runs.vmm, i);
  const t = runs.torch.length ? best(runs.torch, i) : NaN;
  sv += v;
  st += t;
  process.stdout.write(`| ${name} | ${n} x ${k} x ${m} | ${v.toFixed(3)} | ${t.toFixed(3)} | ${(v / t).toFixed(2)} |\n`);
});
process.stdout.write(`| all | | ${sv.toFixed(2)} | ${st.toFixed(2)} | ${(sv / st).toFixed(2)} |\n`);
