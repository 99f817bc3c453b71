/**
 * Which products should run on one OpenBLAS thread: trains the benchmark model
 * (models/bench_vma.vmm, hard/VIMCO, B = 32, K = 4) in one process and changes the native module's
 * serial threshold (vmm_blas.c, `serial_below`) step by step, round robin, so every threshold sees
 * the same machine state; prints the median step time per threshold. A threshold of 0 lets OpenBLAS
 * thread every product; 1e12 runs all of them on one thread.
 *
 *   node bin/run-ts.mjs bench/serial_threshold.ts [--M 32] [--thresholds 0,16777216,33554432,67108864,1e12] [--steps 60] [--pair 0,1,3]
 *
 * Needs the OpenBLAS module (wasm backend). Random binary data, kept on the device (bench/batch.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { frontEnd } from '../src/check/pipeline.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { loadBlas } from '../src/runtime/blas.ts';
import { deviceBatch } from './batch.ts';
import { Trainer } from '../src/runtime/trainer.ts';

const { values: a } = parseArgs({
  options: {
    M: { type: 'string', default: '32' },
    thresholds: { type: 'string', default: '0,16777216,33554432,67108864,1e12' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '4' },
    pair: { type: 'string', default: '' },
  },
});
const M = Number(a.M);
const thresholds = a.thresholds.split(',').map(Number);
// --pair 0,1,3: every threshold with each pair mode (vmm_blas.c: 0 OpenBLAS's threads, 1 two products
// of serial size at once, 3 the pool, where the threshold does not matter). Without it mode 0: the
// pool (the default on two cores) splits every product, so thresholds would all time the same.
const pairs = a.pair ? a.pair.split(',').map(Number) : [0];
const modes = thresholds.flatMap((threshold) => pairs.map((pair) => ({ threshold, pair })));
const [B, D] = [32, 784];

await selectBackend({ force: 'wasm', log: () => {} });
const blas = loadBlas();
if (!blas?.serial_below) throw new Error('serial_threshold.ts needs the OpenBLAS module with serial_below (npm run build:blas)');
const fe = frontEnd(readFileSync(join(import.meta.dirname, '..', 'models', 'bench_vma.vmm'), 'utf8'));
if (!fe.ir) throw new Error('models/bench_vma.vmm does not compile');
const ir = { ...fe.ir, train: { ...fe.ir.train, batch: B, estimator: { ...fe.ir.train.estimator, kind: 'vimco', k: 4 } as typeof fe.ir.train.estimator } };
const trainer = new Trainer(ir, 1);
const batch = await deviceBatch(B, M, D);
const initial = blas.serial_below(-1);
const initialPair = blas.pair?.(-1);
if (pairs.some((p) => p >= 0) && !blas.pair) throw new Error('--pair needs a module with pair() (npm run build:blas)');
for (let i = 0; i < Number(a.warmup); i++) trainer.step(batch);
const times = modes.map(() => [] as number[]);
for (let i = 0; i < Number(a.steps) * modes.length; i++) {
  const j = i % modes.length;
  blas.serial_below(modes[j]!.threshold);
  blas.pair?.(modes[j]!.pair);
  const t0 = performance.now();
  trainer.step(batch);
  times[j]!.push(performance.now() - t0);
}
blas.serial_below(initial);
if (initialPair !== undefined) blas.pair?.(initialPair);
const median = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1]!;
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
process.stdout.write(`hard/VIMCO M=${M}, ${a.steps} steps per mode, round robin (default threshold ${initial}, pair mode ${initialPair === undefined ? 'not built' : initialPair}):\n`);
modes.forEach(({ threshold, pair }, j) =>
  process.stdout.write(
    `  serial below ${threshold.toExponential(2)} multiply-adds, pair mode ${pair}: median ${median(times[j]!).toFixed(1)} ms/step, mean ${mean(times[j]!).toFixed(1)}\n`,
  ),
);
trainer.dispose();
