/**
 * Figures a training run logs at each validation besides the bound (for TensorBoard and
 * metrics.jsonl): how much the guide uses its memory, KL(q(a|x) || uniform) against its ceiling
 * log M, and a grid of generations from the prior given held-out memories. Reads are asynchronous,
 * as they must be on webgpu (src/kernels/readback.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { readsSoft } from '../ir/addressing.ts';
import type { IrProgram } from '../ir/types.ts';
import type { CompiledModel } from '../lower/compile.ts';
import { addressPosterior } from '../lower/objective.ts';
import { addPlate, alignTo } from '../lower/plates.ts';
import { mean } from '../lower/sites.ts';
import { runPrior } from '../lower/trace.ts';
import { Rng } from '../random/rng.ts';
import { labelledGridPng } from '../report/labelled_grid.ts';
import { bindInputs, type RawBatch } from '../data/bind.ts';

/**
 * Mean over the batch of KL(q(a|x) || uniform) = log M - H(q(a|x)) for the model's first address
 * (nats), with its ceiling log M; undefined for a model without an address.
 */
export async function addressKl(ir: IrProgram, model: CompiledModel, raw: RawBatch, seed: number): Promise<{ kl: number; logM: number } | undefined> {
  if (!ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) return undefined;
  const probs = tf.tidy(() => addressPosterior(ir, model.inputs(raw), model.applyNet, new Rng(seed)));
  const p = (await probs.data()) as Float32Array;
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
export async function priorMeans(ir: IrProgram, model: CompiledModel, raw: RawBatch, samples: number, rng: Rng): Promise<Float32Array[][]> {
  const batch = raw.inputs.find((i) => i.plates.includes('batch'))?.shape[0] ?? 1;
  const obs = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!.name;
  const soft = readsSoft(ir);
  const out = tf.tidy(() => {
    const { observed } = runPrior(ir, model.inputs(raw), model.applyNet, { k: samples, soft, rng });
    return alignTo(addPlate(mean(observed.get(obs)!), 'sample', samples), ['sample', 'batch'], undefined, { sample: samples, batch });
  });
  const data = (await out.data()) as Float32Array;
  const d = data.length / (samples * batch);
  out.dispose();
  return Array.from({ length: samples }, (_, k) => Array.from({ length: batch }, (_, b) => data.slice((k * batch + b) * d, (k * batch + b + 1) * d)));
}

/**
 * A PNG of generations for TensorBoard: per episode (up to `episodes`), its memory (labelled,
 * wrapped to rows of `samples`) and a row of `samples` generations; undefined when the data are
 * not square images.
 */
export async function sampleGridPng(
  ir: IrProgram,
  model: CompiledModel,
  raw: RawBatch,
  o: { episodes: number; samples: number; seed: number },
): Promise<{ png: Uint8Array; height: number; width: number } | undefined> {
  const b = bindInputs(ir);
  const side = Math.round(Math.sqrt(b.dataSize));
  if (side * side !== b.dataSize || side < 4) return undefined;
  const batch = raw.inputs.find((i) => i.name === b.data)?.shape[0] ?? 0;
  const episodes = Math.min(o.episodes, batch);
  if (episodes < 1) return undefined;
  const g = await priorMeans(ir, model, raw, o.samples, new Rng(o.seed));
  const memory = b.memory !== undefined ? raw.inputs.find((i) => i.name === b.memory) : undefined;
  const perEpisode = memory && memory.plates.includes('batch') ? memory.shape[1]! : 0;
  const groups = Array.from({ length: episodes }, (_, e) => [
    ...(perEpisode ? [{ label: 'memory', images: Array.from({ length: perEpisode }, (_, c) => memory!.data.subarray((e * perEpisode + c) * b.dataSize, (e * perEpisode + c + 1) * b.dataSize)) }] : []),
    { label: 'samples', images: g.map((perSample) => perSample[e]!) },
  ]);
  const png = labelledGridPng({ groups, cols: o.samples, height: side, width: side });
  // The size from the PNG's IHDR chunk (big-endian width and height at bytes 16 and 20).
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { png, width: view.getUint32(16), height: view.getUint32(20) };
}
