/**
 * Times one benchmark configuration through the vmm trainer, in its own process so that the
 * peak memory (max RSS) belongs to this configuration alone. Prints one JSON line.
 *
 *   node bin/run-ts.mjs bench/vmm_config.ts --variant hard|soft|soft-query --M 32 [--B 32 --K 4 --steps 10 --warmup 3 --backend wasm]
 *   node bin/run-ts.mjs bench/vmm_config.ts --model conv --variant hard --M 32   (models/vma_omniglot.vmm)
 *   node bin/run-ts.mjs bench/vmm_config.ts --addressing-only --memory 10000 [--queries 32]
 *
 * The model is models/bench_vma.vmm (../shared/docs/bench-model.md): memory [B, M, D], one per
 * episode. `hard`: as written (VIMCO). `soft`: the spec's soft variant, deterministic attention
 * `r = sum_i q(i | x) g(m_i)` written out in bench/bench_vma_soft.vmm, the work PyTorch's twin
 * does (bench/reference/bench_vma.py --variant soft). `soft-query`: vmm's own soft attention
 * (`--addressing soft`, src/ir/addressing.ts: a latent query per sample; no PyTorch twin); random binary data made once per configuration and kept on the device (not timed).
 * `npm run bench` runs it with node's --expose-gc, so the host copy of the data is freed before
 * the steps (peak memory).
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { CompiledModel } from '../src/lower/compile.ts';
import { Categorical } from '../src/families/distributions.ts';
import { Rng } from '../src/random/rng.ts';
import { deviceBatch, randomBinary } from './batch.ts';
import { median } from './stats.ts';

const { values: a } = parseArgs({
  options: {
    variant: { type: 'string', default: 'hard' },
    M: { type: 'string', default: '32' },
    B: { type: 'string', default: '32' },
    K: { type: 'string', default: '4' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    backend: { type: 'string' },
    'addressing-only': { type: 'boolean', default: false },
    memory: { type: 'string', default: '10000' },
    queries: { type: 'string', default: '32' },
    repeats: { type: 'string', default: '10' },
    /** `bench` (models/bench_vma.vmm, MLPs) or `conv` (models/vma_omniglot.vmm, the convolutional VMA model). */
    model: { type: 'string', default: 'bench' },
    /** Also print every timed step's ms (`step_ms`), in order: where the spread of the steps comes from. */
    times: { type: 'boolean', default: false },
  },
});

const backend = await selectBackend({ ...(a.backend ? { force: a.backend as 'wasm' | 'cpu' | 'tensorflow' } : {}), log: () => {} });
const modelPath =
  a.model === 'conv'
    ? join('models', 'vma_omniglot.vmm')
    : a.variant === 'soft' && !a['addressing-only']
      ? join('bench', 'bench_vma_soft.vmm')
      : join('models', 'bench_vma.vmm');
const source = readFileSync(join(import.meta.dirname, '..', modelPath), 'utf8');
const fe = frontEnd(source);
if (!fe.ir) throw new Error(`${modelPath} does not compile`);
const D = 784;

if (a['addressing-only']) {
  const N = Number(a.memory);
  const Q = Number(a.queries);
  const repeats = Number(a.repeats);
  const model = new CompiledModel(fe.ir, 1);
  const mem = tf.tensor2d(randomBinary(N * D, 1), [N, D]);
  const x = tf.tensor2d(randomBinary(Q * D, 2), [Q, D]);
  const rng = new Rng(3);
  // q(a | x) = softmax(h(x) . h(m_i)) against one memory shared by all queries.
  // The memory's embeddings, computed once and kept as [H, N] (the layout q(a|x) multiplies by).
  const embeddedT = tf.tidy(() => tf.transpose(model.applyNet('h', mem)));
  const time = (f: () => tf.Tensor): number => {
    const out = f();
    out.dataSync();
    out.dispose();
    const ts: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      const o = f();
      o.dataSync();
      o.dispose();
      ts.push(performance.now() - t0);
    }
    return median(ts);
  };
  const logits = (hmT: tf.Tensor) => tf.matMul(model.applyNet('h', x), hmT); // [Q, N]
  const top1 = time(() => tf.tidy(() => tf.argMax(logits(embeddedT), -1)));
  const sample = time(() => tf.tidy(() => new Categorical(logits(embeddedT)).sample(rng)));
  const top1WithEmbed = time(() => tf.tidy(() => tf.argMax(tf.matMul(model.applyNet('h', x), model.applyNet('h', mem), false, true), -1)));
  process.stdout.write(
    JSON.stringify({
      system: 'vmm',
      memory: N,
      queries: Q,
      qps_top1: (Q * 1000) / top1,
      qps_sample: (Q * 1000) / sample,
      qps_top1_with_embedding: (Q * 1000) / top1WithEmbed,
      backend: backend.name,
      threads: backend.threads,
      blas_threads: backend.blasThreads ?? null,
      blas_why_not: backend.blasWhyNot ?? null,
      blas_module: backend.blasModule ?? null,
      blas_core: backend.blasCore ?? null,
      blas_pool: backend.blasPool ?? false,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  );
} else {
  const M = Number(a.M);
  const B = Number(a.B);
  const K = Number(a.K);
  if (!['hard', 'soft', 'soft-query'].includes(a.variant)) throw new Error(`--variant is hard, soft or soft-query, not ${a.variant}`);
  const kind = a.variant === 'soft' ? 'iwae' : a.variant === 'soft-query' ? 'soft' : 'vimco';
  const ir = { ...fe.ir, train: { ...fe.ir.train, batch: B, estimator: { ...fe.ir.train.estimator, kind, k: K } as typeof fe.ir.train.estimator } };
  const trainer = new Trainer(ir, 1);
  const batch = await deviceBatch(B, M, D); // on the device, made once (bench/batch.ts)
  const loadBefore = loadavg()[0];
  // The warm-up steps' times are reported (not in the median): how long vmm takes to reach its
  // steady rate (V8's and the wasm module's compilation tiers, the heap and thread pools growing).
  const warmupMs: number[] = [];
  for (let i = 0; i < Number(a.warmup); i++) {
    const t0 = performance.now();
    trainer.step(batch);
    warmupMs.push(performance.now() - t0);
  }
  const ms: number[] = [];
  // CPU time of this process per step (user + system, all its threads): on a loaded machine it
  // moves far less than the wall time (with OPENBLAS_NUM_THREADS=1, no spinning BLAS thread).
  const cpu: number[] = [];
  let bound = NaN;
  for (let i = 0; i < Number(a.steps); i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    bound = trainer.step(batch).bound;
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = median(ms);
  process.stdout.write(
    JSON.stringify({
      system: 'vmm',
      model: a.model,
      variant: a.variant,
      M,
      B,
      K,
      steps_per_s: 1000 / med,
      examples_per_s: (1000 * B) / med,
      median_ms: med,
      mean_ms: ms.reduce((x, y) => x + y, 0) / ms.length,
      cpu_ms_median: median(cpu),
      min_ms: Math.min(...ms),
      max_ms: Math.max(...ms),
      steps_per_s_best: 1000 / Math.min(...ms),
      loadavg_1min_before: loadBefore,
      warmup_ms: warmupMs.map((t) => Math.round(t * 10) / 10),
      ...(a.times ? { step_ms: ms.map((t) => Math.round(t * 10) / 10) } : {}),
      bound,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      backend: backend.name,
      threads: backend.threads,
      simd: backend.simd,
      blas_threads: backend.blasThreads ?? null,
      blas_why_not: backend.blasWhyNot ?? null,
      blas_module: backend.blasModule ?? null,
      blas_core: backend.blasCore ?? null,
      blas_pool: backend.blasPool ?? false,
    }) + '\n',
  );
  trainer.dispose();
}
