/**
 * Synthetic associative recall (the needle-in-a-haystack task of Titans, Behrouz et al. 2025,
 * arXiv:2501.00663, in miniature): an episode is a stream of N key-value pairs with distinct
 * random K-bit keys (K <= 64) and random V-bit values; the query is one of the stored keys, chosen
 * uniformly, and the target its value. Deterministic from a seed and a stream name, resumable.
 *
 * Layout: `pairs [B, N, K + V]` (each entry its key bits, then its value bits), `keys [B, K]`,
 * `values [B, V]`, `index [B]` (which pair was queried).
 */
import { Rng, type RngState } from '../random/rng.ts';

export interface RecallBatch {
  batch: number;
  pairs: Float32Array;
  keys: Float32Array;
  values: Float32Array;
  index: Int32Array;
}

export interface RecallOptions {
  keyBits: number;
  valueBits: number;
  /** N: pairs per episode. At most 2^keyBits (keys are distinct). */
  pairs: number;
  seed: number;
  stream?: string;
}

export interface RecallStream {
  readonly options: RecallOptions;
  next(batch: number): RecallBatch;
  state(): RngState;
  setState(s: RngState): void;
}

export function recallEpisodes(opts: RecallOptions): RecallStream {
  const { keyBits: K, valueBits: V, pairs: N } = opts;
  if (!(Number.isInteger(K) && K >= 1 && K <= 64)) throw new RangeError(`recallEpisodes: keyBits must be an integer in [1, 64], got ${K}`);
  if (!(Number.isInteger(V) && V >= 1)) throw new RangeError(`recallEpisodes: valueBits must be a positive integer, got ${V}`);
  if (!(Number.isInteger(N) && N >= 1 && N <= 2 ** Math.min(K, 30))) throw new RangeError(`recallEpisodes: pairs must be in [1, 2^keyBits = ${2 ** Math.min(K, 30)}], got ${N}`);
  const rng = new Rng(opts.seed, `recall-${opts.stream ?? 'train'}`);
  const E = K + V;
  return {
    options: opts,
    next(B: number): RecallBatch {
      const pairs = new Float32Array(B * N * E);
      const keys = new Float32Array(B * K);
      const values = new Float32Array(B * V);
      const index = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        // Up to 30 bits: N distinct codes drawn without replacement. Wider keys: uniform random
        // bits, a repeated key drawn again (two equal 31+-bit keys in one episode are rare).
        const codes = K <= 30 ? rng.sample(2 ** K, N) : undefined;
        const seen = new Set<string>();
        for (let n = 0; n < N; n++) {
          const at = (b * N + n) * E;
          if (codes) for (let i = 0; i < K; i++) pairs[at + i] = (codes[n]! >>> i) & 1;
          else {
            for (;;) {
              for (let i = 0; i < K; i++) pairs[at + i] = rng.next() < 0.5 ? 1 : 0;
              const code = pairs.subarray(at, at + K).join('');
              if (!seen.has(code)) {
                seen.add(code);
                break;
              }
            }
          }
          for (let j = 0; j < V; j++) pairs[at + K + j] = rng.next() < 0.5 ? 1 : 0;
        }
        const q = rng.int(N);
        index[b] = q;
        const at = (b * N + q) * E;
        keys.set(pairs.subarray(at, at + K), b * K);
        values.set(pairs.subarray(at + K, at + E), b * V);
      }
      return { batch: B, pairs, keys, values, index };
    },
    state: () => rng.state(),
    setState: (s) => rng.setState(s),
  };
}
