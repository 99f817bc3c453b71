/**
 * The convolutional VMA model (models/vma_omniglot.vmm: the twin of
 * bench/reference/bench_vma_conv.py; hard addressing, VIMCO, K = 4, memory M + 2 learned entries)
 * trained on one backend at each batch size, on random binary data made once and kept on the
 * device. Prints one JSON line per batch size: steps/s from the median and from the fastest timed
 * step, the spread, the bound, the backend line.
 *
 *   node bin/run-ts.mjs bench/gpu_bench.ts --backend webgpu --batches 32,256 --M 32 --steps 20 --warmup 3
 *   node .gpu/gpu_bench.mjs --backend webgpu ...     (the bundle that `bench/gpu.sh pack` makes)
 *
 * Each step is `Trainer.stepAsync`, which awaits its loss and bound, so a timed step ends when the
 * device has finished it (webgpu queues work; a step's time includes its readback of two scalars).
 * The model file is read from ../models beside this file's folder (bench/ or .gpu/), or --model.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { formatInfo, selectBackend } from '../src/runtime/backend.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { deviceBatch } from './batch.ts';
import { median } from './stats.ts';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    batches: { type: 'string', default: '32,256' },
    M: { type: 'string', default: '32' },
    K: { type: 'string', default: '4' },
    steps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    model: { type: 'string' },
    /** Exit 3 when the WebGPU adapter is a software one (lavapipe): a GPU run that found no GPU. */
    'require-hardware': { type: 'boolean', default: false },
  },
});

const info = await selectBackend({ force: a.backend!, log: () => {} });
if (a['require-hardware'] && info.adapter?.software) {
  process.stderr.write(`gpu_bench: only a software WebGPU adapter: ${formatInfo(info)}\n`);
  process.exit(3);
}
const modelPath = a.model ?? join(import.meta.dirname, '..', 'models', 'vma_omniglot.vmm');
const fe = frontEnd(readFileSync(modelPath, 'utf8'));
if (!fe.ir) throw new Error(`${modelPath} does not compile`);
const D = 784;
const M = Number(a.M);
const K = Number(a.K);

for (const B of a.batches!.split(',').map(Number)) {
  const ir = { ...fe.ir, train: { ...fe.ir.train, batch: B, estimator: { ...fe.ir.train.estimator, kind: 'vimco', k: K } as typeof fe.ir.train.estimator } };
  const trainer = new Trainer(ir, 1);
  const batch = await deviceBatch(B, M, D);
  const t0 = performance.now();
  for (let i = 0; i < Number(a.warmup); i++) await trainer.stepAsync(batch);
  const warmupS = (performance.now() - t0) / 1000;
  const ms: number[] = [];
  let bound = NaN;
  for (let i = 0; i < Number(a.steps); i++) {
    const t = performance.now();
    bound = (await trainer.stepAsync(batch)).bound;
    ms.push(performance.now() - t);
  }
  const med = median(ms);
  const min = Math.min(...ms);
  const max = Math.max(...ms);
  process.stdout.write(
    JSON.stringify({
      system: 'vmm',
      model: 'conv',
      backend: info.name,
      backend_line: formatInfo(info),
      B,
      M,
      K,
      steps: ms.length,
      warmup: Number(a.warmup),
      warmup_s: warmupS,
      median_ms: med,
      min_ms: min,
      max_ms: max,
      steps_per_s: 1000 / med,
      steps_per_s_best: 1000 / min,
      examples_per_s: (1000 * B) / med,
      bound,
      num_tensors: tf.memory().numTensors,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      node: process.version,
    }) + '\n',
  );
  trainer.dispose();
  for (const t of batch.inputs) (t.data as tf.Tensor).dispose();
}
