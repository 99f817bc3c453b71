/**
 * What folding the nets' linear last layers through their products saves (src/lower/fold.ts):
 * trains the benchmark model (models/bench_vma.vmm, B = 32, K = 4) twice in one process, folded
 * and unfolded, on the same batch, alternating step by step (each first every other step) so that both see the same machine
 * state; prints the median step time of each and their ratio per configuration.
 *
 *   node bin/run-ts.mjs bench/fold.ts [--configs hard:8,hard:128,soft:32] [--steps 60] [--warmup 20] [--backend wasm]
 *
 * Random binary data, kept on the device (bench/batch.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { frontEnd } from '../src/check/pipeline.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { deviceBatch } from './batch.ts';
import { median } from './stats.ts';

const { values: a } = parseArgs({
  options: {
    configs: { type: 'string', default: 'hard:8,hard:32,hard:128,soft:8,soft:32,soft:128' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '20' },
    backend: { type: 'string' },
  },
});
const [B, K, D] = [32, 4, 784];
const backend = await selectBackend({ ...(a.backend ? { force: a.backend as 'wasm' | 'cpu' } : {}), log: () => {} });
const fe = frontEnd(readFileSync(join(import.meta.dirname, '..', 'models', 'bench_vma.vmm'), 'utf8'));
if (!fe.ir) throw new Error('models/bench_vma.vmm does not compile');
process.stdout.write(`backend ${backend.name}; ${a.steps} steps each after ${a.warmup} warm-up, folded and unfolded alternating\n`);
process.stdout.write('| variant | M | folded ms | unfolded ms | unfolded / folded |\n|---|---:|---:|---:|---:|\n');
for (const config of a.configs.split(',')) {
  const [variant, m] = config.split(':');
  const M = Number(m);
  const kind = variant === 'soft' ? 'soft' : 'vimco';
  const ir = { ...fe.ir, train: { ...fe.ir.train, batch: B, estimator: { ...fe.ir.train.estimator, kind, k: K } as typeof fe.ir.train.estimator } };
  const trainers = [new Trainer(ir, 1, { fold: true }), new Trainer(ir, 1, { fold: false })];
  const batch = await deviceBatch(B, M, D);
  for (let i = 0; i < Number(a.warmup); i++) for (const t of trainers) t.step(batch);
  const ms: number[][] = [[], []];
  for (let i = 0; i < Number(a.steps); i++) {
    for (const j of i % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      trainers[j]!.step(batch);
      ms[j]!.push(performance.now() - t0);
    }
  }
  const [folded, unfolded] = ms.map(median) as [number, number];
  process.stdout.write(`| ${variant} | ${M} | ${folded.toFixed(1)} | ${unfolded.toFixed(1)} | ${(unfolded / folded).toFixed(2)} |\n`);
  for (const t of trainers) t.dispose();
  for (const input of batch.inputs) (input.data as { dispose(): void }).dispose();
}
