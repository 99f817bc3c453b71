/**
 * Poisson(rate): counts 0, 1, 2, ... with `log p(x) = x log λ - λ - log x!`, mean and variance λ.
 * For count data (events per window, spikes per bin) and count latents. Discrete with an unbounded
 * support: it has no `enumerable` (`enumerate` refuses a latent of it, VMM3010), and a latent of it
 * gets a score-function estimator (VIMCO by default); its derived guide is a Poisson whose rate comes
 * from an MLP (`guide: 'own'`). Draws are made on the host: Knuth's product of uniforms below λ = 10,
 * Hörmann's transformed rejection (PTRS) above (Insurance: Mathematics and Economics 12(1), 1993).
 */
import * as tf from '@tensorflow/tfjs-core';
import { hostRead } from '../kernels/readback.ts';
import type { Rng } from '../random/rng.ts';
import { lgamma } from './special.ts';
import type { FamilyDist, FamilySpec } from './types.ts';

/** A uniform in (0, 1), never 0 (its log is taken). */
const open01 = (rng: Rng): number => (rng.nextUint32() + 0.5) / 4294967296;

/** log k! by summation (k is small where it is asked: PTRS's rare slow path). */
function logFactorial(k: number): number {
  let s = 0;
  for (let i = 2; i <= k; i++) s += Math.log(i);
  return s;
}

/** One Poisson(λ) draw. */
export function poissonDraw(lam: number, rng: Rng): number {
  if (!(lam > 0)) return 0;
  if (lam < 10) {
    const limit = Math.exp(-lam);
    let k = 0;
    let p = open01(rng);
    while (p > limit) {
      k++;
      p *= open01(rng);
    }
    return k;
  }
  const slam = Math.sqrt(lam);
  const loglam = Math.log(lam);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = open01(rng) - 0.5;
    const v = open01(rng);
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + lam + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -lam + k * loglam - logFactorial(k)) return k;
  }
}

function poisson(rate: tf.Tensor): FamilyDist {
  const shape = rate.shape;
  return {
    logProb: (x) => tf.tidy(() => tf.sum(tf.sub(tf.sub(tf.mul(x, tf.log(rate)), rate), lgamma(tf.add(x, 1))), -1)),
    sample: (rng, sampleShape) => {
      const lam = hostRead(rate, 'sampling a Poisson', 'its draws are made on the host (rejection samplers); train a model with this latent on cpu or wasm') as Float32Array;
      const reps = tf.util.sizeFromShape(sampleShape);
      const out = new Float32Array(lam.length * reps);
      for (let r = 0; r < reps; r++) for (let i = 0; i < lam.length; i++) out[r * lam.length + i] = poissonDraw(lam[i]!, rng);
      return tf.tensor(out, [...sampleShape, ...shape], 'float32');
    },
    mean: () => tf.clone(rate),
  };
}

export const poissonFamily: FamilySpec = {
  name: 'Poisson',
  params: [{ name: 'rate', constraint: 'positive' }],
  support: 'count',
  discrete: true,
  reparameterized: false,
  torch: `class Poisson(rt.Family):
    def log_prob(self, x):
        (rate,) = self.params
        return x * torch.log(rate) - rate - torch.lgamma(x + 1)

    def sample(self, noise, shape):
        (rate,) = self.params
        return torch.poisson(rate.expand(shape), generator=noise.generator)
`,
  typing: 'elementwise',
  guide: 'own',
  usage: '`Poisson(rate)` or `Poisson(rate: E)`, rate > 0; values are counts 0, 1, 2, ... (real-typed)',
  reference: 'Johnson, Kemp & Kotz, Univariate Discrete Distributions, ch. 4',
  create: ([rate]) => poisson(rate!),
  /** KL(p || q) = λp log(λp / λq) - λp + λq, per coordinate. */
  kl: ([lp], [lq]) => tf.tidy(() => tf.sum(tf.add(tf.sub(tf.mul(lp!, tf.log(tf.div(lp!, lq!))), lp!), lq!), -1)),
};


