/**
 * `vmm eval RUN`: the figures of the VMA paper (Bornschein et al. 2017) for a trained run.
 *
 * - Test NLL: -log p(x | memory) estimated with K importance samples (default 1000; the hard
 *   importance-sampled bound log (1/K) sum_k w_k, whatever estimator trained the model), as mean
 *   and standard error over test episodes, for a grid of classes in memory C and memory sizes M.
 *   Paired across M: for each C every test episode is drawn once, at the largest M, and the
 *   smaller memories are nested in it (the M = 1 memory inside the M = 2 one, ...) with the same
 *   target, so the NLL difference between two memory sizes is a per-episode difference; the
 *   report gives each M's mean NLL and the paired difference to the smallest M of its row (M = 1
 *   for C = 1; M = C otherwise) with its standard error. `C` is the number of classes in memory:
 *   the memory's entries take the C classes in turn (entry j has class j mod C in a fixed random
 *   order of the classes, one of them the target's), so when M is not a multiple of C the first
 *   M mod C classes have one shot more than the others (floor(M/C) or ceil(M/C) shots each, no
 *   entries of other classes); M < C is not evaluated.
 * - Few-shot accuracy: n-way 1-shot classification by argmax_i q(a = i | x), correct when the
 *   chosen entry has the target's class.
 * - KL(q(a|x) || p(a)) against its ceiling log M: how much the model uses its memory.
 * - The same at test memory sizes far beyond training (large memories of unseen characters).
 * Soft-attention runs report their own bound (attention weights from q(a|x)) and say so.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readsSoft } from '../ir/addressing.ts';
import { SingleBar } from 'cli-progress';
import { EpisodeSampler, sharedMemoryEpisode, type EpisodeBatch } from '../data/episodes.ts';
import type { LabelledImageSet } from '../data/types.ts';
import { Rng, type RngState } from '../random/rng.ts';
import { CompiledModel } from '../lower/compile.ts';
import { makeEstimator } from '../estimators/registry.ts';
import { addressPosterior, describeBound, importanceBoundAsync } from '../lower/objective.ts';
import { lineChart } from '../report/svg.ts';
import { writeSvgAndPng } from '../report/raster.ts';
import { markdownTable } from '../report/markdown.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { RunError } from '../diagnostics/errors.ts';
import { bindInputs, episodeInputs, type DataOptions, type RawBatch } from '../data/bind.ts';
import { loadImageSet, testBatches } from '../data/source.ts';
import { memoryFileHash } from '../data/shared_memory.ts';
import { loadCheckpoint } from '../runtime/checkpoint.ts';
import { hasCheckpointFile, irOfRun, RunDir } from './run_dir.ts';
import type { IrProgram, IrSite } from '../ir/types.ts';
import { resolveSize } from '../lower/trace.ts';
import { loadOmniglot } from '../data/omniglot.ts';
import { lakeRuns } from './lake_runs.ts';

/** The default evaluation seed: one seed draws the same targets and memories for every run (paired comparisons). */
export const EVAL_SEED = 12345;

export interface EvalOptions {
  data?: string;
  /**
   * One memory file every test target addresses (src/data/shared_memory.ts), instead of
   * few-shot episodes; a run trained with `--memory` is evaluated against its own by default.
   */
  memory?: string;
  samples: number;
  episodes: number;
  memorySizes: string;
  classesList: string;
  ways: string;
  large: string;
  /** Targets per large shared memory (default 100). */
  largeTargets?: number;
  /** Lake's 20 within-alphabet 20-way one-shot runs (Omniglot only; src/jobs/lake_runs.ts). */
  lake?: boolean;
  seed: number;
  /** Print progress lines. */
  quiet?: boolean;
  /** Where the report goes (default: RUN/eval), e.g. for a run folder that should stay as it is. */
  out?: string;
  /**
   * Stops the evaluation between batches (Ctrl-C in `vmm eval`): it rejects with an
   * {@link EvalInterrupted}; the same call again continues from the partial results it kept.
   */
  signal?: AbortSignal;
  /** Called after every batch, with the ETA (instead of the progress bar or lines). */
  onProgress?: (p: EvalProgress) => void;
  /** The options came from `--quick` (recorded in the report). */
  quick?: boolean;
}

export interface NllCell {
  classes: number;
  memory: number;
  nll: number;
  se: number;
  /**
   * Per-target NLLs in evaluation order: the same seed draws the same targets and memories for
   * every run, so two runs' values pair (the comparison across memory kinds uses them).
   */
  values?: number[];
  /** Paired difference NLL(M) - NLL(`vs`) over the same targets and nested memories; `vs` = the row's smallest M. */
  diff?: { vs: number; mean: number; se: number };
  kl?: number;
  /** Standard error of `kl` over the episodes. */
  klSe?: number;
  logM?: number;
  accuracy?: number;
  /** Standard error of `accuracy` over the episodes. */
  accuracySe?: number;
  episodes: number;
}

export interface EvalResult {
  model: string;
  estimator: string;
  soft: boolean;
  /** What every NLL of the result bounds (src/lower/objective.ts `describeBound`). */
  bound?: string;
  /** The no-memory control (`--addressing none`). */
  control?: boolean;
  samples: number;
  /** Test episodes per configuration and the evaluation seed (same seed: same targets and memories). */
  episodes?: number;
  seed?: number;
  /** Trainable numbers of the model (every net and param). */
  parameters: number;
  nll: NllCell[];
  ways: { ways: number; accuracy: number; se: number; episodes: number }[];
  large: { memory: number; classes: number; shots: number; accuracy: number; se?: number; kl: number; logM: number; episodes: number }[];
  /** Lake's one-shot runs: accuracy over the 400 trials, standard error over trials. */
  lake?: { accuracy: number; se: number; runs: number; trials: number };
  plainNll?: { nll: number; se: number; examples: number };
  /** The memory file the test targets addressed, when it was one shared memory. */
  sharedMemory?: { path: string; entries: number };
  /** Made with `--quick` (fewer episodes and samples than the full protocol). */
  quick?: boolean;
}

function parseList(s: string, flag: string): number[] {
  if (s.trim() === '') return [];
  return s.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n <= 0) throw new RunError(`${flag}: '${p}' is not a positive integer`);
    return n;
  });
}

export function meanSe(xs: number[]): { mean: number; se: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, se: Math.sqrt(v / n) };
}

/** Loads a trained model from a run directory (final weights, else the latest checkpoint). */
export function loadTrained(runPath: string): { dir: RunDir; ir: IrProgram; model: CompiledModel; config: ReturnType<typeof RunDir.open>['config']; weights: string } {
  const { dir, config } = RunDir.open(runPath);
  const ir = irOfRun(config);
  const model = new CompiledModel(ir, config.seed, { baseline: makeEstimator(ir.train.estimator).needsBaselineNet });
  let loaded: string | undefined;
  let failure: unknown;
  for (const p of [dir.finalPath, dir.checkpointPath]) {
    if (!hasCheckpointFile(p)) continue;
    try {
      loadCheckpoint(p, model.variables, undefined);
      loaded = p;
      break;
    } catch (e) {
      // Try the next one; if none loads, the first failure says why.
      failure ??= e;
    }
  }
  if (!loaded) {
    model.dispose();
    if (failure) throw failure;
    throw new RunError(`${runPath} has no weights yet (no checkpoint in final/ or checkpoint/): it never reached its first checkpoint`);
  }
  return { dir, ir, model, config, weights: loaded };
}

/** Per-example: NLL, KL(q(a|x)||p(a)) and whether argmax q(a|x) hits the target's class. */
export async function evalBatch(
  ir: IrProgram,
  model: CompiledModel,
  raw: RawBatch,
  samples: number,
  rng: Rng,
  soft: boolean,
): Promise<{ nll: Float32Array; kl?: Float32Array; hit?: Uint8Array; entries?: number }> {
  // Asynchronous reads: any backend, webgpu included (src/kernels/readback.ts).
  const inputs = () => model.inputs(raw);
  const bound = await importanceBoundAsync(ir, inputs, model.applyNet, { k: samples, chunk: Math.min(samples, 100), rng, reads: soft ? 'soft' : 'sample' });
  const nll = bound.map((v) => -v);
  if (!raw.episode || !ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) return { nll };
  const readsMemory = addressesMemory(ir);
  const probs = tf.tidy(() => addressPosterior(ir, inputs(), model.applyNet, rng));
  const p = (await probs.array()) as number[][];
  probs.dispose();
  const ep = raw.episode;
  const offset = memoryRowOffset(ir, ep.memorySize);
  const kl = new Float32Array(ep.batch);
  const hit = new Uint8Array(ep.batch);
  for (let b = 0; b < ep.batch; b++) {
    const row = p[b]!;
    const m = row.length;
    let best = 0;
    let h = 0;
    for (let i = 0; i < m; i++) {
      if (row[i]! > row[best]!) best = i;
      if (row[i]! > 0) h -= row[i]! * Math.log(row[i]!);
    }
    kl[b] = Math.log(m) - h; // KL(q || uniform)
    // Rows of the table that are not the episode's memory (learned dummy entries, before or after
    // it) never count as a hit; the lowering says where the memory's rows start.
    const row_ = best - offset;
    hit[b] = row_ >= 0 && row_ < ep.memorySize && ep.matchMask[b * ep.memorySize + row_] === 1 ? 1 : 0;
  }
  // An address over latent slots (VSM) picks slots, not the episode's entries: no few-shot hits.
  return { nll, kl, ...(readsMemory ? { hit } : {}), entries: p[0]?.length ?? 0 };
}

/**
 * For each episode of `e`, its memory slots in round-robin class order: the C classes in the
 * order they first appear in the (randomly permuted) memory, then slot j of the result holds
 * class j mod C, shot floor(j / C). A prefix of length M >= C thus holds every class, with
 * floor(M/C) or ceil(M/C) shots each. Episodes must have no distractors. Returns [B, M] slots.
 */
export function roundRobinOrder(e: EpisodeBatch, C: number): Int32Array {
  const M = e.memorySize;
  const order = new Int32Array(e.batch * M);
  for (let b = 0; b < e.batch; b++) {
    const byClass = new Map<number, number[]>();
    for (let m = 0; m < M; m++) {
      const c = e.memoryClass[b * M + m]!;
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(m);
    }
    const lists = [...byClass.values()];
    if (lists.length !== C || lists.some((l) => l.length !== lists[0]!.length)) {
      throw new Error(`roundRobinOrder: episode ${b} does not hold ${C} classes with equal shots`);
    }
    for (let j = 0; j < M; j++) order[b * M + j] = lists[j % C]![Math.floor(j / C)]!;
  }
  return order;
}

/** The episode batch `e` with each memory cut to the slots `order[b, 0..M)` (same targets, same pixels). */
export function nestedEpisode(e: EpisodeBatch, order: Int32Array, M: number): EpisodeBatch {
  const full = e.memorySize;
  if (M > full) throw new Error(`nestedEpisode: memory of ${M} from an episode of ${full}`);
  const D = e.pixels;
  const memory = new Float32Array(e.batch * M * D);
  const memoryClass = new Int32Array(e.batch * M);
  const memoryIndex = new Int32Array(e.batch * M);
  const matchMask = new Uint8Array(e.batch * M);
  const matches: number[][] = [];
  for (let b = 0; b < e.batch; b++) {
    const mine: number[] = [];
    for (let j = 0; j < M; j++) {
      const src = order[b * full + j]!;
      memory.set(e.memory.subarray((b * full + src) * D, (b * full + src + 1) * D), (b * M + j) * D);
      memoryClass[b * M + j] = e.memoryClass[b * full + src]!;
      memoryIndex[b * M + j] = e.memoryIndex[b * full + src]!;
      if (memoryClass[b * M + j] === e.targetClass[b]) {
        matchMask[b * M + j] = 1;
        mine.push(j);
      }
    }
    matches.push(mine);
  }
  // `matches` is [B, S] with S the fewest matching slots of any episode (ragged otherwise).
  const S = Math.min(...matches.map((l) => l.length));
  const flat = new Int32Array(e.batch * S);
  matches.forEach((l, b) => flat.set(l.slice(0, S), b * S));
  return { ...e, memorySize: M, shots: S, memory, memoryClass, memoryIndex, matchMask, matches: flat };
}

/** An evaluation stopped by its AbortSignal (Ctrl-C): what was done is kept in `partial`. */
export class EvalInterrupted extends Error {
  constructor(
    readonly partial: string,
    readonly done: number,
    readonly total: number,
  ) {
    super(`evaluation interrupted at ${Math.floor((100 * done) / total)}%; the finished part is kept in ${partial}: run the same command again to continue`);
    this.name = 'EvalInterrupted';
  }
}

/** The work of an evaluation, in units of (examples x importance samples), for progress and its ETA. */
export interface EvalProgress {
  done: number;
  total: number;
  /** What is being evaluated now, e.g. "C=2 M=10". */
  stage: string;
  /** Seconds left at the rate so far (undefined before the first unit of this invocation). */
  etaSeconds?: number;
}

/**
 * Partial results on disk (`<out>/partial.json`), written after every batch of episodes: what is
 * done of each part, the random state after it, and a key of everything that determines the
 * results (options, weights), so a resumed evaluation gives exactly the figures of an
 * uninterrupted one, and an evaluation with other options or weights starts afresh.
 */
interface PartialEval {
  key: string;
  rng: RngState;
  done: number;
  /** Per classes-in-memory C: episodes done and per-M values. */
  nll: Record<string, { episodes: number; per: { nll: number[]; kl: number[]; hits: number[]; entries: number }[] }>;
  ways: Record<string, { episodes: number; hits: number[] }>;
  large: Record<string, EvalResult['large'][number] | null>;
  plain?: { episodes: number; nll: number[] };
}

/** The options of `vmm eval --quick`: episodes and importance samples (the full protocol: 200 x 1000). */
export const QUICK_EVAL = { episodes: 50, samples: 100 } as const;

export async function runEval(runPath: string, o: EvalOptions): Promise<EvalResult> {
  const { dir, ir, model, config, weights } = loadTrained(runPath);
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(m + '\n');
  };
  const out = o.out ?? join(dir.path, 'eval');
  const partialPath = join(out, 'partial.json');
  const soft = readsSoft(ir);
  const b = bindInputs(ir);
  if (o.memory !== undefined && !b.memory) throw new RunError(`--memory ${o.memory}: ${ir.name} has no memory input to give it to`);
  const memory = o.memory !== undefined ? { path: resolve(o.memory), sha256: memoryFileHash(resolve(o.memory)) } : config.data.memory;
  const dataOpts = { ...config.data, ...(o.data ? { dataDir: o.data } : {}), ...(memory ? { memory } : {}) };
  let parameters = 0;
  for (const v of model.variables.values()) parameters += v.size;
  const result: EvalResult = { model: ir.name, estimator: ir.train.estimator.kind, soft, bound: describeBound(ir, o.samples), ...(ir.noMemory?.length ? { control: true } : {}), samples: o.samples, episodes: o.episodes, seed: o.seed, parameters, nll: [], ways: [], large: [], ...(o.quick ? { quick: true } : {}) };
  const batch = 20;
  const key = JSON.stringify({
    v: 1,
    samples: o.samples,
    episodes: o.episodes,
    memorySizes: o.memorySizes,
    classesList: o.classesList,
    ways: o.ways,
    large: o.large,
    seed: o.seed,
    dataset: dataOpts.dataset,
    ...(memory ? { memory: memory.sha256 } : {}),
    weights: { path: resolve(weights), mtime: statSync(weights).mtimeMs },
  });
  let partial: PartialEval = { key, rng: new Rng(o.seed).state(), done: 0, nll: {}, ways: {}, large: {} };
  if (existsSync(partialPath)) {
    try {
      const old = JSON.parse(readFileSync(partialPath, 'utf8')) as PartialEval;
      if (old.key === key) partial = old;
    } catch {
      // A damaged partial file: start afresh.
    }
  }
  const rng = Rng.fromState(partial.rng);
  const resumedAt = partial.done;

  // The plan: every part with its cost, so progress and the ETA cover the whole evaluation.
  const isPlain = !b.memory || dataOpts.dataset === 'recall' || memory !== undefined;
  const sizes = isPlain ? [] : [...new Set(parseList(o.memorySizes, '--memory-sizes'))].sort((x, y) => x - y);
  const classesList = isPlain ? [] : parseList(o.classesList, '--classes-list');
  // Few-shot accuracy and the shared-memory rows score argmax q(a|x) against the entries' classes:
  // not defined where the address is over something else (VSM's slots), so those parts are left
  // out, with one line saying so, instead of reporting NaN.
  const entryAddress = isPlain || addressesMemory(ir);
  const [waysAsked, largeAsked] = isPlain ? [[], []] : [parseList(o.ways, '--ways'), parseList(o.large, '--large')];
  const waysList = entryAddress ? waysAsked : [];
  const largeList = entryAddress ? largeAsked : [];
  if (!entryAddress && waysAsked.length + largeAsked.length > 0) {
    log(`few-shot accuracy and shared-memory rows: not defined for ${ir.name} (its address is not over the memory's entries); NLL only`);
  }
  const total = isPlain
    ? o.episodes * o.samples
    : classesList.reduce((n, C) => n + sizes.filter((M) => M >= C).length * o.episodes * o.samples, 0) + waysList.length * o.episodes + largeList.reduce((n, M) => n + largeUnits(M), 0);
  const progress = new EvalBar(total, partial.done, o);
  // A shared memory of M entries costs about M/20 times an NLL sample per target (q(a|x) over M).
  function largeUnits(M: number): number {
    return Math.min(o.episodes, 100) * Math.max(1, Math.round(M / 20));
  }
  if (resumedAt > 0) log(`resuming the evaluation in ${out} at ${Math.floor((100 * resumedAt) / Math.max(total, 1))}% (${partialPath})`);
  /** After a unit of work: progress, the partial file, and a stop if the signal was raised. */
  const advance = async (units: number, stage: string): Promise<void> => {
    partial.done += units;
    partial.rng = rng.state();
    writeFileAtomicSync(partialPath, JSON.stringify(partial));
    progress.update(partial.done, stage);
    // Let a Ctrl-C handler run between batches.
    await new Promise((r) => setImmediate(r));
    if (o.signal?.aborted) {
      progress.stop();
      model.dispose();
      throw new EvalInterrupted(partialPath, partial.done, total);
    }
  };

  try {
    if (isPlain) {
      const p = (partial.plain ??= { episodes: 0, nll: [] });
      const batches = testBatches(ir, dataOpts, o.episodes, batch);
      for (let i = Math.ceil(p.episodes / batch); i < batches.length; i++) {
        const raw = batches[i]!;
        const r = (await evalBatch(ir, model, raw, o.samples, rng, soft)).nll;
        p.nll.push(...r);
        p.episodes += r.length;
        await advance(r.length * o.samples, 'test NLL');
      }
      const { mean, se } = meanSe(p.nll);
      result.plainNll = { nll: mean, se, examples: p.nll.length };
      const entries = memory ? batches[0]!.inputs.find((i) => i.name === b.memory)!.shape[0]! : 0;
      if (memory) result.sharedMemory = { path: memory.path, entries };
      progress.stop();
      log(`test NLL ${mean.toFixed(2)} ± ${se.toFixed(2)} nats (${p.nll.length} examples, ${o.samples} importance samples${memory ? `, each addressing the ${entries} entries of ${memory.path}` : ''})`);
    } else {
      const { test, testSplit } = loadImageSet(dataOpts.dataset, dataOpts.dataDir, { memory: true, pixels: b.dataSize, ...(dataOpts.valid !== undefined ? { valid: dataOpts.valid } : {}) });
      const set = test as LabelledImageSet;
      const episodesFor = (classes: number, shots: number, distractors: number, seed: number) =>
        new EpisodeSampler({ set, classes, shots, distractors, split: testSplit, seed, pixels: { fixed: o.seed } });
      for (const C of classesList) {
        const Ms = sizes.filter((M) => M >= C);
        if (!Ms.length) continue;
        // One episode per target at the largest M; every smaller memory is a prefix of it.
        const sampler = episodesFor(C, Math.ceil(Ms[Ms.length - 1]! / C), 0, o.seed + 31 * C);
        const part = (partial.nll[String(C)] ??= { episodes: 0, per: Ms.map(() => ({ nll: [], kl: [], hits: [], entries: 0 })) });
        const per = part.per;
        // Episodes done before an interruption are drawn again (cheap) to reach the same sampler state.
        for (let done = 0; done < part.episodes; done += batch) sampler.next(Math.min(batch, o.episodes - done));
        for (let done = part.episodes; done < o.episodes; done += batch) {
          const e = sampler.next(Math.min(batch, o.episodes - done));
          const order = roundRobinOrder(e, C);
          for (const [j, M] of Ms.entries()) {
            const r = await evalBatch(ir, model, episodeInputs(b, nestedEpisode(e, order, M)), o.samples, rng, soft);
            per[j]!.nll.push(...r.nll);
            if (r.kl) per[j]!.kl.push(...r.kl);
            if (r.hit) per[j]!.hits.push(...r.hit);
            per[j]!.entries = r.entries || M;
          }
          part.episodes = done + e.batch;
          await advance(e.batch * o.samples * Ms.length, `C=${C}, M=${Ms.join(',')}`);
        }
        progress.clear();
        Ms.forEach((M, j) => {
          const { nll, kl, hits, entries } = per[j]!;
          const s = meanSe(nll);
          // The ceiling of KL(q || uniform) is the log of the number of addressable entries
          // (the memory plus any learned entries stacked onto it).
          const cell: NllCell = { classes: C, memory: M, nll: s.mean, se: s.se, values: nll, episodes: nll.length, logM: Math.log(entries) };
          if (j > 0) {
            const d = meanSe(nll.map((v, i) => v - per[0]!.nll[i]!));
            cell.diff = { vs: Ms[0]!, mean: d.mean, se: d.se };
          }
          if (kl.length) {
            const k = meanSe(kl);
            cell.kl = k.mean;
            cell.klSe = k.se;
          }
          if (hits.length) {
            const h = meanSe(hits);
            cell.accuracy = h.mean;
            cell.accuracySe = h.se;
          }
          result.nll.push(cell);
          const diff = cell.diff ? `  paired vs M=${cell.diff.vs}: ${cell.diff.mean >= 0 ? '+' : ''}${cell.diff.mean.toFixed(2)} ± ${cell.diff.se.toFixed(2)}` : '';
          log(`C=${C} M=${M}: NLL ${s.mean.toFixed(2)} ± ${s.se.toFixed(2)}${diff}${cell.kl !== undefined ? `  KL ${cell.kl.toFixed(3)} (ceiling log ${entries} = ${cell.logM!.toFixed(2)})` : ''}`);
        });
      }
      for (const n of waysList) {
        const part = (partial.ways[String(n)] ??= { episodes: 0, hits: [] });
        if (n > (set.numClasses ?? 0) || !addressesMemory(ir)) {
          if (part.episodes < o.episodes) {
            part.episodes = o.episodes;
            await advance(o.episodes, `${n}-way`);
          }
          continue;
        }
        let sampler: EpisodeSampler;
        try {
          sampler = episodesFor(n, 1, 0, o.seed + 1000 + n);
        } catch (e) {
          // A small data set (a test fixture, a user's few classes) has too few classes for n ways.
          progress.clear();
          log(`skipping ${n}-way 1-shot: ${(e as Error).message}`);
          part.episodes = o.episodes;
          await advance(o.episodes, `${n}-way`);
          continue;
        }
        for (let done = 0; done < part.episodes; done += batch) sampler.next(Math.min(batch, o.episodes - done));
        for (let done = part.episodes; done < o.episodes; done += batch) {
          const e = sampler.next(Math.min(batch, o.episodes - done));
          const r = await evalBatch(ir, model, episodeInputs(b, e), 1, rng, soft);
          if (r.hit) part.hits.push(...r.hit);
          part.episodes = done + e.batch;
          await advance(e.batch, `${n}-way 1-shot`);
        }
        progress.clear();
        const s = meanSe(part.hits);
        result.ways.push({ ways: n, accuracy: s.mean, se: s.se, episodes: part.hits.length });
        log(`${n}-way 1-shot accuracy ${(100 * s.mean).toFixed(1)}% ± ${(100 * s.se).toFixed(1)}`);
      }
      for (const n of largeList) {
        const targets = o.largeTargets ?? Math.min(o.episodes, 100);
        if (!(String(n) in partial.large)) {
          partial.large[String(n)] = await largeMemory(n, targets);
          await advance(largeUnits(n), `shared memory of ${n}`);
        }
        const row = partial.large[String(n)];
        if (row) {
          result.large.push(row);
          progress.clear();
          log(`shared memory of ${n} entries (${row.classes} unseen classes x ${row.shots} shots): ${row.classes}-way accuracy ${(100 * row.accuracy).toFixed(1)}%, KL ${row.kl.toFixed(2)} (ceiling ${row.logM.toFixed(2)})`);
        }
      }

      async function largeMemory(n: number, targets: number): Promise<EvalResult['large'][number] | null> {
        const avail = new EpisodeSampler({ set, classes: 1, shots: 1, split: testSplit, seed: 0 }).availableClasses;
        // As many classes as the split has, several shots each when n exceeds them (2500 entries of
        // the 659 Omniglot evaluation characters: 625 classes x 4 shots).
        const shots = Math.ceil(n / avail);
        const classes = Math.floor(n / shots);
        const distractors = n - classes * shots;
        if (shots + 1 > 20 && dataOpts.dataset === 'omniglot') {
          log(`skipping large memory ${n}: it needs more than 19 shots per class`);
          return null;
        }
        let ep: ReturnType<typeof sharedMemoryEpisode>;
        try {
          ep = sharedMemoryEpisode({ set, classes, shots, distractors, targets, split: testSplit, seed: o.seed + n, pixels: { fixed: o.seed } });
        } catch (e) {
          log(`skipping large memory ${n}: ${(e as Error).message}`);
          return null;
        }
        const raw: RawBatch = {
          inputs: [
            { name: b.data, data: ep.targets, shape: [ep.batch, ep.pixels], plates: ['batch'] },
            { name: b.memory!, data: ep.memory, shape: [ep.memorySize, ep.pixels], plates: [] },
          ],
          episode: { ...ep, memoryClass: ep.memoryClass, memoryIndex: ep.memoryIndex, matchMask: ep.matchMask } as unknown as RawBatch['episode'],
        };
        // Shared memory: the episode fields are per-target; evalBatch reads matchMask [B, M].
        const r = await evalBatch(ir, model, raw, 1, rng, soft);
        const acc = r.hit ? meanSe([...r.hit]) : { mean: NaN, se: NaN };
        const kl = r.kl ? meanSe([...r.kl]).mean : NaN;
        const logM = Math.log(r.entries || n);
        return { memory: n, classes, shots, accuracy: acc.mean, se: acc.se, kl, logM, episodes: targets };
      }
    }
  } finally {
    progress.stop();
  }
  if (o.lake) {
    if (dataOpts.dataset !== 'omniglot' || !b.memory || !addressesMemory(ir)) log('skipping Lake\'s runs: they need an Omniglot model that addresses its memory');
    else {
      const hits: number[] = [];
      const runs = lakeRuns(loadOmniglot(dataOpts.dataDir ? { dataDir: dataOpts.dataDir } : {}), o.seed);
      for (const e of runs) hits.push(...((await evalBatch(ir, model, episodeInputs(b, e), 1, rng, soft)).hit ?? []));
      const s = meanSe(hits);
      result.lake = { accuracy: s.mean, se: s.se, runs: runs.length, trials: hits.length };
      log(`Lake's within-alphabet 20-way one-shot runs: ${(100 * s.mean).toFixed(1)}% ± ${(100 * s.se).toFixed(1)} (${runs.length} runs, ${hits.length} trials)`);
    }
  }
  model.dispose();
  writeEvalReport(out, result);
  rmSync(partialPath, { force: true });
  const secs = progress.seconds();
  log(`wrote ${out}/ (report.md, eval.json, plots as SVG and PNG) in ${formatDuration(secs)}${resumedAt > 0 ? ' (this invocation)' : ''}`);
  return result;
}

/** "42 s", "3 min 5 s", "1 h 02 min". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * Progress of an evaluation with its ETA: a bar on a terminal, a line every 10 s otherwise,
 * and `o.onProgress` for a library caller. The rate counts this invocation's work only.
 */
class EvalBar {
  private readonly t0 = performance.now();
  private readonly bar: SingleBar | undefined;
  private lastLine = performance.now();
  private stopped = false;

  constructor(
    private readonly total: number,
    private readonly start: number,
    private readonly o: EvalOptions,
  ) {
    this.bar =
      !o.quiet && !o.onProgress && process.stderr.isTTY
        ? new SingleBar({ format: 'eval |{bar}| {percentage}% | {stage} | eta {eta_time}', hideCursor: true, stream: process.stderr, clearOnComplete: true })
        : undefined;
    this.bar?.start(total, start, { stage: '', eta_time: '-' });
  }

  seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  update(done: number, stage: string): void {
    const rate = (done - this.start) / this.seconds();
    const etaSeconds = rate > 0 ? (this.total - done) / rate : undefined;
    this.o.onProgress?.({ done, total: this.total, stage, ...(etaSeconds !== undefined ? { etaSeconds } : {}) });
    const eta = etaSeconds !== undefined ? formatDuration(etaSeconds) : '-';
    if (this.bar) this.bar.update(done, { stage, eta_time: eta });
    else if (!this.o.quiet && !this.o.onProgress && performance.now() - this.lastLine > 10_000) {
      this.lastLine = performance.now();
      process.stderr.write(`eval ${Math.floor((100 * done) / this.total)}% (${stage}), about ${eta} left\n`);
    }
  }

  /** Clears the bar's line before a result line is printed (it is drawn again at the next update). */
  clear(): void {
    if (this.bar && !this.stopped) {
      process.stderr.write('\r\x1b[2K');
    }
  }

  stop(): void {
    if (!this.stopped) this.bar?.stop();
    this.stopped = true;
  }
}

/**
 * n-way k-shot classification accuracy of argmax_i q(a = i | x) on test episodes of the run's data
 * set (the figure of `vmm eval --ways`, for any shots): mean and standard error over targets.
 */
export async function fewShotAccuracy(
  ir: IrProgram,
  model: CompiledModel,
  data: Pick<DataOptions, 'dataset' | 'dataDir' | 'valid'>,
  o: { ways: number; shots: number; episodes: number; seed: number },
): Promise<{ accuracy: number; se: number; episodes: number }> {
  const b = bindInputs(ir);
  if (!b.memory || !addressesMemory(ir)) throw new RunError(`${ir.name} has no memory address to classify with (few-shot accuracy needs a model with 'memory' and a 'discrete address')`);
  const { test, testSplit } = loadImageSet(data.dataset, data.dataDir, { memory: true, pixels: b.dataSize, ...(data.valid !== undefined ? { valid: data.valid } : {}) });
  const sampler = new EpisodeSampler({ set: test as LabelledImageSet, classes: o.ways, shots: o.shots, distractors: 0, split: testSplit, seed: o.seed + 1000 + o.ways, pixels: { fixed: o.seed } });
  const rng = new Rng(o.seed);
  const hits: number[] = [];
  for (let done = 0; done < o.episodes; done += 20) {
    const r = await evalBatch(ir, model, episodeInputs(b, sampler.next(Math.min(20, o.episodes - done))), 1, rng, readsSoft(ir));
    if (r.hit) hits.push(...r.hit);
  }
  const s = meanSe(hits);
  return { accuracy: s.mean, se: s.se, episodes: hits.length };
}

export function evalTable(result: EvalResult): string {
  const lines: string[] = [];
  if (result.plainNll) {
    lines.push(markdownTable(['model', 'estimator', 'test NLL (nats)', '± se', 'examples'], [[result.model, result.estimator, result.plainNll.nll.toFixed(2), result.plainNll.se.toFixed(2), String(result.plainNll.examples)]]));
    if (result.sharedMemory) lines.push('', `Every target addressed one memory of ${result.sharedMemory.entries} entries: ${result.sharedMemory.path}.`);
    return lines.join('\n');
  }
  const Ms = [...new Set(result.nll.map((c) => c.memory))].sort((a, b) => a - b);
  const Cs = [...new Set(result.nll.map((c) => c.classes))].sort((a, b) => a - b);
  lines.push(`Test NLL in nats (${result.samples} importance samples, mean ± standard error over episodes); each a ${result.bound ?? 'bound on log p(x | memory)'}:`);
  lines.push('');
  lines.push(
    markdownTable(
      ['C \\ M', ...Ms.map(String)],
      Cs.map((C) => [String(C), ...Ms.map((M) => {
        const c = result.nll.find((x) => x.classes === C && x.memory === M);
        return c ? `${c.nll.toFixed(1)} ± ${c.se.toFixed(1)}` : '';
      })]),
    ),
  );
  const paired = result.nll.filter((c) => c.diff);
  if (paired.length) {
    lines.push('');
    lines.push(
      'Paired differences NLL(M) - NLL(smallest M of the row), same targets with nested memories (the smaller memory inside the larger), mean ± standard error of the per-episode difference (negative: the larger memory helps). C = classes in memory; entries take the C classes in turn, so when M is not a multiple of C some classes have one shot more:',
    );
    lines.push('');
    lines.push(
      markdownTable(
        ['C', 'M', 'NLL', 'vs M', 'difference', '± se', 'episodes'],
        paired.map((c) => [String(c.classes), String(c.memory), c.nll.toFixed(2), String(c.diff!.vs), c.diff!.mean.toFixed(2), c.diff!.se.toFixed(2), String(c.episodes)]),
      ),
    );
  }
  const withKl = result.nll.filter((c) => c.kl !== undefined);
  if (withKl.length) {
    lines.push('');
    lines.push('KL(q(a|x) || p(a)) in nats, against its ceiling log(addressable entries) (memory plus learned entries), and the share of targets whose argmax q(a|x) entry has their class:');
    lines.push('');
    lines.push(markdownTable(['C', 'M', 'KL', 'ceiling', 'argmax hits'], withKl.map((c) => [String(c.classes), String(c.memory), c.kl!.toFixed(3), c.logM!.toFixed(3), c.accuracy !== undefined ? `${(100 * c.accuracy).toFixed(1)}%` : ''])));
  }
  if (result.ways.length) {
    lines.push('');
    lines.push(markdownTable(['task', 'accuracy', '± se', 'episodes'], result.ways.map((w) => [`${w.ways}-way 1-shot`, `${(100 * w.accuracy).toFixed(1)}%`, `${(100 * w.se).toFixed(1)}`, String(w.episodes)])));
  }
  if (result.lake) {
    lines.push('');
    lines.push(`Lake's one-shot classification runs (20 runs of 20-way one-shot within one evaluation alphabet, supports and queries by two drawers; src/jobs/lake_runs.ts): ${(100 * result.lake.accuracy).toFixed(1)}% ± ${(100 * result.lake.se).toFixed(1)} over ${result.lake.trials} trials (chance 5%).`);
  }
  if (result.large.length) {
    lines.push('');
    lines.push('Large memories of unseen classes shared by all targets (accuracy: argmax q(a|x) has the target\'s class):');
    lines.push('');
    lines.push(markdownTable(['M', 'classes x shots', 'targets', 'accuracy', 'chance', 'KL', 'ceiling'], result.large.map((l) => [String(l.memory), `${l.classes} x ${l.shots}`, String(l.episodes), `${(100 * l.accuracy).toFixed(1)}%${l.se !== undefined ? ` ± ${(100 * l.se).toFixed(1)}` : ''}`, `${(100 / l.classes).toFixed(2)}%`, l.kl.toFixed(2), l.logM.toFixed(2)])));
  }
  return lines.join('\n');
}

function writeEvalReport(out: string, result: EvalResult): void {
  mkdirSync(out, { recursive: true });
  writeFileAtomicSync(join(out, 'eval.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileAtomicSync(join(out, 'report.md'), `# ${result.model} (${result.estimator})\n\n${evalProtocol(result)}\n\n${evalTable(result)}\n`);
  if (!result.nll.length) return;
  const Cs = [...new Set(result.nll.map((c) => c.classes))];
  // The memory sizes evaluated are the ticks, on a log axis (1, 2, 3, 4, 5, 10, 19 spread evenly).
  const axis = { xLabel: 'memory size M (log scale)', logX: true, xTicks: [...new Set(result.nll.map((c) => c.memory))].sort((a, b) => a - b) };
  writeSvgAndPng(
    join(out, 'nll_vs_memory.svg'),
    lineChart({
      title: `${result.model}: test NLL vs memory size`,
      ...axis,
      yLabel: 'NLL (nats, ± 1 s.e.)',
      series: Cs.map((C) => ({
        name: `C = ${C}`,
        points: result.nll.filter((c) => c.classes === C).map((c) => [c.memory, c.nll] as [number, number]),
        errorBars: result.nll.filter((c) => c.classes === C).map((c) => c.se),
      })),
    }),
  );
  const kl = result.nll.filter((c) => c.kl !== undefined);
  if (kl.length) {
    writeSvgAndPng(
      join(out, 'kl_vs_memory.svg'),
      lineChart({
        title: `${result.model}: KL(q(a|x) || p(a)) vs memory size`,
        ...axis,
        yLabel: 'nats (± 1 s.e.)',
        yIncludeZero: true,
        series: [
          ...Cs.map((C) => {
            const cells = kl.filter((c) => c.classes === C);
            return { name: `KL, C = ${C}`, points: cells.map((c) => [c.memory, c.kl!] as [number, number]), errorBars: cells.map((c) => c.klSe ?? null) };
          }),
          { name: 'ceiling: log(entries)', dashed: true, points: kl.filter((c) => c.classes === Cs[0]).map((c) => [c.memory, c.logM!] as [number, number]) },
        ],
      }),
    );
    const acc = kl.filter((c) => c.accuracy !== undefined);
    if (acc.length) {
      writeSvgAndPng(
        join(out, 'accuracy_vs_memory.svg'),
        lineChart({
          title: `${result.model}: argmax q(a|x) picks the target's class`,
          ...axis,
          yLabel: 'share of targets (± 1 s.e.)',
          yDomain: [0, 1.02],
          series: Cs.map((C) => {
            const cells = acc.filter((c) => c.classes === C);
            // Older eval.json files have no accuracySe: the binomial standard error.
            const se = (c: NllCell) => c.accuracySe ?? Math.sqrt((c.accuracy! * (1 - c.accuracy!)) / Math.max(1, c.episodes - 1));
            return { name: `C = ${C}`, points: cells.map((c) => [c.memory, c.accuracy!] as [number, number]), errorBars: cells.map(se) };
          }),
        }),
      );
    }
  }
}

/** One line on how the figures were made: episodes, samples, and whether this was the quick preset. */
export function evalProtocol(result: EvalResult): string {
  const what = `${result.episodes ?? '?'} test episodes per configuration, ${result.samples} importance samples, seed ${result.seed ?? '?'}`;
  return result.quick
    ? `Quick evaluation (\`--quick\`: ${what}); the standard errors show its precision. For figures to publish, run the full protocol (the defaults: 200 episodes, 1000 samples).`
    : `Protocol: ${what}.`;
}

/** Where the memory's rows start in the first address's table, with the memory size bound. */
export function memoryRowOffset(ir: IrProgram, memorySize: number): number {
  const addr = ir.model.find((s): s is IrSite => s.stmt === 'site' && s.role === 'address');
  const d = addr?.dist;
  if (!d || d.kind !== 'Categorical' || !d.offset) return 0;
  const bindings = new Map<string, number>();
  const mem = ir.memories.find((m) => m.name === d.memory);
  const first = mem?.type.shape[0];
  if (first) for (const [sym, c] of Object.entries(first.terms)) if (c === 1) bindings.set(sym, memorySize - first.c);
  return resolveSize(d.offset, bindings);
}

/** True when the first address ranges over a declared memory (possibly stacked with learned entries). */
export function addressesMemory(ir: IrProgram): boolean {
  const addr = ir.model.find((s): s is IrSite => s.stmt === 'site' && s.role === 'address');
  const d = addr?.dist;
  return d?.kind === 'Categorical' && d.memory !== undefined && ir.memories.some((m) => m.name === d.memory);
}
