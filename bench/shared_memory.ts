/**
 * One large shared memory against per-episode memories on Omniglot (issue #26; results in
 * bench/results/shared_memory.md). Three steps:
 *
 *   node bin/run-ts.mjs bench/shared_memory.ts make --out DIR [--data DATA] [--drawers 15]
 *   node bin/run-ts.mjs bench/shared_memory.ts eval RUN... --files DIR --out FILE.json [--targets 400] [--samples 100]
 *   node bin/run-ts.mjs bench/shared_memory.ts report FILE.json...
 *
 * `make` writes disjoint files: the memory of each split holds drawers 1..15 of every character
 * (background: 964 x 15 = 14,460 entries; evaluation: 659 x 15 = 9,885) and its targets the
 * other drawers (16..20), with labels, so no target is ever in the memory it addresses.
 *
 * `eval` scores the same targets (a seeded choice of evaluation-alphabet targets: characters
 * never trained on) for every run under two memories: the shared one (all 9,885 entries of the
 * evaluation alphabets, the target's 15 drawings among them), and an episode of the training
 * protocol (8 classes x 4 shots from the same entries, the target's class among them); so the
 * comparison is paired per target. Each run's bound is the `vmm eval` bound (importance
 * sampling with the run's guide, the full q(a | x)), a lower bound on log p(x | memory).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNpy, encodeNpz } from '../src/data/npy.ts';
import { loadOmniglot } from '../src/data/omniglot.ts';
import { loadSharedMemory } from '../src/data/shared_memory.ts';
import { bindInputs, type RawBatch } from '../src/data/bind.ts';
import { binarizeFixed } from '../src/data/binarize.ts';
import { readImageArray } from '../src/data/image_array.ts';
import { evalBatch, loadTrained, meanSe } from '../src/jobs/evaluate_run.ts';
import { readsSoft } from '../src/ir/addressing.ts';
import { Rng } from '../src/random/rng.ts';
import { selectBackend } from '../src/runtime/backend.ts';

const [cmd, ...rest] = process.argv.slice(2);
const flag = (name: string, dflt?: string) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const positional = () => {
  const out: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i]!.startsWith('--')) i++;
    else out.push(rest[i]!);
  }
  return out;
};

const DRAWERS = 20;

function make(): void {
  const out = flag('out', 'shared-memory')!;
  const keep = Number(flag('drawers', '15'));
  const dataDir = flag('data');
  const set = loadOmniglot(dataDir ? { dataDir } : {});
  const D = set.height * set.width;
  mkdirSync(out, { recursive: true });
  for (const split of ['background', 'evaluation'] as const) {
    const ids = set.splits[split];
    const mem: number[] = [];
    const tgt: number[] = [];
    // Image i is drawer i % 20 of its character (shared/data/README.md).
    for (const i of ids) ((i % DRAWERS) < keep ? mem : tgt).push(i);
    const pick = (xs: number[]) => {
      const a = new Uint8Array(xs.length * D);
      xs.forEach((k, j) => a.set(set.images.subarray(k * D, (k + 1) * D), j * D));
      return a;
    };
    const labels = (xs: number[]) => Int32Array.from(xs, (k) => set.characterId(k));
    writeFileSync(join(out, `memory_${split}.npz`), encodeNpz({ images: { data: pick(mem), shape: [mem.length, set.height, set.width] }, labels: { data: labels(mem), shape: [mem.length] } }));
    writeFileSync(join(out, `targets_${split}.npz`), encodeNpz({ images: { data: pick(tgt), shape: [tgt.length, set.height, set.width] }, labels: { data: labels(tgt), shape: [tgt.length] } }));
    process.stderr.write(`${split}: memory ${mem.length} entries (drawers 1..${keep}), targets ${tgt.length} (drawers ${keep + 1}..${DRAWERS})\n`);
  }
  void encodeNpy;
}

interface RunScores {
  run: string;
  model: string;
  control: boolean;
  trainedWith: string;
  /** Per target: NLL with the shared memory, with an episode memory. */
  shared: number[];
  episode: number[];
  /** Per target: whether argmax q(a | x) is an entry of the target's class (memory models). */
  sharedHits?: number[];
  episodeHits?: number[];
}

async function evaluate(): Promise<void> {
  await selectBackend({ log: (m) => process.stderr.write(m + '\n') });
  const files = flag('files', 'shared-memory')!;
  const n = Number(flag('targets', '400'));
  const samples = Number(flag('samples', '100'));
  const classes = Number(flag('classes', '8'));
  const shots = Number(flag('shots', '4'));
  const seed = Number(flag('seed', '2024'));
  const memPath = join(files, 'memory_evaluation.npz');
  const mem = loadSharedMemory(memPath, 784);
  const memLabels = readImageArray(memPath).labels!;
  const tg = readImageArray(join(files, 'targets_evaluation.npz'));
  const D = tg.height * tg.width;
  // The targets: a seeded choice, the same for every run; fixed binarization by target number.
  const rng = new Rng(seed, 'shared-memory-targets');
  const pick = rng.sample(tg.count, n);
  const targets = binarizeFixed(
    Uint8Array.from({ length: n * D }, (_, j) => tg.pixels[pick[Math.floor(j / D)]! * D + (j % D)]!),
    seed,
    { pixelsPerImage: D, maxValue: 255, imageIds: Array.from(pick) },
  );
  // Per target, an episode of the training protocol from the same entries: the target's class
  // (its first `shots` entries in a seeded order) and classes - 1 others.
  const byClass = new Map<string, number[]>();
  memLabels.forEach((c, i) => {
    let l = byClass.get(c);
    if (!l) byClass.set(c, (l = []));
    l.push(i);
  });
  const classNames = [...byClass.keys()];
  const E = classes * shots;
  const episode = new Float32Array(n * E * D);
  // Which entries have the target's class: for the share of targets whose argmax q(a | x) is one.
  const sharedMatch = new Uint8Array(n * mem.count);
  const episodeMatch = new Uint8Array(n * E);
  const erng = new Rng(seed, 'shared-memory-episodes');
  for (let b = 0; b < n; b++) {
    const own = tg.labels![pick[b]!]!;
    const others = Array.from(erng.sample(classNames.length, classes)).map((i) => classNames[i]!).filter((c) => c !== own).slice(0, classes - 1);
    const entries = [own, ...others].flatMap((c) => {
      const l = byClass.get(c)!;
      return Array.from(erng.sample(l.length, shots), (i) => l[i]!);
    });
    const order = erng.permutation(entries.length);
    for (let j = 0; j < entries.length; j++) if (order[j]! < shots) episodeMatch[b * E + j] = 1;
    for (let i = 0; i < mem.count; i++) if (memLabels[i] === own) sharedMatch[b * mem.count + i] = 1;
    for (let j = 0; j < entries.length; j++) episode.set(mem.data.subarray(entries[order[j]!]! * D, (entries[order[j]!]! + 1) * D), (b * classes * shots + j) * D);
  }
  const results: RunScores[] = [];
  for (const run of positional()) {
    const { ir, model, config } = loadTrained(run);
    const b = bindInputs(ir);
    const soft = readsSoft(ir);
    const score = async (memoryOf: (start: number, end: number) => RawBatch['inputs'][number] | undefined, match?: { mask: Uint8Array; size: number }) => {
      const out: number[] = [];
      const hits: number[] = [];
      const r = new Rng(seed, 'shared-memory-eval');
      for (let s = 0; s < n; s += 20) {
        const e = Math.min(n, s + 20);
        const m = memoryOf(s, e);
        const episodeInfo = match && { batch: e - s, memorySize: match.size, matchMask: match.mask.subarray(s * match.size, e * match.size) };
        const raw: RawBatch = {
          inputs: [{ name: b.data, data: targets.subarray(s * D, e * D), shape: [e - s, D], plates: ['batch'] }, ...(m ? [m] : [])],
          // evalBatch reads the batch, the memory size and which entries match each target.
          ...(episodeInfo ? { episode: episodeInfo as unknown as NonNullable<RawBatch['episode']> } : {}),
        };
        const res = await evalBatch(ir, model, raw, samples, r, soft);
        out.push(...res.nll);
        if (res.hit) hits.push(...res.hit);
        process.stderr.write(`\r${run}: ${out.length}/${n}   `);
      }
      return { nll: out, hits };
    };
    const hasMemory = b.memory !== undefined && !ir.noMemory?.length;
    const shared = await score((s, e) => (b.memory ? { name: b.memory, data: mem.data, shape: [mem.count, D], plates: [] } : undefined), hasMemory ? { mask: sharedMatch, size: mem.count } : undefined);
    const ep = hasMemory
      ? await score((s, e) => ({ name: b.memory!, data: episode.subarray(s * E * D, e * E * D), shape: [e - s, E, D], plates: ['batch'] }), { mask: episodeMatch, size: E })
      : shared;
    process.stderr.write('\n');
    results.push({
      run,
      model: ir.name,
      control: !hasMemory,
      trainedWith: config.data.memory ? `shared memory ${config.data.memory.path}` : `episodes ${config.data.classes}x${config.data.shots}`,
      shared: shared.nll,
      episode: ep.nll,
      ...(hasMemory ? { sharedHits: shared.hits, episodeHits: ep.hits } : {}),
    });
    model.dispose();
  }
  const out = flag('out', 'shared_memory_eval.json')!;
  writeFileSync(out, JSON.stringify({ targets: n, samples, classes, shots, seed, memory: { path: memPath, entries: mem.count }, results }, null, 1));
  process.stderr.write(`wrote ${out}\n`);
}

/** A run's kind, from how it was trained: the rows of the report. */
function kindOf(x: RunScores): string {
  return x.control ? 'no memory (control)' : x.trainedWith.startsWith('shared') ? 'trained with the shared memory' : `trained on ${x.trainedWith}`;
}

/** Per-target mean over runs (seeds) of the same kind. */
function meanOver(xs: number[][]): number[] {
  return xs[0]!.map((_, t) => xs.reduce((s, x) => s + x[t]!, 0) / xs.length);
}

function report(): void {
  const all: RunScores[] = [];
  let head: { targets: number; samples: number; memory: { entries: number }; classes: number; shots: number } | undefined;
  for (const file of positional()) {
    const r = JSON.parse(readFileSync(file, 'utf8')) as NonNullable<typeof head> & { results: RunScores[] };
    head ??= r;
    all.push(...r.results);
  }
  if (!head) throw new Error('report: name the JSON files of eval');
  console.log(`${head.targets} targets (Omniglot evaluation alphabets, drawers 16..20), ${head.samples} importance samples; NLL in nats, mean ± standard error over targets\n`);
  console.log(`| run | kind | NLL, shared memory (${head.memory.entries} entries) | NLL, episode memory (${head.classes} x ${head.shots}) | argmax q(a \\| x) of the target's class: shared / episode |`);
  console.log('| --- | --- | ---: | ---: | ---: |');
  const pct = (h?: number[]) => (h && h.length ? `${(100 * meanSe(h).mean).toFixed(1)}%` : '-');
  for (const x of all) {
    const a = meanSe(x.shared);
    const e = meanSe(x.episode);
    console.log(`| ${x.run} | ${kindOf(x)} | ${a.mean.toFixed(2)} ± ${a.se.toFixed(2)} | ${e.mean.toFixed(2)} ± ${e.se.toFixed(2)} | ${pct(x.sharedHits)} / ${pct(x.episodeHits)} |`);
  }
  // Paired per target: each kind's NLL averaged over its seeds, then differences target by target.
  const kinds = [...new Set(all.map(kindOf))];
  const per = new Map(kinds.map((k) => [k, all.filter((x) => kindOf(x) === k)]));
  const cell = (k: string, mem: 'shared' | 'episode') => meanOver(per.get(k)!.map((x) => x[mem]));
  console.log('\nPaired differences (row minus column, per target, seeds averaged; negative: the row is better):\n');
  console.log('| row | column | shared memory | episode memory | seeds (row, column) |');
  console.log('| --- | --- | ---: | ---: | --- |');
  for (let i = 0; i < kinds.length; i++) {
    for (let j = i + 1; j < kinds.length; j++) {
      const [ki, kj] = [kinds[i]!, kinds[j]!];
      const d = (mem: 'shared' | 'episode') => {
        const a = cell(ki, mem);
        const b = cell(kj, mem);
        const s = meanSe(a.map((v, t) => v - b[t]!));
        return `${s.mean.toFixed(2)} ± ${s.se.toFixed(2)}`;
      };
      console.log(`| ${ki} | ${kj} | ${d('shared')} | ${d('episode')} | ${per.get(ki)!.length}, ${per.get(kj)!.length} |`);
    }
  }
  // Seed to seed: the spread of each kind's mean NLL, a check on the per-target standard errors.
  console.log('\nEach seed\'s mean NLL (shared / episode memory):\n');
  for (const k of kinds) console.log(`- ${k}: ${per.get(k)!.map((x) => `${meanSe(x.shared).mean.toFixed(2)} / ${meanSe(x.episode).mean.toFixed(2)}`).join('; ')}`);
}

if (cmd === 'make') make();
else if (cmd === 'eval') await evaluate();
else if (cmd === 'report') report();
else {
  process.stderr.write('usage: shared_memory.ts make|eval|report (see the comment at the top)\n');
  process.exit(2);
}
