/**
 * A synthetic data set for models of continuous vectors (the Gaussian mixture in models/gmm.vmm):
 * a fixed mixture of three well-separated isotropic Gaussians (std 0.5) whose means lie on a
 * circle of radius 3 in the first two coordinates. Seeded and resumable.
 */
import { Rng, type RngState } from '../random/rng.ts';

export interface SyntheticMixture {
  readonly components: number;
  readonly means: Float32Array;
  next(n: number): Float32Array;
  state(): RngState;
  setState(s: RngState): void;
}

export function syntheticMixture(opts: { dim: number; seed: number; stream?: string; components?: number; std?: number }): SyntheticMixture {
  const K = opts.components ?? 3;
  const std = opts.std ?? 0.5;
  const D = opts.dim;
  const means = new Float32Array(K * D);
  for (let k = 0; k < K; k++) {
    means[k * D] = 3 * Math.cos((2 * Math.PI * k) / K);
    if (D > 1) means[k * D + 1] = 3 * Math.sin((2 * Math.PI * k) / K);
  }
  const rng = new Rng(opts.seed, `synthetic-${opts.stream ?? 'train'}`);
  return {
    components: K,
    means,
    next(n: number): Float32Array {
      const out = new Float32Array(n * D);
      for (let i = 0; i < n; i++) {
        const k = rng.int(K);
        for (let d = 0; d < D; d++) out[i * D + d] = means[k * D + d]! + std * rng.normal();
      }
      return out;
    },
    state: () => rng.state(),
    setState: (s) => rng.setState(s),
  };
}
