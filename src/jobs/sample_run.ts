/**
 * `vmm sample RUN`: pictures of what a trained model does.
 *
 * - samples.png: for each test episode, its memory entries (labelled "memory", wrapped to the
 *   width of a row of samples), then a row of generations conditioned on that memory (ancestral sampling: a ~ p(a | memory), z ~ p(z | m_a),
 *   the Bernoulli means of p(x | z, m_a)).
 * - reconstructions.png: held-out targets (top) and their reconstructions (bottom): z, a from the
 *   guide q, the Bernoulli means of the model's likelihood.
 * Ink is drawn dark on white.
 *
 * Data that are not square images (a mixture's points, a recall task's value bits: any data input
 * whose size is not a square, or a memory whose entries differ from it in size) get the same
 * figures as tables: samples.csv (episode, sample, values) and reconstructions.csv (episode, kind
 * target | reconstruction, values).
 */
import { mkdirpSync, writeFileAtomicSync } from '../report/atomic.ts';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readsSoft } from '../ir/addressing.ts';
import { Rng } from '../random/rng.ts';
import { readHandlers } from '../lower/handlers.ts';
import { runPrior, runTrace } from '../lower/trace.ts';
import { mean } from '../lower/sites.ts';
import { alignTo, addPlate } from '../lower/plates.ts';
import { labelledGridPng } from '../report/labelled_grid.ts';
import { bindInputs, type RawBatch } from '../data/bind.ts';
import { testBatches } from '../data/source.ts';
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
  mkdirpSync(out);
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
  const soft = readsSoft(ir);
  const files: string[] = [];
  const obsName = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!.name;
  // What is observed (and generated): the data input of that name, else the model's data input.
  const observedInput = raw.inputs.find((i) => i.name === obsName) ?? raw.inputs.find((i) => i.name === b.data)!;
  const dObs = observedInput.data.length / o.rows;

  /** Reconstructions of the held-out targets: the means of p(x | z, a) with z, a from the guide, [rows * D]. */
  const reconstruct = async (): Promise<Float32Array> => {
    const rec = tf.tidy(() => {
      const inputs = model.inputs(raw);
      const trace = runTrace(ir, inputs, model.applyNet, { k: 1, rng, handlers: readHandlers(soft ? 'soft' : 'sample') });
      const mm = mean(trace.modelDists.get(obsName)!);
      return tf.reshape(mm.t, [o.rows, dObs]); // plates [sample (K = 1), batch]
    });
    const data = (await rec.data()) as Float32Array;
    rec.dispose();
    return data;
  };

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
  // One memory shared by every row (`vmm train --memory`): [M, ...] without the batch axis.
  const shared = memory !== undefined && !memory.plates.includes('batch');
  const m = memory ? memory.shape[shared ? 0 : 1]! : 0;
  const entrySize = memory && m > 0 ? memory.data.length / ((shared ? 1 : o.rows) * m) : d;
  if (side * side !== d || entrySize !== d || dObs !== d) {
    process.stderr.write(
      `vmm: note: ${ir.name}'s observed '${observedInput.name}' (${dObs} values${entrySize !== dObs ? `, memory entries of ${entrySize}` : ''}) is not a square image: writing the values as tables\n`,
    );
    const rec = await reconstruct();
    const target = observedInput.data;
    const d = dObs;
    const cols = Array.from({ length: d }, (_, i) => `x${i}`).join(',');
    const samplesCsv = join(out, 'samples.csv');
    const sampleRows = g.flatMap((perEpisode, c) => perEpisode.map((v, r) => ({ r, c, v })));
    sampleRows.sort((a, b2) => a.r - b2.r || a.c - b2.c);
    writeFileAtomicSync(samplesCsv, `episode,sample,${cols}\n` + sampleRows.map(({ r, c, v }) => `${r},${c},${v.map(num).join(',')}\n`).join(''));
    files.push(samplesCsv);
    const reconCsv = join(out, 'reconstructions.csv');
    let text = `episode,kind,${cols}\n`;
    for (let r = 0; r < o.rows; r++) {
      text += `${r},target,${Array.from(target.subarray(r * d, (r + 1) * d), num).join(',')}\n`;
      text += `${r},reconstruction,${Array.from(rec.subarray(r * d, (r + 1) * d), num).join(',')}\n`;
    }
    writeFileAtomicSync(reconCsv, text);
    files.push(reconCsv);
    model.dispose();
    process.stderr.write(`wrote ${files.join(', ')}\n`);
    return { files };
  }
  // Rows as wide as the samples: a memory wider than that wraps onto more rows (a memory of 32
  // entries and 8 samples: four rows of memory, one of samples, no empty columns).
  const cols = Math.max(1, o.samples);
  const entries = (r: number) => Array.from({ length: m }, (_, c) => memory!.data.subarray((r * m + c) * d, (r * m + c + 1) * d));
  // A shared memory is too large to draw on every row: its size is in the label instead.
  const groups = Array.from({ length: o.rows }, (_, r) => [
    ...(memory && m > 0 && !shared ? [{ label: `memory\n${m} entr${m === 1 ? 'y' : 'ies'}`, images: entries(r) }] : []),
    { label: `samples\n${shared ? `given the shared\nmemory of ${m}` : memory ? 'given the memory' : 'from the prior'}`, images: g.map((perSample) => Float32Array.from(perSample[r]!)) },
  ]);
  const samplesPng = join(out, 'samples.png');
  writeFileAtomicSync(
    samplesPng,
    labelledGridPng({
      title: `${ir.name}: ${shared ? `generations given one memory of ${m} entries` : memory ? 'memories of unseen test classes and generations from each' : 'generations'}`,
      groups,
      captions: groups.map((_, r) => `${shared ? 'row' : 'episode'} ${r + 1}`),
      cols,
      height: side,
      width: side,
    }),
  );
  files.push(samplesPng);

  const recData = await reconstruct();
  const target = raw.inputs.find((i) => i.name === b.data)!.data;
  const reconPng = join(out, 'reconstructions.png');
  const row = (x: Float32Array) => Array.from({ length: o.rows }, (_, r) => x.subarray(r * d, (r + 1) * d));
  writeFileAtomicSync(
    reconPng,
    labelledGridPng({
      title: `${ir.name}: held-out targets and their reconstructions`,
      groups: [[{ label: 'targets', images: row(target) }, { label: 'reconstructed', images: row(recData) }]],
      cols: o.rows,
      height: side,
      width: side,
    }),
  );
  files.push(reconPng);
  model.dispose();
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return { files };
}

/** A value for a table: 6 significant digits. */
function num(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(6))) : String(v);
}

export type { RawBatch };
