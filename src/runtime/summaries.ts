/**
 * Figures a training run logs at each validation besides the bound (for TensorBoard and
 * metrics.jsonl): how much the guide uses its memory, KL(q(a|x) || uniform) against its ceiling
 * log M, and a grid of generations from the prior given held-out memories.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { IrProgram } from '../ir/types.ts';
import type { CompiledModel } from '../lower/compile.ts';
import { addressPosterior } from '../lower/objective.ts';
import { addPlate, alignTo } from '../lower/plates.ts';
import { mean } from '../lower/sites.ts';
import { runPrior } from '../lower/trace.ts';
import { Rng } from '../random/rng.ts';
import { encodeImageGrid, imageGridLayout } from '../report/png.ts';
import { bindInputs, type RawBatch } from './data_source.ts';

/**
 * Mean over the batch of KL(q(a|x) || uniform) = log M - H(q(a|x)) for the model's first address
 * (nats), with its ceiling log M; undefined for a model without an address.
 */
export function addressKl(ir: IrProgram, model: CompiledModel, raw: RawBatch, seed: number): { kl: number; logM: number } | undefined {
  if (!ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) return undefined;
  const probs = tf.tidy(() => addressPosterior(ir, model.inputs(raw), model.applyNet, new Rng(seed)));
  const p = probs.dataSync() as Float32Array;
  const [b, m] = probs.shape as [number, number];
  probs.dispose();
  let sum = 0;
  for (let i = 0; i < b; i++) {
    let h = 0;
    for (let j = 0; j < m; j++) {
      const q = p[i * m + j]!;
      if (q > 0) h -= q * Math.log(q);
    }
    sum += Math.log(m) - h;
  }
  return { kl: sum / b, logM: Math.log(m) };
}

/**
 * Generations from the prior for the first `episodes` examples of `raw`: `samples` draws each of
 * the observed variable's mean, [samples][episodes] arrays of D values.
 */
export function priorMeans(ir: IrProgram, model: CompiledModel, raw: RawBatch, samples: number, rng: Rng): Float32Array[][] {
  const batch = raw.inputs.find((i) => i.plates.includes('batch'))?.shape[0] ?? 1;
  const obs = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!.name;
  const soft = ir.train.estimator.kind === 'soft';
  const out = tf.tidy(() => {
    const { observed } = runPrior(ir, model.inputs(raw), model.applyNet, { k: samples, soft, rng });
    return alignTo(addPlate(mean(observed.get(obs)!), 'sample', samples), ['sample', 'batch'], undefined, { sample: samples, batch });
  });
  const data = out.dataSync() as Float32Array;
  const d = data.length / (samples * batch);
  out.dispose();
  return Array.from({ length: samples }, (_, k) => Array.from({ length: batch }, (_, b) => data.slice((k * batch + b) * d, (k * batch + b + 1) * d)));
}

/**
 * A PNG of generations for TensorBoard: per episode (up to `episodes`), a row with its memory
 * (up to `samples` entries) and a row of `samples` generations; undefined when the data are not
 * square images.
 */
export function sampleGridPng(
  ir: IrProgram,
  model: CompiledModel,
  raw: RawBatch,
  o: { episodes: number; samples: number; seed: number },
): { png: Uint8Array; height: number; width: number } | undefined {
  const b = bindInputs(ir);
  const side = Math.round(Math.sqrt(b.dataSize));
  if (side * side !== b.dataSize || side < 4) return undefined;
  const batch = raw.inputs.find((i) => i.name === b.data)?.shape[0] ?? 0;
  const episodes = Math.min(o.episodes, batch);
  if (episodes < 1) return undefined;
  const g = priorMeans(ir, model, raw, o.samples, new Rng(o.seed));
  const memory = b.memory !== undefined ? raw.inputs.find((i) => i.name === b.memory) : undefined;
  const perEpisode = memory && memory.plates.includes('batch') ? memory.shape[1]! : 0;
  const cols = o.samples;
  const cells: Float32Array[] = [];
  const blank = new Float32Array(b.dataSize);
  for (let e = 0; e < episodes; e++) {
    if (perEpisode) {
      for (let c = 0; c < cols; c++) {
        cells.push(c < perEpisode ? memory!.data.subarray((e * perEpisode + c) * b.dataSize, (e * perEpisode + c + 1) * b.dataSize) : blank);
      }
    }
    for (let c = 0; c < cols; c++) cells.push(g[c]![e]!);
  }
  const images = new Float32Array(cells.length * b.dataSize);
  cells.forEach((c, i) => images.set(c, i * b.dataSize));
  const opts = { rows: episodes * (perEpisode ? 2 : 1), cols, height: side, width: side, scale: 2, maxValue: 1, invert: true };
  const layout = imageGridLayout(opts);
  return { png: new Uint8Array(encodeImageGrid(images, opts)), height: layout.pngHeight, width: layout.pngWidth };
}
