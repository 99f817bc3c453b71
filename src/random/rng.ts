/**
 * The one random-number generator of vmm (data pipelines, sampling noise, tfjs seeds,
 * initialization): xoshiro128**
 * (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018,
 * arXiv:1805.01407), seeded through splitmix32 so that any seed (number or string) and any
 * stream number give a well-mixed, non-zero 128-bit state.
 *
 * It is written by hand rather than taken from `seedrandom` because binarization draws one
 * number per pixel (millions per training step) and a 32-bit generator built on `Math.imul`
 * is several times faster than the general-purpose ones.
 *
 * The state is four uint32 words and can be saved and restored (`state()`, `Rng.fromState`):
 * the one exact-resume format of every stream (data, trainer, estimator noise) in a checkpoint.
 */

/** The saved state of an {@link Rng}: four uint32 words. */
export interface RngState {
  readonly s: readonly [number, number, number, number];
}

/** A seed: any finite number (its integer and fractional bits are hashed) or a string. */
export type Seed = number | string;

const TWO_POW_32 = 4294967296;
const INV_TWO_POW_32 = 1 / TWO_POW_32;
const INV_TWO_POW_31 = 2 / TWO_POW_32;

/** The murmur3 32-bit finalizer: a bijective mix of a uint32. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes a sequence of seed parts (numbers or strings) into one uint32.
 * Used to derive independent streams, e.g. `hashSeed(seed, 'binarize', imageIndex)`.
 */
export function hashSeed(...parts: readonly Seed[]): number {
  let h = 0x9e3779b9;
  const absorb = (w: number): void => {
    h = mix32((h ^ mix32(w >>> 0)) + 0x632be5ab);
  };
  for (const part of parts) {
    if (typeof part === 'string') {
      absorb(0x5eed5); // a tag so that 'a' and 97 differ
      for (let i = 0; i < part.length; i++) absorb(part.charCodeAt(i));
      absorb(part.length);
    } else {
      if (!Number.isFinite(part)) throw new RangeError(`hashSeed: seed must be finite, got ${part}`);
      // Hash the full 64-bit pattern of the double, so 1 and 1.5 and 2^40 all differ.
      const lo = part >>> 0;
      const hi = Math.floor(part / TWO_POW_32) >>> 0;
      const frac = Math.floor((part - Math.floor(part)) * TWO_POW_32) >>> 0;
      absorb(lo);
      absorb(hi);
      absorb(frac);
    }
  }
  return h >>> 0;
}

/** splitmix32 step: returns [output, nextState]. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z ^= z >>> 15;
  return [z >>> 0, next];
}

/** A seeded xoshiro128** generator. Not cryptographic. */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | null = null;

  /**
   * @param seed   any number or string; equal seeds give equal streams.
   * @param stream an optional stream label: `new Rng(seed, 'pixels')` is independent of
   *               `new Rng(seed, 'episodes')`.
   */
  constructor(seed: Seed = 0, stream?: Seed) {
    let st = stream === undefined ? hashSeed(seed) : hashSeed(seed, stream);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [out, next] = splitmix32(st);
      words.push(out);
      st = next;
    }
    this.setWords(words[0]!, words[1]!, words[2]!, words[3]!);
  }

  /** Restores a generator from a saved {@link RngState}. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** The current state (a copy), for checkpoints. */
  state(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3] };
  }

  /** Overwrites the current state. */
  setState(state: RngState): void {
    const [a, b, c, d] = state.s;
    this.setWords(a, b, c, d);
  }

  private setWords(a: number, b: number, c: number, d: number): void {
    this.s0 = a >>> 0;
    this.s1 = b >>> 0;
    this.s2 = c >>> 0;
    this.s3 = d >>> 0;
    // xoshiro must not start from the all-zero state.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 0x9e3779b9;
    this.spareNormal = null;
  }

  /** A uniform uint32 in [0, 2^32). */
  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = (s1 ^ n2) >>> 0;
    this.s0 = (s0 ^ n3) >>> 0;
    this.s2 = (n2 ^ t) >>> 0;
    this.s3 = ((n3 << 11) | (n3 >>> 21)) >>> 0;
    return result;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() * INV_TWO_POW_32;
  }

  /** A uniform integer in [0, n), without modulo bias. Requires 1 <= n <= 2^32. */
  int(n: number): number {
    if (!(n >= 1 && n <= TWO_POW_32) || !Number.isInteger(n)) {
      throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Rejection sampling: accept u < limit, where limit is the largest multiple of n <= 2^32.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const u = this.nextUint32();
      if (u < limit) return u % n;
    }
  }

  /** A standard normal draw (Marsaglia polar method). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    for (;;) {
      const u = 2 * this.next() - 1;
      const v = 2 * this.next() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s);
        this.spareNormal = v * f;
        return u * f;
      }
    }
  }

  /** Shuffles `arr` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /**
   * `k` distinct integers drawn uniformly from [0, n), in random order.
   * Uses Floyd's algorithm when k is small relative to n, a partial Fisher-Yates otherwise.
   */
  sample(n: number, k: number): Int32Array {
    if (!Number.isInteger(n) || !Number.isInteger(k) || k < 0 || k > n) {
      throw new RangeError(`Rng.sample: need integers 0 <= k <= n, got n=${n}, k=${k}`);
    }
    const out = new Int32Array(k);
    if (k * 4 < n) {
      const seen = new Set<number>();
      for (let j = n - k, i = 0; j < n; j++, i++) {
        const t = this.int(j + 1);
        const v = seen.has(t) ? j : t;
        seen.add(v);
        out[i] = v;
      }
      // Floyd's algorithm gives a uniform subset; shuffle for a uniform order too.
      return this.shuffle(out);
    }
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const tmp = p[i]!;
      p[i] = p[j]!;
      p[j] = tmp;
      out[i] = p[i]!;
    }
    return out;
  }

  /** A uniform float in [0, 1) (same as `next()`). */
  nextFloat(): number {
    return this.next();
  }

  /** A nonzero uint32 seed for one seeded tfjs op (tfjs treats a seed of 0 as "unseeded"). */
  nextSeed(): number {
    return this.nextUint32() || 0x9e3779b9;
  }

  /**
   * `n` uniforms in (0, 1) as float32, from a child stream seeded by this one (so a tensor of
   * noise costs this generator one step). Drawn here rather than by `tf.randomUniform`, whose
   * seeded generator costs ~50 ns per number in JS: the Gumbel noise of sampling one address among
   * 100k entries took longer than scoring them. The loop keeps the state in locals (~2x faster
   * for millions of numbers than calling `nextUint32`).
   */
  uniforms(n: number): Float32Array {
    const child = new Rng(this.nextUint32(), 'uniforms');
    let a = child.s0;
    let b = child.s1;
    let c = child.s2;
    let d = child.s3;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const m = Math.imul(b, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
      out[i] = (r + 0.5) * INV_TWO_POW_32;
    }
    return out;
  }

  /**
   * `n` standard normals as float32, from a child stream seeded by this one (one step of this
   * generator), by Marsaglia's polar method on pairs of its uniforms in (-1, 1): 1 M normals in
   * 27-42 ms (the generator's state in locals, as in `uniforms`, measured 29-32: not worth a
   * second copy of its step). Drawn here rather than by a seeded `tf.randomNormal` (seedrandom's
   * alea, ~75 ns a number: a reparameterized draw of 4 x 32 x 32, tensor made, 0.31 ms against
   * 0.15 here), and on the host, where the draw's density needs it.
   */
  normals(n: number): Float32Array {
    const child = new Rng(this.nextUint32(), 'normals');
    const out = new Float32Array(n);
    for (let i = 0; i < n; ) {
      const u = (child.nextUint32() + 0.5) * INV_TWO_POW_31 - 1;
      const v = (child.nextUint32() + 0.5) * INV_TWO_POW_31 - 1;
      const s = u * u + v * v;
      if (s >= 1) continue; // outside the unit disc: ~21% of pairs
      const f = Math.sqrt((-2 * Math.log(s)) / s);
      out[i++] = u * f;
      if (i < n) out[i++] = v * f;
    }
    return out;
  }

  /** A new generator derived from this one's current state and a label; advances this one. */
  fork(label: Seed = 0): Rng {
    return new Rng(hashSeed(this.nextUint32(), this.nextUint32(), this.nextUint32(), this.nextUint32()), label);
  }
}
