/**
 * Lake's one-shot classification runs on Omniglot (Lake, Salakhutdinov & Tenenbaum 2015,
 * "Human-level concept learning through probabilistic program induction", Science 350): 20 runs of
 * 20-way one-shot classification, each WITHIN one alphabet of the evaluation set, the support
 * images drawn by one drawer and the queries by another. Within an alphabet the characters share
 * strokes and style, so this is harder than n-way episodes of characters from mixed alphabets.
 *
 * The original run files (`all_runs.zip`, fixed characters and drawers per run) are not among the
 * data here, so the runs are drawn by the same protocol with a fixed seed: run r uses evaluation
 * alphabet r (the 20 evaluation alphabets, one run each), 20 of its characters at random, and two
 * distinct drawers at random, one for the 20 supports (the memory, shuffled) and one for the 20
 * queries. A query is classified by argmax q(a | x, memory) over the supports: 400 trials.
 */
import type { EpisodeBatch } from '../data/episodes.ts';
import { renderPixels } from '../data/binarize.ts';
import { gatherImages, pixelsOf } from '../data/types.ts';
import type { Omniglot } from '../data/omniglot.ts';
import { Rng } from '../random/rng.ts';

export const LAKE_WAYS = 20;

/** A random k-subset of 0..n-1, in random order (Fisher-Yates on a copy). */
function choose(rng: Rng, n: number, k: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

/** The 20 runs as episode batches: batch = the run's 20 queries, each with the run's 20 supports as memory. */
export function lakeRuns(set: Omniglot, seed: number): EpisodeBatch[] {
  const rng = new Rng(seed, 'lake-runs');
  const pixelRng = new Rng(seed, 'lake-pixels');
  const D = pixelsOf(set);
  const side = Math.round(Math.sqrt(D));
  const perChar = set.drawersPerCharacter;
  const evaluation = set.alphabets.filter((a) => a.set === 'images_evaluation');
  return evaluation.map((alphabet) => {
    const ways = Math.min(LAKE_WAYS, alphabet.count);
    const chars = choose(rng, alphabet.count, ways).map((c) => alphabet.first - 1 + c); // 0-based character ids
    const [supportDrawer, queryDrawer] = choose(rng, perChar, 2) as [number, number];
    const order = choose(rng, ways, ways); // memory slot j holds character chars[order[j]]
    const supportIds = order.map((c) => chars[c]! * perChar + supportDrawer);
    const queryIds = chars.map((c) => c * perChar + queryDrawer);
    const render = (ids: number[]) => renderPixels(gatherImages(set, ids), { fixed: seed }, { rng: pixelRng, imageIds: ids, pixelsPerImage: D, maxValue: set.maxValue });
    const support = render(supportIds);
    const queries = render(queryIds);
    const B = ways;
    const memory = new Float32Array(B * ways * D);
    const memoryClass = new Int32Array(B * ways);
    const memoryIndex = new Int32Array(B * ways);
    const matchMask = new Uint8Array(B * ways);
    const matches = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      memory.set(support, b * ways * D);
      for (let j = 0; j < ways; j++) {
        memoryClass[b * ways + j] = chars[order[j]!]!;
        memoryIndex[b * ways + j] = supportIds[j]!;
        if (order[j] === b) {
          matchMask[b * ways + j] = 1;
          matches[b] = j;
        }
      }
    }
    return {
      batch: B,
      memorySize: ways,
      shots: 1,
      pixels: D,
      height: side,
      width: side,
      targets: queries,
      memory,
      memoryClass,
      memoryIndex,
      targetClass: Int32Array.from(chars),
      targetIndex: Int32Array.from(queryIds),
      matches,
      matchMask,
    };
  });
}
