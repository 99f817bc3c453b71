/**
 * Associative recall against the stream length N (Titans, Behrouz et al. 2025, arXiv:2501.00663,
 * the needle-in-a-haystack task in miniature): trains models/titans_recall.vmm on episodes of
 * `--train-n` pairs, then for each N writes fixed test episodes of N pairs into the neural memory
 * and queries one stored key per episode. Next to it, soft attention over the same stream:
 * `softmax(beta q . k_i)`-weighted values over the N stored pairs, keys and values as -1 / +1 bits,
 * no learned parameters (its cost per query grows with N). Writes bench/results/titans_recall.md.
 *
 *   node bin/run-ts.mjs bench/titans_recall.ts [--steps 800] [--train-n 16] [--ns 16,64,256,1024,4096]
 *     [--queries 64] [--beta 2] [--seed 1] [--out bench/results/titans_recall.md]
 *
 * Timings are wall-clock on whatever backend `selectBackend` picks, on a shared machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { recallEpisodes } from '../src/data/synthetic_recall.ts';
import type { IrProgram, IrSite } from '../src/ir/types.ts';
import { evaluate, type EvalContext } from '../src/lower/evaluate.ts';
import { writtenMemory } from '../src/lower/neural_memory.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { type DataOptions } from '../src/data/bind.ts';
import { trainStream } from '../src/data/source.ts';
import { recallBinding, recallInputs } from '../src/data/sets/recall.ts';
import { Trainer } from '../src/runtime/trainer.ts';

const ROOT = join(import.meta.dirname, '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const steps = Number(arg('steps', '800'));
const trainN = Number(arg('train-n', '16'));
const ns = arg('ns', '16,64,256,1024,4096').split(',').map(Number);
const queries = Number(arg('queries', '64'));
const beta = Number(arg('beta', '2'));
const seed = Number(arg('seed', '1'));
const out = arg('out', join(ROOT, 'bench', 'results', 'titans_recall.md'));

const backend = await selectBackend({});
const modelPath = join(ROOT, 'models', 'titans_recall.vmm');
const fe = frontEnd(readFileSync(modelPath, 'utf8'));
if (!fe.ir) throw new Error(fe.diagnostics.map((d) => d.message).join('; '));
const ir: IrProgram = fe.ir;
const dataFor = (n: number): DataOptions => ({ dataset: 'recall', seed, classes: n, shots: 1, distractors: 0 });

// ---- train
const trainer = new Trainer(ir, seed);
const stream = trainStream(ir, dataFor(trainN));
const t0 = performance.now();
let last = NaN;
for (let s = 1; s <= steps; s++) {
  last = trainer.step(stream.next(ir.train.batch)).bound;
  if (s % 100 === 0) process.stderr.write(`step ${s}/${steps} bound ${last.toFixed(3)}\n`);
}
const trainSeconds = (performance.now() - t0) / 1000;

// ---- evaluate
const observe = ir.model.find((s): s is IrSite => s.stmt === 'site' && s.role === 'observe')!;
if (observe.dist.kind !== 'family' || observe.dist.family !== 'Bernoulli') throw new Error('expected a Bernoulli observation');
const logitsExpr = observe.dist.params[0]!;
const nm = ir.neural![0]!;

interface Row {
  n: number;
  titansBit: number;
  titansExact: number;
  titansWriteMs: number;
  titansReadMs: number;
  attnBit: number;
  attnExact: number;
  attnMs: number;
}
const rows: Row[] = [];
const B = 32;
for (const n of ns) {
  const r = recallBinding(ir, dataFor(n));
  const gen = recallEpisodes({ keyBits: r.keyBits, valueBits: r.valueBits, pairs: n, seed, stream: 'test' });
  let bits = 0;
  let exact = 0;
  let aBits = 0;
  let aExact = 0;
  let writeMs = 0;
  let readMs = 0;
  let attnMs = 0;
  let done = 0;
  while (done < queries) {
    const bn = Math.min(B, queries - done);
    const ep = gen.next(bn);
    const raw = recallInputs(r, ep);
    const { pred, w, rd } = tf.tidy(() => {
      const env = trainer.model.inputs(raw);
      const ctx: EvalContext = { env, applyNet: trainer.model.applyNet, cache: new Map(), letKeys: new Map() };
      const tw = performance.now();
      const st = writtenMemory(nm, ctx);
      st.state.mem.w[0]!.dataSync();
      const tr = performance.now();
      for (const s of ir.model) if (s.stmt === 'let') ctx.env.set(s.name, evaluate(s.value, ctx));
      const logits = evaluate(logitsExpr, ctx);
      const p = logits.t.dataSync();
      return { pred: Float32Array.from(p), w: tr - tw, rd: performance.now() - tr };
    });
    writeMs += w;
    readMs += rd;
    // Soft attention over the same stream: keys and values as -1 / +1.
    const ta = performance.now();
    const attn = tf.tidy(() => {
      const E = r.keyBits + r.valueBits;
      const pairs = tf.sub(tf.mul(tf.tensor3d(ep.pairs, [bn, n, E]), 2), 1);
      const k = tf.slice(pairs, [0, 0, 0], [bn, n, r.keyBits]);
      const v = tf.slice(pairs, [0, 0, r.keyBits], [bn, n, r.valueBits]);
      const q = tf.sub(tf.mul(tf.tensor3d(ep.keys, [bn, 1, r.keyBits]), 2), 1);
      const wts = tf.softmax(tf.mul(tf.matMul(q, k, false, true), beta)); // [bn, 1, n]
      return tf.matMul(wts, v).dataSync(); // [bn, 1, V]
    });
    attnMs += performance.now() - ta;
    for (let b = 0; b < bn; b++) {
      let ok = 0;
      let aok = 0;
      for (let j = 0; j < r.valueBits; j++) {
        const target = ep.values[b * r.valueBits + j]! > 0.5;
        if (pred[b * r.valueBits + j]! > 0 === target) ok++;
        if (attn[b * r.valueBits + j]! > 0 === target) aok++;
      }
      bits += ok;
      aBits += aok;
      if (ok === r.valueBits) exact++;
      if (aok === r.valueBits) aExact++;
    }
    done += bn;
  }
  const row: Row = {
    n,
    titansBit: bits / (queries * r.valueBits),
    titansExact: exact / queries,
    titansWriteMs: writeMs / queries,
    titansReadMs: readMs / queries,
    attnBit: aBits / (queries * r.valueBits),
    attnExact: aExact / queries,
    attnMs: attnMs / queries,
  };
  rows.push(row);
  process.stderr.write(`N=${n}: ${JSON.stringify(row)}\n`);
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number) => x.toFixed(3);
const cmd = `node bin/run-ts.mjs bench/titans_recall.ts --steps ${steps} --train-n ${trainN} --ns ${ns.join(',')} --queries ${queries} --beta ${beta} --seed ${seed}`;
const md = [
  '# Associative recall: Titans neural memory vs soft attention',
  '',
  `Command: \`${cmd}\``,
  '',
  `Model: \`models/titans_recall.vmm\` (K = ${ir.consts['K']} key bits, V = ${ir.consts['V']} value bits, memory net mlp(${nm.widths.join(', ')}), ` +
    `chunk ${nm.chunk}, inner lr ${nm.lr}), trained ${steps} steps on episodes of ${trainN} pairs ` +
    `(batch ${ir.train.batch}, ${ir.train.optimizer.kind}(lr: ${ir.train.optimizer.lr}); ${trainSeconds.toFixed(0)} s; final training bound ${last.toFixed(3)} nats, chance ${(-(ir.consts['V'] ?? 8) * Math.log(2)).toFixed(3)}).`,
  `Test: ${queries} fresh episodes per N (seeded test stream), one query of a stored key each. Backend: ${backend.name ?? tf.getBackend()}.`,
  `Soft attention: \`softmax(${beta} q . k_i)\` over the N stored keys (bits as -1 / +1), values averaged with those weights; no learned parameters.`,
  '',
  '"bits": fraction of value bits recalled; "exact": fraction of queries with all value bits right (chance: 50% and ' +
    `${pct(2 ** -(ir.consts['V'] ?? 8))}). Titans' write is paid once per episode (N items); its read costs one forward pass whatever N.`,
  '',
  '| N | Titans bits | Titans exact | Titans write ms / episode | Titans read ms / query | attention bits | attention exact | attention ms / query |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.n} | ${pct(r.titansBit)} | ${pct(r.titansExact)} | ${ms(r.titansWriteMs)} | ${ms(r.titansReadMs)} | ${pct(r.attnBit)} | ${pct(r.attnExact)} | ${ms(r.attnMs)} |`),
  '',
  'Timings are per query from batches of up to 32 episodes (write: the batch\'s write time divided by its episodes), wall clock on a 2-core machine shared with other jobs: indicative only.',
  '',
].join('\n');
writeFileSync(out, md);
process.stderr.write(`wrote ${out}\n`);
trainer.dispose();
