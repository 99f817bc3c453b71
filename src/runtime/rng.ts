/**
 * Seeds for the runtime's random draws.
 *
 * The generator itself is `Rng` (src/estimators/rng.ts): mulberry32, whose whole state is one
 * uint32, handing out one seed per tfjs random op. This module adds what a resumable run needs on
 * top of it:
 *
 * - `stepRng(master, step)`: a generator determined by the master seed and the step counter alone,
 *   so step t draws the same noise whether the run got there in one go or was resumed from a
 *   checkpoint (and whatever a previous step consumed).
 * - `deriveSeed(master, ...keys)`: a seed for a named purpose (init of a net, validation, data),
 *   independent of the order in which purposes ask for seeds.
 * - `RngState` / `rngState` / `rngFromState`: JSON-safe state for checkpoints.
 *
 * Mixing is the murmur3 32-bit finalizer (Appleby), applied to the seed and each key in turn.
 */
import { Rng } from '../estimators/rng.ts';

export { Rng };

/** Anything that hands out seeds for tfjs random ops (an `Rng`, or a test stub). */
export interface SeedSource {
  nextSeed(): number;
}

/**
 * The next seed for a tfjs random op, never 0: `tf.randomNormal` treats a seed of 0 as "no seed"
 * (`seed ? seed : Math.random()`), which would make that draw irreproducible.
 */
export function tfSeed(rng: SeedSource): number {
  return rng.nextSeed() || 0x9e3779b9;
}

/** JSON-safe generator state: the uint32 of `Rng.state`. */
export interface RngState {
  kind: 'mulberry32';
  state: number;
}

export function rngState(rng: Rng): RngState {
  return { kind: 'mulberry32', state: rng.state };
}

export function rngFromState(s: RngState): Rng {
  if (s.kind !== 'mulberry32' || !Number.isInteger(s.state) || s.state < 0 || s.state > 0xffffffff) {
    throw new Error(`rngFromState: not an Rng state: ${JSON.stringify(s)}`);
  }
  return Rng.fromState(s.state);
}

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashString(s: string): number {
  // FNV-1a, then the finalizer.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

/** A uint32 seed for (master, key1, key2, ...); keys are integers (reduced to 32 bits) or strings. */
export function deriveSeed(master: number, ...keys: (number | string)[]): number {
  if (!Number.isFinite(master)) throw new Error(`deriveSeed: master seed must be finite, got ${master}`);
  let h = fmix32((Math.trunc(master) >>> 0) ^ 0x9e3779b9);
  for (const k of keys) {
    let kv: number;
    if (typeof k === 'string') {
      kv = hashString(k);
    } else {
      if (!Number.isFinite(k)) throw new Error(`deriveSeed: key must be finite, got ${k}`);
      // Fold in the high bits too, so steps beyond 2^32 do not wrap onto earlier ones.
      const t = Math.trunc(k);
      kv = fmix32((t >>> 0) ^ fmix32(Math.floor(t / 4294967296) >>> 0));
    }
    h = fmix32((h ^ kv) >>> 0);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  return fmix32(h);
}

/** The generator for training step `step` of a run with seed `master` (independent of history). */
export function stepRng(master: number, step: number): Rng {
  return new Rng(deriveSeed(master, 'step', step));
}
