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
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EpisodeSampler, sharedMemoryEpisode, type EpisodeBatch } from '../data/episodes.ts';
import type { LabelledImageSet } from '../data/types.ts';
import { Rng } from '../random/rng.ts';
import { CompiledModel } from '../lower/compile.ts';
import { addressPosterior, importanceBound } from '../lower/objective.ts';
import { lineChart } from '../report/svg.ts';
import { markdownTable } from '../report/markdown.ts';
import { writeFileAtomicSync } from '../report/atomic.ts';
import { RunError } from '../diagnostics/errors.ts';
import { bindInputs, episodeInputs, loadImageSet, testBatches, type RawBatch } from './data_source.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { irOfRun, RunDir } from './run_dir.ts';
import type { IrProgram, IrSite } from '../ir/types.ts';
import { resolveSize } from '../lower/trace.ts';

/** The default evaluation seed: one seed draws the same targets and memories for every run (paired comparisons). */
export const EVAL_SEED = 12345;

export interface EvalOptions {
  data?: string;
  samples: number;
  episodes: number;
  memorySizes: string;
  classesList: string;
  ways: string;
  large: string;
  seed: number;
  /** Print progress lines. */
  quiet?: boolean;
  /** Where the report goes (default: RUN/eval), e.g. for a run folder that should stay as it is. */
  out?: string;
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
  logM?: number;
  accuracy?: number;
  episodes: number;
}

export interface EvalResult {
  model: string;
  estimator: string;
  soft: boolean;
  samples: number;
  /** Test episodes per configuration and the evaluation seed (same seed: same targets and memories). */
  episodes?: number;
  seed?: number;
  /** Trainable numbers of the model (every net and param). */
  parameters: number;
  nll: NllCell[];
  ways: { ways: number; accuracy: number; se: number; episodes: number }[];
  large: { memory: number; classes: number; shots: number; accuracy: number; kl: number; logM: number; episodes: number }[];
  plainNll?: { nll: number; se: number; examples: number };
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
export function loadTrained(runPath: string): { dir: RunDir; ir: IrProgram; model: CompiledModel; config: ReturnType<typeof RunDir.open>['config'] } {
  const { dir, config } = RunDir.open(runPath);
  const ir = irOfRun(config);
  const model = new CompiledModel(ir, config.seed, { baseline: ir.train.estimator.kind === 'reinforce' && ir.train.estimator.reinforceBaseline === 'nvil' });
  let loaded = false;
  for (const p of [dir.finalPath, dir.checkpointPath]) {
    try {
      loadCheckpoint(p, model.variables, undefined);
      loaded = true;
      break;
    } catch {
      // try the next one
    }
  }
  if (!loaded) throw new RunError(`${runPath} has no weights yet (no final/ or checkpoint/)`);
  return { dir, ir, model, config };
}

/** Per-example: NLL, KL(q(a|x)||p(a)) and whether argmax q(a|x) hits the target's class. */
function evalBatch(
  ir: IrProgram,
  model: CompiledModel,
  raw: RawBatch,
  samples: number,
  rng: Rng,
  soft: boolean,
): { nll: Float32Array; kl?: Float32Array; hit?: Uint8Array; entries?: number } {
  const inputs = () => model.inputs(raw);
  const bound = tf.tidy(() =>
    importanceBound(ir, inputs(), model.applyNet, { k: samples, chunk: Math.min(samples, 100), rng, reads: soft ? 'soft' : 'sample' }),
  );
  const nll = bound.map((v) => -v);
  if (!raw.episode || !ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) return { nll };
  const readsMemory = addressesMemory(ir);
  const probs = tf.tidy(() => addressPosterior(ir, inputs(), model.applyNet, rng));
  const p = probs.arraySync() as number[][];
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

export async function runEval(runPath: string, o: EvalOptions): Promise<EvalResult> {
  const { dir, ir, model, config } = loadTrained(runPath);
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(m + '\n');
  };
  const soft = ir.train.estimator.kind === 'soft';
  const dataOpts = { ...config.data, ...(o.data ? { dataDir: o.data } : {}) };
  const b = bindInputs(ir);
  const rng = new Rng(o.seed);
  let parameters = 0;
  for (const v of model.variables.values()) parameters += v.size;
  const result: EvalResult = { model: ir.name, estimator: ir.train.estimator.kind, soft, samples: o.samples, episodes: o.episodes, seed: o.seed, parameters, nll: [], ways: [], large: [] };
  const batch = 20;

  if (!b.memory || dataOpts.dataset === 'recall') {
    const batches = testBatches(ir, dataOpts, o.episodes, batch);
    const all: number[] = [];
    for (const raw of batches) all.push(...evalBatch(ir, model, raw, o.samples, rng, soft).nll);
    const { mean, se } = meanSe(all);
    result.plainNll = { nll: mean, se, examples: all.length };
    log(`test NLL ${mean.toFixed(2)} ± ${se.toFixed(2)} nats (${all.length} examples, ${o.samples} importance samples)`);
  } else {
    const { test, testSplit } = loadImageSet(dataOpts.dataset, dataOpts.dataDir, { memory: true, pixels: b.dataSize, ...(dataOpts.valid !== undefined ? { valid: dataOpts.valid } : {}) });
    const set = test as LabelledImageSet;
    const episodesFor = (classes: number, shots: number, distractors: number, seed: number) =>
      new EpisodeSampler({ set, classes, shots, distractors, split: testSplit, seed, pixels: { fixed: o.seed } });
    const sizes = [...new Set(parseList(o.memorySizes, '--memory-sizes'))].sort((x, y) => x - y);
    for (const C of parseList(o.classesList, '--classes-list')) {
      const Ms = sizes.filter((M) => M >= C);
      if (!Ms.length) continue;
      // One episode per target at the largest M; every smaller memory is a prefix of it.
      const sampler = episodesFor(C, Math.ceil(Ms[Ms.length - 1]! / C), 0, o.seed + 31 * C);
      const per = Ms.map(() => ({ nll: [] as number[], kl: [] as number[], hits: [] as number[], entries: 0 }));
      for (let done = 0; done < o.episodes; done += batch) {
        const e = sampler.next(Math.min(batch, o.episodes - done));
        const order = roundRobinOrder(e, C);
        Ms.forEach((M, j) => {
          const r = evalBatch(ir, model, episodeInputs(b, nestedEpisode(e, order, M)), o.samples, rng, soft);
          per[j]!.nll.push(...r.nll);
          if (r.kl) per[j]!.kl.push(...r.kl);
          if (r.hit) per[j]!.hits.push(...r.hit);
          per[j]!.entries = r.entries || M;
        });
      }
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
        if (kl.length) cell.kl = meanSe(kl).mean;
        if (hits.length) cell.accuracy = meanSe(hits).mean;
        result.nll.push(cell);
        const diff = cell.diff ? `  paired vs M=${cell.diff.vs}: ${cell.diff.mean >= 0 ? '+' : ''}${cell.diff.mean.toFixed(2)} ± ${cell.diff.se.toFixed(2)}` : '';
        log(`C=${C} M=${M}: NLL ${s.mean.toFixed(2)} ± ${s.se.toFixed(2)}${diff}${cell.kl !== undefined ? `  KL ${cell.kl.toFixed(3)} (ceiling log ${entries} = ${cell.logM!.toFixed(2)})` : ''}`);
      });
    }
    for (const n of parseList(o.ways, '--ways')) {
      if (n > (set.numClasses ?? 0) || !addressesMemory(ir)) continue;
      const sampler = episodesFor(n, 1, 0, o.seed + 1000 + n);
      const hits: number[] = [];
      for (let done = 0; done < o.episodes; done += batch) {
        const raw = episodeInputs(b, sampler.next(Math.min(batch, o.episodes - done)));
        const r = evalBatch(ir, model, raw, 1, rng, soft);
        if (r.hit) hits.push(...r.hit);
      }
      const s = meanSe(hits);
      result.ways.push({ ways: n, accuracy: s.mean, se: s.se, episodes: hits.length });
      log(`${n}-way 1-shot accuracy ${(100 * s.mean).toFixed(1)}% ± ${(100 * s.se).toFixed(1)}`);
    }
    for (const n of parseList(o.large, '--large')) {
      const avail = new EpisodeSampler({ set, classes: 1, shots: 1, split: testSplit, seed: 0 }).availableClasses;
      // As many classes as the split has, several shots each when n exceeds them (2500 entries of
      // the 659 Omniglot evaluation characters: 625 classes x 4 shots).
      const shots = Math.ceil(n / avail);
      const classes = Math.floor(n / shots);
      const distractors = n - classes * shots;
      if (shots + 1 > 20 && dataOpts.dataset === 'omniglot') {
        log(`skipping large memory ${n}: it needs more than 19 shots per class`);
        continue;
      }
      const targets = Math.min(o.episodes, 100);
      let ep: ReturnType<typeof sharedMemoryEpisode>;
      try {
        ep = sharedMemoryEpisode({ set, classes, shots, distractors, targets, split: testSplit, seed: o.seed + n, pixels: { fixed: o.seed } });
      } catch (e) {
        log(`skipping large memory ${n}: ${(e as Error).message}`);
        continue;
      }
      const raw: RawBatch = {
        inputs: [
          { name: b.data, data: ep.targets, shape: [ep.batch, ep.pixels], plates: ['batch'] },
          { name: b.memory, data: ep.memory, shape: [ep.memorySize, ep.pixels], plates: [] },
        ],
        episode: { ...ep, memoryClass: ep.memoryClass, memoryIndex: ep.memoryIndex, matchMask: ep.matchMask } as unknown as RawBatch['episode'],
      };
      // Shared memory: the episode fields are per-target; evalBatch reads matchMask [B, M].
      const r = evalBatch(ir, model, raw, 1, rng, soft);
      const acc = r.hit ? meanSe([...r.hit]).mean : NaN;
      const kl = r.kl ? meanSe([...r.kl]).mean : NaN;
      const logM = Math.log(r.entries || n);
      result.large.push({ memory: n, classes, shots, accuracy: acc, kl, logM, episodes: targets });
      log(`shared memory of ${n} entries (${classes} unseen classes x ${shots} shots): ${classes}-way accuracy ${(100 * acc).toFixed(1)}%, KL ${kl.toFixed(2)} (ceiling ${logM.toFixed(2)})`);
    }
  }
  model.dispose();
  const out = o.out ?? join(dir.path, 'eval');
  writeEvalReport(out, result);
  log(`wrote ${out}/ (report.md, eval.json, plots)`);
  return result;
}

export function evalTable(result: EvalResult): string {
  const lines: string[] = [];
  if (result.plainNll) {
    lines.push(markdownTable(['model', 'estimator', 'test NLL (nats)', '± se', 'examples'], [[result.model, result.estimator, result.plainNll.nll.toFixed(2), result.plainNll.se.toFixed(2), String(result.plainNll.examples)]]));
    return lines.join('\n');
  }
  const Ms = [...new Set(result.nll.map((c) => c.memory))].sort((a, b) => a - b);
  const Cs = [...new Set(result.nll.map((c) => c.classes))].sort((a, b) => a - b);
  lines.push(`Test NLL in nats (${result.samples} importance samples, mean ± standard error over episodes)${result.soft ? '; soft attention: the bound of the soft model, weights from q(a|x)' : ''}:`);
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
  if (result.large.length) {
    lines.push('');
    lines.push('Large memories of unseen classes shared by all targets (accuracy: argmax q(a|x) has the target\'s class):');
    lines.push('');
    lines.push(markdownTable(['M', 'classes x shots', 'accuracy', 'chance', 'KL', 'ceiling'], result.large.map((l) => [String(l.memory), `${l.classes} x ${l.shots}`, `${(100 * l.accuracy).toFixed(1)}%`, `${(100 / l.classes).toFixed(2)}%`, l.kl.toFixed(2), l.logM.toFixed(2)])));
  }
  return lines.join('\n');
}

function writeEvalReport(out: string, result: EvalResult): void {
  mkdirSync(out, { recursive: true });
  writeFileAtomicSync(join(out, 'eval.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileAtomicSync(join(out, 'report.md'), `# ${result.model} (${result.estimator})\n\n${evalTable(result)}\n`);
  if (!result.nll.length) return;
  const Cs = [...new Set(result.nll.map((c) => c.classes))];
  writeFileAtomicSync(
    join(out, 'nll_vs_memory.svg'),
    lineChart({
      title: `${result.model}: test NLL vs memory size`,
      xLabel: 'memory size M',
      yLabel: 'NLL (nats)',
      series: Cs.map((C) => ({
        name: `C = ${C}`,
        points: result.nll.filter((c) => c.classes === C).map((c) => [c.memory, c.nll] as [number, number]),
        errorBars: result.nll.filter((c) => c.classes === C).map((c) => c.se),
      })),
    }),
  );
  const kl = result.nll.filter((c) => c.kl !== undefined);
  if (kl.length) {
    writeFileAtomicSync(
      join(out, 'kl_vs_memory.svg'),
      lineChart({
        title: `${result.model}: KL(q(a|x) || p(a)) vs memory size`,
        xLabel: 'memory size M',
        yLabel: 'nats',
        series: [
          ...Cs.map((C) => ({ name: `KL, C = ${C}`, points: kl.filter((c) => c.classes === C).map((c) => [c.memory, c.kl!] as [number, number]) })),
          { name: 'ceiling: log(entries)', dashed: true, points: kl.filter((c) => c.classes === Cs[0]).map((c) => [c.memory, c.logM!] as [number, number]) },
        ],
      }),
    );
    writeFileAtomicSync(
      join(out, 'accuracy_vs_memory.svg'),
      lineChart({
        title: `${result.model}: argmax q(a|x) picks the target's class`,
        xLabel: 'memory size M',
        yLabel: 'share of targets',
        series: Cs.map((C) => ({ name: `C = ${C}`, points: kl.filter((c) => c.classes === C && c.accuracy !== undefined).map((c) => [c.memory, c.accuracy!] as [number, number]) })),
      }),
    );
  }
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
