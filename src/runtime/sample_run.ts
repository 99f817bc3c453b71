/**
 * `vmm sample RUN`: pictures of what a trained model does.
 *
 * - samples.png: for each test episode, one row with the memory entries, then rows of
 *   generations conditioned on that memory (ancestral sampling: a ~ p(a | memory), z ~ p(z | m_a),
 *   the Bernoulli means of p(x | z, m_a)).
 * - reconstructions.png: held-out targets (top) and their reconstructions (bottom): z, a from the
 *   guide q, the Bernoulli means of the model's likelihood.
 * Ink is drawn dark on white.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random/rng.ts';
import { readHandlers } from '../lower/handlers.ts';
import { runPrior, runTrace } from '../lower/trace.ts';
import { mean } from '../lower/sites.ts';
import { alignTo, addPlate } from '../lower/plates.ts';
import { writeImageGrid } from '../report/png.ts';
import { testBatches, bindInputs, type RawBatch } from './data_source.ts';
import { loadTrained } from './evaluate_run.ts';

export interface SampleOptions {
  data?: string;
  rows: number;
  samples: number;
  out?: string;
  seed: number;
  /** The memory of each episode: classes x shots (default: the run's training episodes). */
  classes?: number;
  shots?: number;
}

export async function runSample(runPath: string, o: SampleOptions): Promise<{ files: string[] }> {
  const { dir, ir, model, config } = loadTrained(runPath);
  const b = bindInputs(ir);
  const d = b.dataSize;
  const side = Math.round(Math.sqrt(d));
  const out = o.out ?? join(dir.path, 'samples');
  mkdirSync(out, { recursive: true });
  const dataOpts = {
    ...config.data,
    ...(o.data ? { dataDir: o.data } : {}),
    ...(o.classes !== undefined ? { classes: o.classes } : {}),
    ...(o.shots !== undefined ? { shots: o.shots } : {}),
    seed: o.seed,
  };
  const batches = testBatches(ir, dataOpts, o.rows, o.rows); // unseen test characters, as the paper shows generations
  const raw = batches[0]!;
  const rng = new Rng(o.seed);
  const soft = ir.train.estimator.kind === 'soft';
  const files: string[] = [];
  const obsName = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!.name;

  // Generations: K = samples draws per episode from the prior given the episode's memory.
  const gen = tf.tidy(() => {
    const inputs = model.inputs(raw);
    const { observed } = runPrior(ir, inputs, model.applyNet, { k: o.samples, soft, rng });
    const m = mean(observed.get(obsName)!);
    const full = addPlate(m, 'sample', o.samples);
    return alignTo(full, ['sample', 'batch'], undefined, { sample: o.samples, batch: o.rows }); // [K, B, D]
  });
  const g = (await gen.array()) as number[][][];
  gen.dispose();

  const memory = raw.inputs.find((i) => i.name === b.memory);
  const m = memory ? memory.shape[1]! : 0;
  const cols = Math.max(m, o.samples, 1);
  const cells: Float32Array[] = [];
  const blank = new Float32Array(d);
  for (let r = 0; r < o.rows; r++) {
    if (memory) {
      for (let c = 0; c < cols; c++) cells.push(c < m ? memory.data.subarray((r * m + c) * d, (r * m + c + 1) * d) : blank);
    }
    for (let c = 0; c < cols; c++) cells.push(c < o.samples ? Float32Array.from(g[c]![r]!) : blank);
  }
  const rowsPerEpisode = memory ? 2 : 1;
  const samplesPng = join(out, 'samples.png');
  writeImageGrid(samplesPng, concat(cells), { rows: o.rows * rowsPerEpisode, cols, height: side, width: side, scale: 2, maxValue: 1, invert: true });
  files.push(samplesPng);

  // Reconstructions of the held-out targets.
  const rec = tf.tidy(() => {
    const inputs = model.inputs(raw);
    const trace = runTrace(ir, inputs, model.applyNet, { k: 1, rng, handlers: readHandlers(soft ? 'soft' : 'sample') });
    const mm = mean(trace.modelDists.get(obsName)!);
    return tf.reshape(mm.t, [o.rows, d]); // plates [sample (K = 1), batch]
  });
  const recData = (await rec.data()) as Float32Array;
  rec.dispose();
  const target = raw.inputs.find((i) => i.name === b.data)!.data;
  const reconPng = join(out, 'reconstructions.png');
  writeImageGrid(reconPng, concat([target.subarray(0, o.rows * d), recData]), { rows: 2, cols: o.rows, height: side, width: side, scale: 2, maxValue: 1, invert: true });
  files.push(reconPng);
  model.dispose();
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return { files };
}

function concat(parts: Float32Array[]): Float32Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export type { RawBatch };
