/**
 * Laplace(loc, scale): density `exp(-|x - loc| / scale) / (2 scale)` on the reals; heavier tails than
 * the Normal (robust likelihoods, sparse latents). Reparameterized by inverting the CDF:
 * `x = loc - scale sign(u) log(1 - 2|u|)`, u ~ Uniform(-1/2, 1/2).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';
import { stopGradient } from '../kernels/stop_gradient.ts';
import { broadcastShapes } from './distributions.ts';
import type { FamilyDist, FamilySpec } from './types.ts';

/** Uniforms in (-1/2, 1/2) kept away from the ends, where log(1 - 2|u|) is infinite. */
function centeredUniforms(rng: Rng, shape: number[]): tf.Tensor {
  const n = tf.util.sizeFromShape(shape);
  const u = rng.uniforms(n);
  for (let i = 0; i < n; i++) u[i] = Math.min(Math.max(u[i]! - 0.5, -0.5 + 1e-7), 0.5 - 1e-7);
  return tf.tensor(u, shape, 'float32');
}

function laplace(loc: tf.Tensor, scale: tf.Tensor): FamilyDist {
  const shape = broadcastShapes('Laplace', loc.shape, scale.shape);
  const rsample = (rng: Rng, sampleShape: number[]): tf.Tensor =>
    tf.tidy(() => {
      const u = centeredUniforms(rng, [...sampleShape, ...shape]);
      const e = tf.mul(tf.sign(u), tf.log1p(tf.mul(tf.abs(u), -2)));
      return tf.sub(loc, tf.mul(scale, e));
    });
  return {
    logProb: (x) => tf.tidy(() => tf.sum(tf.neg(tf.add(tf.div(tf.abs(tf.sub(x, loc)), scale), tf.log(tf.mul(scale, 2)))), -1)),
    rsample,
    sample: (rng, sampleShape) => tf.tidy(() => stopGradient(rsample(rng, sampleShape))),
    mean: () => tf.broadcastTo(loc, shape),
    entropy: () => tf.tidy(() => tf.sum(tf.broadcastTo(tf.add(tf.log(tf.mul(scale, 2)), 1), shape), -1)),
  };
}

export const laplaceFamily: FamilySpec = {
  name: 'Laplace',
  params: [
    { name: 'loc', constraint: 'real' },
    { name: 'scale', constraint: 'positive' },
  ],
  support: 'real',
  discrete: false,
  reparameterized: true,
  typing: 'elementwise',
  guide: 'gaussian',
  usage: '`Laplace(loc, scale)` or `Laplace(loc: E1, scale: E2)`, scale > 0',
  reference: 'Johnson, Kotz & Balakrishnan, Continuous Univariate Distributions vol. 2, ch. 24',
  create: ([loc, scale]) => laplace(loc!, scale!),
  /** KL(p || q) = log(b_q / b_p) + |μ_p - μ_q| / b_q + (b_p / b_q) exp(-|μ_p - μ_q| / b_p) - 1, per coordinate. */
  torch: `class Laplace(rt.LocScale):

    def log_prob(self, x):
        loc, scale = self.params
        return -(torch.abs(x - loc) / scale + torch.log(2 * scale))

    def noise(self, noise, shape):
        u = noise.uniform(shape) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * torch.abs(u))
`,
  kl: ([lp, bp], [lq, bq]) =>
    tf.tidy(() => {
      const d = tf.abs(tf.sub(lp!, lq!));
      const t = tf.add(tf.add(tf.log(tf.div(bq!, bp!)), tf.div(d, bq!)), tf.sub(tf.mul(tf.div(bp!, bq!), tf.exp(tf.neg(tf.div(d, bp!)))), 1));
      return tf.sum(t, -1);
    }),
};
