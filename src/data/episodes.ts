/**
 * Few-shot episodes for memory-augmented generative models, as in Variational Memory
 * Addressing (Bornschein, Mnih, Zoran & Rezende 2017, arXiv:1709.07116): a memory holds
 * `shots` examples of each of `classes` classes plus `distractors` entries from other classes;
 * the target is another example (a different drawer, for Omniglot) of one of those classes.
 *
 * Everything is generic over a {@link LabelledImageSet}: for Omniglot a class is a character,
 * for MNIST a digit. Samplers are seeded and reproducible; the episode structure and the
 * pixel binarization use separate streams, so changing the pixel mode does not change which
 * images are drawn.
 *
 * Shapes (row-major, D = height*width pixels, M = classes*shots + distractors):
 *   targets [B, D], memory [B, M, D], memoryClass/memoryIndex [B, M], targetClass/targetIndex [B],
 *   matches [B, shots] (memory slots holding the target's class), matchMask [B, M].
 */
import { DataError } from './paths.ts';
import { renderPixels, type PixelMode } from './binarize.ts';
import { Rng, type RngState, type Seed } from '../random/rng.ts';
import type { ImageSet, LabelledImageSet } from './types.ts';
import { gatherImages, pixelsOf } from './types.ts';

/**
 * Which images (and classes) a sampler draws from: a named split of the set
 * (`'background'`, `'evaluation'`, `'train'`, `'test'`), or an object restricting images
 * (a split name or explicit indices; default all) and/or classes (a class partition, e.g.
 * digits 0-4 for training and 5-9 for testing).
 */
export type SplitSpec =
  | string
  | { readonly images?: string | ArrayLike<number>; readonly classes?: ArrayLike<number> };

function namedSplit(set: ImageSet, name: string): Int32Array {
  const s = set.splits[name];
  if (!s) {
    throw new DataError(
      `${set.name} has no split '${name}' (available: ${Object.keys(set.splits).join(', ') || 'none'})`,
    );
  }
  return s;
}

/** The image indices a {@link SplitSpec} selects (all images when undefined). */
export function resolveSplit(set: ImageSet, split?: SplitSpec): Int32Array {
  if (split === undefined) {
    const all = new Int32Array(set.count);
    for (let i = 0; i < set.count; i++) all[i] = i;
    return all;
  }
  if (typeof split === 'string') return namedSplit(set, split);
  let images: Int32Array;
  if (split.images === undefined) images = resolveSplit(set);
  else if (typeof split.images === 'string') images = namedSplit(set, split.images);
  else images = Int32Array.from(split.images);
  for (const i of images) {
    if (!(i >= 0 && i < set.count)) throw new RangeError(`split: image index ${i} out of range [0, ${set.count})`);
  }
  if (split.classes === undefined) return images;
  const labels = (set as Partial<LabelledImageSet>).labels;
  if (!labels) throw new DataError(`${set.name} has no labels, so a split cannot select classes`);
  const keep = new Set<number>(Array.from(split.classes));
  return images.filter((i) => keep.has(labels[i]!));
}

/** Image indices of a split grouped by class: class -> its images (in split order). */
export function groupByClass(set: LabelledImageSet, images: Int32Array): Map<number, Int32Array> {
  const lists = new Map<number, number[]>();
  for (const i of images) {
    const c = set.labels[i]!;
    let l = lists.get(c);
    if (!l) lists.set(c, (l = []));
    l.push(i);
  }
  const out = new Map<number, Int32Array>();
  for (const [c, l] of [...lists.entries()].sort((a, b) => a[0] - b[0])) out.set(c, Int32Array.from(l));
  return out;
}

export interface EpisodeConfig {
  readonly set: LabelledImageSet;
  /** C: classes in memory per episode. */
  readonly classes: number;
  /** S: examples of each class in memory. */
  readonly shots: number;
  /** Extra memory entries drawn from images of other classes. Default 0. */
  readonly distractors?: number;
  readonly split?: SplitSpec;
  readonly seed?: Seed;
  /** Default 'dynamic'. */
  readonly pixels?: PixelMode;
}

export interface EpisodeBatch {
  readonly batch: number;
  /** M = classes*shots + distractors. */
  readonly memorySize: number;
  readonly shots: number;
  /** D = height*width. */
  readonly pixels: number;
  readonly height: number;
  readonly width: number;
  /** [B, D] */
  readonly targets: Float32Array;
  /** [B, M, D] */
  readonly memory: Float32Array;
  /** [B, M]: data-set class of each memory entry. */
  readonly memoryClass: Int32Array;
  /** [B, M]: data-set image index of each memory entry. */
  readonly memoryIndex: Int32Array;
  /** [B] */
  readonly targetClass: Int32Array;
  /** [B] */
  readonly targetIndex: Int32Array;
  /** [B, S]: the memory slots (0..M-1, ascending) whose class is the target's. */
  readonly matches: Int32Array;
  /** [B, M]: 1 where the memory entry has the target's class. */
  readonly matchMask: Uint8Array;
}

/** The saved state of a sampler's two streams. */
export interface SamplerState {
  readonly structure: RngState;
  readonly pixels: RngState;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

/** One episode's indices (no pixels yet). */
interface EpisodeIndices {
  readonly memoryIndex: Int32Array;
  readonly memoryClass: Int32Array;
  readonly targetIndex: number;
  readonly targetClass: number;
}

/** The pool an episode sampler draws from, grouped and checked once. */
class EpisodePool {
  readonly images: Int32Array;
  readonly byClass: Map<number, Int32Array>;
  /** Classes with at least `need` images. */
  readonly eligible: Int32Array;

  constructor(
    readonly set: LabelledImageSet,
    split: SplitSpec | undefined,
    readonly classes: number,
    readonly shots: number,
    readonly distractors: number,
    need: number,
  ) {
    this.images = resolveSplit(set, split);
    this.byClass = groupByClass(set, this.images);
    this.eligible = Int32Array.from([...this.byClass.entries()].filter(([, l]) => l.length >= need).map(([c]) => c));
    if (this.eligible.length < classes) {
      throw new DataError(
        `${set.name}: an episode needs ${classes} classes with at least ${need} images each ` +
          `(${shots} shots + 1 target), but the split has only ${this.eligible.length} such classes`,
      );
    }
  }

  /**
   * `count` distinct images of classes outside `exclude`, drawn uniformly from the split.
   * @throws DataError when there are not enough.
   */
  distractorImages(rng: Rng, exclude: Set<number>, count: number): Int32Array {
    if (count === 0) return new Int32Array(0);
    let available = this.images.length;
    for (const c of exclude) available -= this.byClass.get(c)?.length ?? 0;
    if (available < count) {
      throw new DataError(`${this.set.name}: ${count} distractors requested but only ${available} images of other classes`);
    }
    const labels = this.set.labels;
    const out = new Int32Array(count);
    if (count * 2 <= available) {
      // Rejection sampling: cheap when the episode's classes are a small part of the split.
      const used = new Set<number>();
      let k = 0;
      while (k < count) {
        const i = this.images[rng.int(this.images.length)]!;
        if (exclude.has(labels[i]!) || used.has(i)) continue;
        used.add(i);
        out[k++] = i;
      }
      return out;
    }
    const candidates = this.images.filter((i) => !exclude.has(labels[i]!));
    const pick = rng.sample(candidates.length, count);
    for (let k = 0; k < count; k++) out[k] = candidates[pick[k]!]!;
    return out;
  }
}

/**
 * Samples batches of few-shot episodes: per episode, `classes` distinct classes; for each,
 * `shots` distinct images in memory (plus, for the target class, one more distinct image as
 * the target); `distractors` images of other classes; memory slots in random order.
 */
export class EpisodeSampler {
  readonly set: LabelledImageSet;
  readonly classes: number;
  readonly shots: number;
  readonly distractors: number;
  readonly memorySize: number;
  readonly pixelMode: PixelMode;
  private readonly pool: EpisodePool;
  private readonly rng: Rng;
  private readonly pixelRng: Rng;

  constructor(cfg: EpisodeConfig) {
    checkCount('classes', cfg.classes, 1);
    checkCount('shots', cfg.shots, 1);
    checkCount('distractors', cfg.distractors ?? 0, 0);
    this.set = cfg.set;
    this.classes = cfg.classes;
    this.shots = cfg.shots;
    this.distractors = cfg.distractors ?? 0;
    this.memorySize = this.classes * this.shots + this.distractors;
    this.pixelMode = cfg.pixels ?? 'dynamic';
    this.pool = new EpisodePool(cfg.set, cfg.split, cfg.classes, cfg.shots, this.distractors, cfg.shots + 1);
    const seed = cfg.seed ?? 0;
    this.rng = new Rng(seed, 'episodes');
    this.pixelRng = new Rng(seed, 'episode-pixels');
  }

  /** The number of classes available to episodes in this split. */
  get availableClasses(): number {
    return this.pool.eligible.length;
  }

  private sampleOne(): EpisodeIndices {
    const { rng, pool, classes: C, shots: S, memorySize: M } = this;
    const cls = rng.sample(pool.eligible.length, C);
    const targetWay = rng.int(C);
    const memoryIndex = new Int32Array(M);
    const memoryClass = new Int32Array(M);
    const slots = rng.permutation(M);
    let targetIndex = -1;
    let targetClass = -1;
    const exclude = new Set<number>();
    let k = 0;
    for (let w = 0; w < C; w++) {
      const c = pool.eligible[cls[w]!]!;
      exclude.add(c);
      const imgs = pool.byClass.get(c)!;
      const pick = rng.sample(imgs.length, w === targetWay ? S + 1 : S);
      for (let s = 0; s < S; s++) {
        memoryIndex[slots[k]!] = imgs[pick[s]!]!;
        memoryClass[slots[k]!] = c;
        k++;
      }
      if (w === targetWay) {
        targetIndex = imgs[pick[S]!]!;
        targetClass = c;
      }
    }
    const distract = pool.distractorImages(rng, exclude, this.distractors);
    for (let j = 0; j < distract.length; j++) {
      memoryIndex[slots[k]!] = distract[j]!;
      memoryClass[slots[k]!] = this.set.labels[distract[j]!]!;
      k++;
    }
    return { memoryIndex, memoryClass, targetIndex, targetClass };
  }

  /** The next `batch` episodes. */
  next(batch: number): EpisodeBatch {
    checkCount('batch', batch, 1);
    const { memorySize: M, shots: S } = this;
    const D = pixelsOf(this.set);
    const memoryIndex = new Int32Array(batch * M);
    const memoryClass = new Int32Array(batch * M);
    const targetIndex = new Int32Array(batch);
    const targetClass = new Int32Array(batch);
    const matches = new Int32Array(batch * S);
    const matchMask = new Uint8Array(batch * M);
    for (let b = 0; b < batch; b++) {
      const e = this.sampleOne();
      memoryIndex.set(e.memoryIndex, b * M);
      memoryClass.set(e.memoryClass, b * M);
      targetIndex[b] = e.targetIndex;
      targetClass[b] = e.targetClass;
      let s = 0;
      for (let m = 0; m < M; m++) {
        if (e.memoryClass[m] === e.targetClass) {
          matchMask[b * M + m] = 1;
          matches[b * S + s++] = m;
        }
      }
    }
    const ctx = (ids: Int32Array) => ({
      rng: this.pixelRng,
      imageIds: ids,
      pixelsPerImage: D,
      maxValue: this.set.maxValue,
    });
    const targets = renderPixels(gatherImages(this.set, targetIndex), this.pixelMode, ctx(targetIndex));
    const memory = renderPixels(gatherImages(this.set, memoryIndex), this.pixelMode, ctx(memoryIndex));
    return {
      batch,
      memorySize: M,
      shots: S,
      pixels: D,
      height: this.set.height,
      width: this.set.width,
      targets,
      memory,
      memoryClass,
      memoryIndex,
      targetClass,
      targetIndex,
      matches,
      matchMask,
    };
  }

  state(): SamplerState {
    return { structure: this.rng.state(), pixels: this.pixelRng.state() };
  }

  setState(s: SamplerState): void {
    this.rng.setState(s.structure);
    this.pixelRng.setState(s.pixels);
  }
}

export interface SharedMemoryConfig extends EpisodeConfig {
  /** B: the number of targets sharing the memory. */
  readonly targets: number;
}

export interface SharedMemoryEpisode {
  readonly batch: number;
  readonly memorySize: number;
  readonly shots: number;
  readonly pixels: number;
  readonly height: number;
  readonly width: number;
  /** [M, D] */
  readonly memory: Float32Array;
  /** [M] */
  readonly memoryClass: Int32Array;
  /** [M] */
  readonly memoryIndex: Int32Array;
  /** [B, D] */
  readonly targets: Float32Array;
  /** [B] */
  readonly targetClass: Int32Array;
  /** [B] */
  readonly targetIndex: Int32Array;
  /** [B, S]: memory slots holding each target's class. */
  readonly matches: Int32Array;
  /** [B, M] */
  readonly matchMask: Uint8Array;
}

/**
 * One memory for a whole batch (test-time addressing at large M, e.g. up to thousands of
 * entries from unseen characters): `classes` classes x `shots` images + `distractors`, and
 * `targets` distinct target images drawn uniformly from the images of those classes that are
 * not in memory.
 */
export function sharedMemoryEpisode(cfg: SharedMemoryConfig): SharedMemoryEpisode {
  checkCount('classes', cfg.classes, 1);
  checkCount('shots', cfg.shots, 1);
  checkCount('targets', cfg.targets, 1);
  const D0 = cfg.distractors ?? 0;
  checkCount('distractors', D0, 0);
  const set = cfg.set;
  const C = cfg.classes;
  const S = cfg.shots;
  const B = cfg.targets;
  const M = C * S + D0;
  const pool = new EpisodePool(set, cfg.split, C, S, D0, S + 1);
  const seed = cfg.seed ?? 0;
  const rng = new Rng(seed, 'shared-episode');
  const pixelRng = new Rng(seed, 'shared-episode-pixels');

  const cls = rng.sample(pool.eligible.length, C);
  const slots = rng.permutation(M);
  const memoryIndex = new Int32Array(M);
  const memoryClass = new Int32Array(M);
  const leftovers: number[] = [];
  const exclude = new Set<number>();
  let k = 0;
  for (let w = 0; w < C; w++) {
    const c = pool.eligible[cls[w]!]!;
    exclude.add(c);
    const imgs = pool.byClass.get(c)!;
    const perm = rng.permutation(imgs.length);
    for (let j = 0; j < imgs.length; j++) {
      const i = imgs[perm[j]!]!;
      if (j < S) {
        memoryIndex[slots[k]!] = i;
        memoryClass[slots[k]!] = c;
        k++;
      } else leftovers.push(i);
    }
  }
  if (leftovers.length < B) {
    throw new DataError(
      `${set.name}: ${B} targets requested but the ${C} memory classes have only ${leftovers.length} images outside memory`,
    );
  }
  const distract = pool.distractorImages(rng, exclude, D0);
  for (let j = 0; j < distract.length; j++) {
    memoryIndex[slots[k]!] = distract[j]!;
    memoryClass[slots[k]!] = set.labels[distract[j]!]!;
    k++;
  }
  const pick = rng.sample(leftovers.length, B);
  const targetIndex = new Int32Array(B);
  const targetClass = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    targetIndex[b] = leftovers[pick[b]!]!;
    targetClass[b] = set.labels[targetIndex[b]!]!;
  }
  // Slots of each class, computed once.
  const slotsOf = new Map<number, number[]>();
  for (let m = 0; m < M; m++) {
    const c = memoryClass[m]!;
    if (!exclude.has(c)) continue;
    let l = slotsOf.get(c);
    if (!l) slotsOf.set(c, (l = []));
    l.push(m);
  }
  const matches = new Int32Array(B * S);
  const matchMask = new Uint8Array(B * M);
  for (let b = 0; b < B; b++) {
    const l = slotsOf.get(targetClass[b]!)!;
    for (let s = 0; s < S; s++) {
      matches[b * S + s] = l[s]!;
      matchMask[b * M + l[s]!] = 1;
    }
  }
  const D = pixelsOf(set);
  const mode = cfg.pixels ?? 'dynamic';
  const ctx = (ids: Int32Array) => ({ rng: pixelRng, imageIds: ids, pixelsPerImage: D, maxValue: set.maxValue });
  const memory = renderPixels(gatherImages(set, memoryIndex), mode, ctx(memoryIndex));
  const targets = renderPixels(gatherImages(set, targetIndex), mode, ctx(targetIndex));
  return {
    batch: B,
    memorySize: M,
    shots: S,
    pixels: D,
    height: set.height,
    width: set.width,
    memory,
    memoryClass,
    memoryIndex,
    targets,
    targetClass,
    targetIndex,
    matches,
    matchMask,
  };
}

export interface BatchSamplerConfig {
  readonly set: ImageSet;
  readonly split?: SplitSpec;
  readonly seed?: Seed;
  /** Default 'dynamic'. */
  readonly pixels?: PixelMode;
}

export interface ImageBatch {
  readonly batch: number;
  readonly pixels: number;
  readonly height: number;
  readonly width: number;
  /** [B, D] */
  readonly images: Float32Array;
  /** [B]: data-set image indices. */
  readonly indices: Int32Array;
  /** [B]: classes, when the set is labelled. */
  readonly labels?: Int32Array;
}

export interface BatchSamplerState {
  readonly epoch: number;
  readonly position: number;
  readonly pixels: RngState;
}

/**
 * Plain minibatches for models without memory: epochs of a seeded random permutation of the
 * split (sampling without replacement; a batch may run across an epoch boundary).
 */
export class BatchSampler {
  readonly set: ImageSet;
  readonly indices: Int32Array;
  readonly pixelMode: PixelMode;
  private readonly seed: Seed;
  private readonly pixelRng: Rng;
  private order: Int32Array;
  private epochNo = 0;
  private position = 0;

  constructor(cfg: BatchSamplerConfig) {
    this.set = cfg.set;
    this.indices = resolveSplit(cfg.set, cfg.split);
    if (this.indices.length === 0) throw new DataError(`${cfg.set.name}: the split selects no images`);
    this.pixelMode = cfg.pixels ?? 'dynamic';
    this.seed = cfg.seed ?? 0;
    this.pixelRng = new Rng(this.seed, 'batch-pixels');
    this.order = this.permutationFor(0);
  }

  private permutationFor(epoch: number): Int32Array {
    return new Rng(this.seed, `batch-order-${epoch}`).permutation(this.indices.length);
  }

  /** Completed passes over the split. */
  get epoch(): number {
    return this.epochNo;
  }

  next(batch: number): ImageBatch {
    checkCount('batch', batch, 1);
    const idx = new Int32Array(batch);
    for (let b = 0; b < batch; b++) {
      if (this.position === this.order.length) {
        this.epochNo++;
        this.position = 0;
        this.order = this.permutationFor(this.epochNo);
      }
      idx[b] = this.indices[this.order[this.position++]!]!;
    }
    return makeImageBatch(this.set, idx, this.pixelMode, this.pixelRng);
  }

  state(): BatchSamplerState {
    return { epoch: this.epochNo, position: this.position, pixels: this.pixelRng.state() };
  }

  setState(s: BatchSamplerState): void {
    if (!Number.isSafeInteger(s.position) || s.position < 0 || s.position > this.indices.length) {
      throw new RangeError(`BatchSampler.setState: position ${s.position} is not within the split's ${this.indices.length} images`);
    }
    this.epochNo = s.epoch;
    this.position = s.position;
    this.order = this.permutationFor(s.epoch);
    this.pixelRng.setState(s.pixels);
  }
}

function makeImageBatch(set: ImageSet, idx: Int32Array, mode: PixelMode, rng: Rng): ImageBatch {
  const D = pixelsOf(set);
  const images = renderPixels(gatherImages(set, idx), mode, {
    rng,
    imageIds: idx,
    pixelsPerImage: D,
    maxValue: set.maxValue,
  });
  const labels = (set as Partial<LabelledImageSet>).labels;
  const base = { batch: idx.length, pixels: D, height: set.height, width: set.width, images, indices: idx };
  return labels ? { ...base, labels: Int32Array.from(idx, (i) => labels[i]!) } : base;
}

/**
 * The split in its stored order, in batches (the last may be smaller): for evaluation,
 * normally with `pixels: { fixed: seed }`.
 */
export function* orderedBatches(
  set: ImageSet,
  opts: { readonly split?: SplitSpec; readonly batch: number; readonly pixels?: PixelMode; readonly seed?: Seed },
): Generator<ImageBatch> {
  checkCount('batch', opts.batch, 1);
  const indices = resolveSplit(set, opts.split);
  const rng = new Rng(opts.seed ?? 0, 'ordered-pixels');
  for (let start = 0; start < indices.length; start += opts.batch) {
    yield makeImageBatch(set, indices.slice(start, start + opts.batch), opts.pixels ?? 'dynamic', rng);
  }
}
