/**
 * Associative recall against the stream length N (Titans, Behrouz et al. 2025, arXiv:2501.00663,
 * the needle-in-a-haystack task in miniature), trained at length with a curriculum.
 *
 * `train` trains one memory model (models/titans_recall.vmm: the Titans MLP memory with momentum
 * and forgetting; models/titans_recall_delta.vmm: a linear memory with neither, the delta rule) on
 * episodes of N pairs, N growing stage by stage (`--stages 16:400,64:300,256:150,1024:40`: N and
 * the stage's step budget). Every `--check-every` steps it measures recall on fixed validation
 * episodes of the stage's N; a stage ends at its step budget, at its minutes budget, when recall
 * reaches `--target` bits, or when it has not improved by 0.5 points over the last `--patience`
 * checks (a plateau). After every check the run folder gets the checkpoint and progress.json (stage,
 * step, the data stream's state, the history), so a killed run resumes where it stopped.
 *
 * `report` evaluates trained runs at N = 16 ... 16,384 (beyond training) beside soft attention
 * over the same stream (`softmax(beta q . k_i)`-weighted values, keys and values as -1 / +1 bits,
 * no learned parameters; its cost per query grows with N): each episode is written once and
 * `--queries` of its stored keys are read. Writes bench/results/titans_recall.md and an SVG figure.
 *
 *   node bin/run-ts.mjs bench/titans_recall.ts train --model models/titans_recall.vmm --run runs/titans_recall/titans
 *     [--stages 16:400,64:300,256:150,1024:40] [--minutes 8] [--check-every 25] [--target 0.995] [--patience 3] [--pairs 8192] [--seed 1]
 *   node bin/run-ts.mjs bench/titans_recall.ts report --run runs/titans_recall/titans --run runs/titans_recall/delta
 *     [--ns 16,64,256,1024,4096,16384] [--episodes 4] [--eval-pairs 8192] [--queries 64] [--beta 2] [--out bench/results/titans_recall.md]
 *
 * The read convention of both models: `r = nm(kproj(key))`, `observe x ~ Bernoulli(logits: dec(r))`.
 * Timings are wall-clock on whatever backend `selectBackend` picks, on a shared machine.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { frontEnd } from '../src/check/pipeline.ts';
import { recallEpisodes, type RecallBatch } from '../src/data/synthetic_recall.ts';
import type { IrNeural, IrProgram } from '../src/ir/types.ts';
import { readMemory, writtenMemory } from '../src/lower/neural_memory.ts';
import { selectBackend } from '../src/runtime/backend.ts';
import { type DataOptions } from '../src/data/bind.ts';
import { trainStream } from '../src/data/source.ts';
import { recallBinding, recallInputs } from '../src/data/sets/recall.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { Rng } from '../src/random/rng.ts';
import { loadCheckpoint, saveCheckpoint, checkpointFile } from '../src/runtime/checkpoint.ts';

const ROOT = join(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const command = argv[0];
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const args = (name: string) => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1]!] : []));
const seed = Number(arg('seed', '1'));

const backend = await selectBackend({});

function load(modelPath: string): IrProgram {
  const fe = frontEnd(readFileSync(modelPath, 'utf8'));
  if (!fe.ir) throw new Error(`${modelPath}: ${fe.diagnostics.map((d) => d.message).join('; ')}`);
  if (!fe.ir.neural?.length) throw new Error(`${modelPath}: no neural memory`);
  return fe.ir;
}
const dataFor = (n: number): DataOptions => ({ dataset: 'recall', seed, classes: n, shots: 1, distractors: 0 });

/**
 * Training batch at N pairs: at most `--pairs` pairs a batch (default 8,192: 16 episodes up to
 * N = 512, fewer beyond), since the backward pass keeps every chunk's memory state and the wasm
 * heap holds 4 GB; a wider memory needs fewer (titans_recall.vmm's 2048 x 256 MLP: --pairs 2048).
 */
const pairsPerBatch = Number(arg('pairs', '8192'));
const batchFor = (n: number, dflt: number) => Math.max(2, Math.min(dflt, Math.floor(pairsPerBatch / n)));

// ---------------------------------------------------------------- recall of many queries per episode

interface Recall {
  bits: number;
  exact: number;
  /** ms: writing the episodes, reading the queries, soft attention over the same queries. */
  writeMs: number;
  readMs: number;
  attnMs: number;
  attnBits: number;
  attnExact: number;
  queries: number;
  items: number;
}

/**
 * Writes `episodes` episodes of N pairs (in batches) and reads `queries` stored keys of each (the
 * first `queries` pairs of a random permutation): recall of the model and, when `beta` is given, of
 * soft attention over the same stream.
 */
function recall(trainer: Trainer, ir: IrProgram, n: number, episodes: number, queries: number, stream: string, beta?: number): Recall {
  const r = recallBinding(ir, dataFor(n));
  const nm: IrNeural = ir.neural![0]!;
  const gen = recallEpisodes({ keyBits: r.keyBits, valueBits: r.valueBits, pairs: n, seed, stream });
  const pick = new Rng(seed, `recall-queries-${stream}`);
  const B0 = Math.max(1, Math.min(episodes, Math.floor(32768 / n)));
  const Q = Math.min(queries, n);
  const out: Recall = { bits: 0, exact: 0, writeMs: 0, readMs: 0, attnMs: 0, attnBits: 0, attnExact: 0, queries: 0, items: 0 };
  const E = r.keyBits + r.valueBits;
  let done = 0;
  while (done < episodes) {
    const B = Math.min(B0, episodes - done);
    const ep: RecallBatch = gen.next(B);
    // Queries: Q stored pairs of each episode, laid out as entries with the value bits zeroed.
    const qIdx: number[] = [];
    for (let b = 0; b < B; b++) qIdx.push(...pick.sample(n, Q));
    const qData = new Float32Array(B * Q * E);
    const targets = new Uint8Array(B * Q * r.valueBits);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Q; i++) {
        const at = (b * n + qIdx[b * Q + i]!) * E;
        for (let j = 0; j < r.keyBits; j++) qData[(b * Q + i) * E + j] = 2 * ep.pairs[at + j]! - 1;
        for (let j = 0; j < r.valueBits; j++) targets[(b * Q + i) * r.valueBits + j] = ep.pairs[at + r.keyBits + j]!;
      }
    }
    const raw = recallInputs(r, ep);
    const { pred, w, rd } = tf.tidy(() => {
      const env = trainer.model.inputs(raw);
      const ctx = { env, applyNet: trainer.model.applyNet, cache: {} };
      const tw = performance.now();
      const st = writtenMemory(nm, ctx);
      st.state.mem.w[0]!.dataSync();
      const tr = performance.now();
      const q = tf.tensor2d(qData, [B * Q, E]);
      const k = tf.reshape(trainer.model.applyNet('kproj', q), [B, Q, -1]);
      const m = readMemory(st.state.mem, k, nm.activation);
      const logits = trainer.model.applyNet('dec', tf.reshape(m, [B * Q, -1]));
      const p = Float32Array.from(logits.dataSync());
      return { pred: p, w: tr - tw, rd: performance.now() - tr };
    });
    out.writeMs += w;
    out.readMs += rd;
    let attn: Float32Array | undefined;
    if (beta !== undefined) {
      const ta = performance.now();
      attn = tf.tidy(() => {
        const pairs = tf.sub(tf.mul(tf.tensor3d(ep.pairs, [B, n, E]), 2), 1);
        const k = tf.slice(pairs, [0, 0, 0], [B, n, r.keyBits]);
        const v = tf.slice(pairs, [0, 0, r.keyBits], [B, n, r.valueBits]);
        const q = tf.slice(tf.tensor3d(qData, [B, Q, E]), [0, 0, 0], [B, Q, r.keyBits]);
        const wts = tf.softmax(tf.mul(tf.matMul(q, k, false, true), beta)); // [B, Q, n]
        return Float32Array.from(tf.matMul(wts, v).dataSync()); // [B, Q, V]
      });
      out.attnMs += performance.now() - ta;
    }
    for (let i = 0; i < B * Q; i++) {
      let ok = 0;
      let aok = 0;
      for (let j = 0; j < r.valueBits; j++) {
        const t = targets[i * r.valueBits + j]! > 0;
        if (pred[i * r.valueBits + j]! > 0 === t) ok++;
        if (attn && attn[i * r.valueBits + j]! > 0 === t) aok++;
      }
      out.bits += ok / r.valueBits;
      out.attnBits += aok / r.valueBits;
      if (ok === r.valueBits) out.exact++;
      if (aok === r.valueBits) out.attnExact++;
    }
    out.queries += B * Q;
    out.items += B * n;
    done += B;
  }
  return out;
}

// ---------------------------------------------------------------- train

interface StageRecord {
  n: number;
  steps: number;
  seconds: number;
  recall: number;
  ended: string;
}
interface Progress {
  model: string;
  stages: [number, number][];
  stage: number;
  stepInStage: number;
  secondsInStage: number;
  totalSteps: number;
  totalSeconds: number;
  best: number;
  checks: number[];
  stream?: unknown;
  history: { stage: number; n: number; step: number; totalSteps: number; seconds: number; bound: number; recall: number }[];
  done: StageRecord[];
}

async function train(): Promise<void> {
  const modelPath = arg('model', join(ROOT, 'models', 'titans_recall.vmm'));
  const run = arg('run', join(ROOT, 'runs', 'titans_recall', 'titans'));
  const stages = arg('stages', '16:400,64:300,256:150,1024:40')
    .split(',')
    .map((s) => s.split(':').map(Number) as [number, number]);
  const minutes = Number(arg('minutes', '8'));
  const checkEvery = Number(arg('check-every', '25'));
  const target = Number(arg('target', '0.995'));
  const patience = Number(arg('patience', '3'));
  const ir = load(modelPath);
  mkdirSync(run, { recursive: true });
  const trainer = new Trainer(ir, seed);
  const progressFile = join(run, 'progress.json');
  let p: Progress = {
    model: relative(ROOT, modelPath),
    stages,
    stage: 0,
    stepInStage: 0,
    secondsInStage: 0,
    totalSteps: 0,
    totalSeconds: 0,
    best: 0,
    checks: [],
    history: [],
    done: [],
  };
  if (existsSync(progressFile) && existsSync(checkpointFile(run))) {
    p = JSON.parse(readFileSync(progressFile, 'utf8')) as Progress;
    p.stages = stages; // the budgets may be changed on resuming
    loadCheckpoint(run, trainer.model.variables, trainer.optimizer);
    trainer.stepCount = p.totalSteps;
    process.stderr.write(`resumed ${run}: stage ${p.stage} (N = ${stages[p.stage]?.[0]}), step ${p.stepInStage}\n`);
  }
  const save = async () => {
    await saveCheckpoint(run, trainer.model.variables, trainer.optimizer, { model: p.model }, { step: p.totalSteps });
    writeFileSync(progressFile, JSON.stringify(p, null, 1));
  };
  while (p.stage < stages.length) {
    const [n, budget] = stages[p.stage]!;
    const B = batchFor(n, ir.train.batch);
    const stream = trainStream(ir, dataFor(n));
    if (p.stream !== undefined && p.stepInStage > 0) stream.setState(p.stream as never);
    let ended = '';
    let t0 = performance.now();
    let last = NaN;
    while (!ended) {
      last = trainer.step(stream.next(B)).bound;
      p.stepInStage++;
      p.totalSteps++;
      const now = performance.now();
      p.secondsInStage += (now - t0) / 1000;
      p.totalSeconds += (now - t0) / 1000;
      t0 = now;
      if (p.stepInStage % checkEvery === 0 || p.stepInStage >= budget || p.secondsInStage > minutes * 60) {
        const rc = recall(trainer, ir, n, Math.max(2, Math.min(16, Math.floor(4096 / n))), 32, 'valid');
        const v = rc.bits / rc.queries;
        t0 = performance.now(); // the check is not training time
        p.checks.push(v);
        p.history.push({ stage: p.stage, n, step: p.stepInStage, totalSteps: p.totalSteps, seconds: Math.round(p.totalSeconds), bound: last, recall: v });
        process.stderr.write(`N=${n} step ${p.stepInStage}/${budget} (${p.secondsInStage.toFixed(0)} s, batch ${B}): bound ${last.toFixed(3)}, recall ${(100 * v).toFixed(1)}% of bits\n`);
        const prevBest = p.checks.length > patience ? Math.max(...p.checks.slice(0, -patience)) : -1;
        const recent = Math.max(...p.checks.slice(-patience));
        if (v >= target) ended = `recall ${(100 * v).toFixed(1)}% >= target`;
        else if (p.stepInStage >= budget) ended = 'step budget';
        else if (p.secondsInStage > minutes * 60) ended = 'minutes budget';
        else if (prevBest >= 0 && recent < prevBest + 0.005) ended = `plateau (no gain of 0.5 points in ${patience} checks)`;
        if (ended) {
          p.done.push({ n, steps: p.stepInStage, seconds: Math.round(p.secondsInStage), recall: v, ended });
          p.stage++;
          p.stepInStage = 0;
          p.secondsInStage = 0;
          p.checks = [];
          delete p.stream;
        } else p.stream = stream.state();
        await save();
      }
    }
  }
  process.stderr.write(`done: ${p.totalSteps} steps, ${p.totalSeconds.toFixed(0)} s\n`);
  trainer.dispose();
}

// ---------------------------------------------------------------- report

async function report(): Promise<void> {
  const runs = args('run');
  const ns = arg('ns', '16,64,256,1024,4096,16384').split(',').map(Number);
  const episodes = Number(arg('episodes', '4'));
  // At most this many pairs written per N (episodes x N), so the long streams stay affordable:
  // --episodes 8 --eval-pairs 8192 writes 8 episodes up to N = 1,024, 2 at 4,096, 1 at 16,384.
  const evalPairs = Number(arg('eval-pairs', 'Infinity'));
  const episodesAt = (n: number) => Math.max(1, Math.min(episodes, Math.floor(evalPairs / n)));
  const queries = Number(arg('queries', '64'));
  const beta = Number(arg('beta', '2'));
  const out = arg('out', join(ROOT, 'bench', 'results', 'titans_recall.md'));
  interface Col {
    name: string;
    model: string;
    ir: IrProgram;
    progress: Progress;
    rows: Map<number, Recall>;
  }
  const cols: Col[] = [];
  for (const run of runs) {
    const progress = JSON.parse(readFileSync(join(run, 'progress.json'), 'utf8')) as Progress;
    const ir = load(join(ROOT, progress.model));
    const trainer = new Trainer(ir, seed);
    loadCheckpoint(run, trainer.model.variables);
    // A run's evaluation is kept in its folder (eval.json) and reused while the run and the
    // evaluation settings are the same, so a report over several runs can be made as each finishes.
    const key = JSON.stringify({ totalSteps: progress.totalSteps, episodes, queries, beta, seed, ...(Number.isFinite(evalPairs) ? { evalPairs } : {}) });
    const cacheFile = join(run, 'eval.json');
    const cache = existsSync(cacheFile) ? (JSON.parse(readFileSync(cacheFile, 'utf8')) as { key: string; rows: [number, Recall][] }) : undefined;
    const cached = new Map(cache?.key === key ? cache.rows : []);
    const rows = new Map<number, Recall>();
    for (const n of ns) {
      const rc = cached.get(n) ?? recall(trainer, ir, n, episodesAt(n), queries, 'test', beta);
      rows.set(n, rc);
      writeFileSync(cacheFile, JSON.stringify({ key, rows: [...new Map([...cached, ...rows])] }));
      process.stderr.write(`${ir.name} N=${n}: ${(100 * rc.bits / rc.queries).toFixed(1)}% bits, write ${(rc.writeMs / rc.items).toFixed(4)} ms/pair, read ${(rc.readMs / rc.queries).toFixed(4)} ms/query; attention ${(100 * rc.attnBits / rc.queries).toFixed(1)}%, ${(rc.attnMs / rc.queries).toFixed(4)} ms/query\n`);
    }
    cols.push({ name: ir.name, model: progress.model, ir, progress, rows });
    trainer.dispose();
  }
  if (!cols.length) throw new Error('report: give --run DIR (one or more)');
  const attn = cols[0]!.rows;

  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const f3 = (x: number) => (x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
  const cmdTrain = (c: Col) =>
    `node bin/run-ts.mjs bench/titans_recall.ts train --model ${c.model} --run ${relative(ROOT, runs[cols.indexOf(c)]!)} --stages ${c.progress.stages.map(([n, s]) => `${n}:${s}`).join(',')} --seed ${seed}`;
  const cmdReport = `node bin/run-ts.mjs bench/titans_recall.ts report ${runs.map((r) => `--run ${relative(ROOT, r)}`).join(' ')} --ns ${ns.join(',')} --episodes ${episodes}${Number.isFinite(evalPairs) ? ` --eval-pairs ${evalPairs}` : ''} --queries ${queries} --beta ${beta} --seed ${seed}`;
  const lines: string[] = [
    '# Associative recall at length: Titans neural memory, delta rule, soft attention',
    '',
    'Commands (training resumable: rerunning a `train` command continues from `progress.json` and the checkpoint in its run folder):',
    '',
    '```sh',
    ...cols.map(cmdTrain),
    cmdReport,
    '```',
    '',
    `Backend: ${backend.name}. Test: ${Number.isFinite(evalPairs) ? `${ns.map((n) => `${episodesAt(n)} at N = ${n}`).join(', ')} fresh episodes` : `${episodes} fresh episodes per N`} (seeded test stream), each written once, then ${queries} of its stored keys read (fewer when N < ${queries}); "bits": fraction of value bits recalled (chance 50%), "exact": fraction of queries with all value bits right.`,
    `Soft attention: \`softmax(${beta} q . k_i)\` over the N stored keys (bits as -1 / +1), values averaged with those weights; no learned parameters.`,
    '',
    '## Training (curriculum)',
    '',
    '| model | memory (written per episode) | stages: N, steps, seconds, recall at the stage\'s end, why it ended | steps | seconds |',
    '|---|---|---|---:|---:|',
    ...cols.map((c) => {
      const nm = c.ir.neural![0]!;
      const size = nm.widths.slice(1).reduce((a, w, l) => a + nm.widths[l]! * w, 0);
      const mem = `${nm.widths.length === 2 ? 'linear' : `mlp(${nm.widths.join(', ')}, ${nm.activation})`}, ${size.toLocaleString('en')} weights; chunk ${nm.chunk}, lr ${nm.lr}, momentum ${nm.momentum}, forget ${nm.forget ?? 1}${nm.writeBias === false ? ', bias not written' : ''}`;
      const st = c.progress.done.map((d) => `N=${d.n}: ${d.steps} steps, ${d.seconds} s, ${pct(d.recall)} (${d.ended})`).join('; ');
      return `| ${c.name} | ${mem} | ${st} | ${c.progress.totalSteps} | ${Math.round(c.progress.totalSeconds)} |`;
    }),
    '',
    '## Recall and time against N',
    '',
    `| N | ${cols.map((c) => `${c.name} bits | ${c.name} exact`).join(' | ')} | attention bits | attention exact |`,
    `|---:|${cols.map(() => '---:|---:').join('|')}|---:|---:|`,
    ...ns.map((n) => {
      const a = attn.get(n)!;
      return `| ${n} | ${cols.map((c) => { const r = c.rows.get(n)!; return `${pct(r.bits / r.queries)} | ${pct(r.exact / r.queries)}`; }).join(' | ')} | ${pct(a.attnBits / a.queries)} | ${pct(a.attnExact / a.queries)} |`;
    }),
    '',
    `| N | ${cols.map((c) => `${c.name} read ms / query | ${c.name} write ms / pair`).join(' | ')} | attention ms / query |`,
    `|---:|${cols.map(() => '---:|---:').join('|')}|---:|`,
    ...ns.map((n) => {
      const a = attn.get(n)!;
      return `| ${n} | ${cols.map((c) => { const r = c.rows.get(n)!; return `${f3(r.readMs / r.queries)} | ${f3(r.writeMs / r.items)}`; }).join(' | ')} | ${f3(a.attnMs / a.queries)} |`;
    }),
    '',
    'Read: the key net, the memory\'s forward pass and the decoder for all queries of a batch of episodes, divided by the queries. Write: the batch\'s write divided by its pairs (paid once per pair, however many queries follow). Attention: one batched softmax over the N keys for the same queries. Wall clock on a 2-core machine shared with other jobs: indicative only.',
    '',
    '![recall and time per query against N](figures/titans_recall.svg)',
    '',
  ];
  writeFileSync(out, lines.join('\n'));
  // The figure beside the report (its markdown links figures/titans_recall.svg).
  const svgPath = join(dirname(out), 'figures', 'titans_recall.svg');
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(
    svgPath,
    svg(
      ns,
      [...cols.map((c) => ({ name: c.name, bits: ns.map((n) => c.rows.get(n)!.bits / c.rows.get(n)!.queries), ms: ns.map((n) => c.rows.get(n)!.readMs / c.rows.get(n)!.queries) })), { name: 'soft attention', bits: ns.map((n) => attn.get(n)!.attnBits / attn.get(n)!.queries), ms: ns.map((n) => attn.get(n)!.attnMs / attn.get(n)!.queries) }],
    ),
  );
  process.stderr.write(`wrote ${out} and ${svgPath}\n`);
}

/** Two panels, log2 N on x: recall (% bits) and time per query (ms, log scale). */
function svg(ns: number[], series: { name: string; bits: number[]; ms: number[] }[]): string {
  const W = 360;
  const H = 240;
  const m = { l: 50, r: 10, t: 24, b: 36 };
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const lx = ns.map((n) => Math.log2(n));
  const x = (v: number) => m.l + ((v - lx[0]!) / (lx[lx.length - 1]! - lx[0]! || 1)) * (W - m.l - m.r);
  const panel = (ox: number, title: string, ys: number[][], lo: number, hi: number, log: boolean, fmt: (v: number) => string) => {
    const tr = (v: number) => (log ? Math.log10(Math.max(v, 1e-6)) : v);
    const y = (v: number) => m.t + (1 - (tr(v) - tr(lo)) / (tr(hi) - tr(lo))) * (H - m.t - m.b);
    const parts: string[] = [`<g transform="translate(${ox},0)">`, `<text x="${W / 2}" y="14" text-anchor="middle" font-size="12">${title}</text>`];
    parts.push(`<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#000"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#000"/>`);
    for (const [i, n] of ns.entries()) parts.push(`<text x="${x(lx[i]!)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${n}</text>`);
    parts.push(`<text x="${W / 2}" y="${H - 4}" text-anchor="middle" font-size="11">N (pairs written)</text>`);
    const ticks = log ? Array.from({ length: Math.round(Math.log10(hi) - Math.log10(lo)) + 1 }, (_, i) => lo * 10 ** i) : [0.5, 0.6, 0.7, 0.8, 0.9, 1];
    for (const t of ticks) parts.push(`<text x="${m.l - 4}" y="${y(t) + 3}" text-anchor="end" font-size="10">${fmt(t)}</text><line x1="${m.l}" y1="${y(t)}" x2="${W - m.r}" y2="${y(t)}" stroke="#ddd"/>`);
    ys.forEach((s, k) => {
      parts.push(`<polyline fill="none" stroke="${colors[k % colors.length]}" stroke-width="2" points="${s.map((v, i) => `${x(lx[i]!).toFixed(1)},${y(Math.min(hi, Math.max(lo, v))).toFixed(1)}`).join(' ')}"/>`);
    });
    parts.push('</g>');
    return parts.join('\n');
  };
  const allMs = series.flatMap((s) => s.ms).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...allMs)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...allMs)));
  const legend = series.map((s, k) => `<rect x="${20 + k * 170}" y="${H + 6}" width="12" height="4" fill="${colors[k % colors.length]}"/><text x="${36 + k * 170}" y="${H + 12}" font-size="11">${s.name}</text>`).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 20}" font-family="sans-serif">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    panel(0, 'recall (fraction of value bits)', series.map((s) => s.bits), 0.5, 1, false, (v) => `${Math.round(100 * v)}%`),
    panel(W, 'read time per query (ms, log)', series.map((s) => s.ms), lo, hi, true, (v) => `${v}`),
    legend,
    '</svg>',
    '',
  ].join('\n');
}

if (command === 'train') await train();
else if (command === 'report') await report();
else {
  process.stderr.write('usage: bench/titans_recall.ts train|report [options] (see the header)\n');
  process.exit(2);
}
