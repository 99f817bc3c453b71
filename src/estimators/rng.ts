/**
 * A small, explicit, serializable random number generator for reproducible sampling.
 *
 * tfjs random ops (`tf.randomUniform`, `tf.randomNormal`) accept a `seed`; an `Rng` hands out one
 * fresh 32-bit seed per op (`nextSeed()`), so a whole training step is reproducible from one integer
 * and nothing random is hidden in globals. The generator is mulberry32 (Tommy Ettinger's 32-bit
 * mixer): tiny, fast, statistically adequate for deriving seeds (tfjs itself then uses alea).
 *
 * State in, state out: `rng.state` is a plain number that can be stored in a trainer state or a
 * checkpoint and restored with `Rng.fromState(state)`.
 *
 * Sampling with these seeds is backend-independent: `tf.randomUniform`/`tf.randomNormal` draw in JS
 * (seedrandom alea) before uploading, so cpu and wasm see identical noise for identical seeds.
 */
/** mulberry32's state increment and output mix. */
const STEP = 0x6d2b79f5;
function mix(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

export class Rng {
  private s: number;

  /** `seed`: any finite number (fractions are truncated; it is reduced to 32 bits). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) {
      throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    }
    // Scramble the user seed once, so that seeds 0, 1, 2 ... give unrelated streams.
    this.s = Math.trunc(seed) >>> 0;
    this.s = (this.nextUint32() ^ 0x9e3779b9) >>> 0;
  }

  /** Restores a generator from `rng.state` (no scrambling: the stream continues exactly). */
  static fromState(state: number): Rng {
    const r = new Rng(0);
    r.s = state >>> 0;
    return r;
  }

  /** The full generator state (a uint32); `Rng.fromState(rng.state)` continues the same stream. */
  get state(): number {
    return this.s;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.s = (this.s + STEP) >>> 0;
    return mix(this.s);
  }

  /** A seed for one tfjs random op. */
  nextSeed(): number {
    return this.nextUint32();
  }

  /** A uniform float in [0, 1) (for plain-JS uses, e.g. tests). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * `n` uniforms in (0, 1) as float32, from a child stream seeded by one step of this one (so a
   * tensor of noise costs this generator one step, like a tfjs seed). Drawn here rather than by
   * `tf.randomUniform`, whose seeded generator (seedrandom's alea) costs ~50 ns per number in
   * JS: the Gumbel noise of sampling one address among 100k memory entries took longer than
   * scoring them. Values that round to 1 in float32 are left to the caller's clipping.
   */
  uniforms(n: number): Float32Array {
    const child = new Rng(this.nextUint32());
    const out = new Float32Array(n);
    // The stream on a local state rather than through `nextUint32` (a field write per number):
    // ~2x faster for millions of numbers.
    let s = child.s;
    for (let i = 0; i < n; i++) {
      s = (s + STEP) >>> 0;
      out[i] = (mix(s) + 0.5) / 4294967296;
    }
    return out;
  }

  /** An independent child generator (advances this one by one step). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }
}
