/**
 * What folding the nets' linear last layers through their products saves (src/lower/fold.ts):
 * trains the benchmark model (B = 32, K = 4; the variants of bench/vmm_config.ts: `hard`,
 * `soft` = bench/bench_vma_soft.vmm, `soft-query` = vmm's soft attention) twice in one process, folded
 * and unfolded, on the same batch, alternating step by step (each first every other step) so that both see the same machine
 * state; prints the median step time of each and their ratio per configuration.
 *
 *   node bin/run-ts.mjs bench/fold.ts [--configs hard:8,hard:128,soft:32,soft-query:32] [--steps 60] [--warmup 20] [--backend wasm]
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
    configs: { type: 'string', default: 'hard:8,hard:32,hard:128,soft:8,soft:32,soft:128,soft-query:32' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '20' },
    backend: { type: 'string' },
  },
});
const [B, K, D] = [32, 4, 784];
const backend = await selectBackend({ ...(a.backend ? { force: a.backend as 'wasm' | 'cpu' } : {}), log: () => {} });
const program = (path: string) => {
  const fe = frontEnd(readFileSync(join(import.meta.dirname, '..', path), 'utf8'));
  if (!fe.ir) throw new Error(`${path} does not compile`);
  return fe.ir;
};
process.stdout.write(`backend ${backend.name}; ${a.steps} steps each after ${a.warmup} warm-up, folded and unfolded alternating\n`);
process.stdout.write('| variant | M | folded ms | unfolded ms | unfolded / folded |\n|---|---:|---:|---:|---:|\n');
for (const config of a.configs.split(',')) {
  const [variant, m] = config.split(':');
  const M = Number(m);
  if (!['hard', 'soft', 'soft-query'].includes(variant!)) throw new Error(`a variant is hard, soft or soft-query, not ${variant}`);
  const base = program(variant === 'soft' ? 'bench/bench_vma_soft.vmm' : 'models/bench_vma.vmm');
  const kind = variant === 'soft' ? 'iwae' : variant === 'soft-query' ? 'soft' : 'vimco';
  const ir = { ...base, train: { ...base.train, batch: B, estimator: { ...base.train.estimator, kind, k: K } as typeof base.train.estimator } };
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
