/**
 * Beta(alpha, beta) on (0, 1): density `x^(α-1) (1-x)^(β-1) / B(α, β)`. For values in the unit
 * interval: grey-level pixels (a likelihood for non-binarized images), probabilities, mixing weights.
 *
 * Not reparameterized here: draws come from two Gamma draws, `x = G_α / (G_α + G_β)`, made on the
 * host with Marsaglia & Tsang's method (ACM TOMS 26(3), 2000), so a Beta latent of the guide gets
 * its gradient from a score-function estimator (it counts as a non-reparameterized site, like a
 * discrete one). The log density is differentiable in both parameters (lgamma in ./special.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { hostRead } from '../kernels/readback.ts';
import type { Rng } from '../random/rng.ts';
import { broadcastShapes } from './distributions.ts';
import { lbeta } from './special.ts';
import type { FamilyDist, FamilySpec } from './types.ts';

/** Values are kept this far inside (0, 1) so that their logs stay finite in float32. */
const EDGE = 1e-6;

/** A uniform in (0, 1), never 0 (its log is taken). */
const open01 = (rng: Rng): number => (rng.nextUint32() + 0.5) / 4294967296;

/** One standard Normal from two uniforms (Box-Muller). */
function normal(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(open01(rng))) * Math.cos(2 * Math.PI * open01(rng));
}

/** One Gamma(shape, 1) draw: Marsaglia & Tsang for shape >= 1, boosted by U^(1/shape) below 1. */
export function gammaDraw(shape: number, rng: Rng): number {
  if (shape < 1) return gammaDraw(shape + 1, rng) * Math.pow(open01(rng), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = open01(rng);
    if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

function beta(a: tf.Tensor, b: tf.Tensor): FamilyDist {
  const shape = broadcastShapes('Beta', a.shape, b.shape);
  return {
    logProb: (x) =>
      tf.tidy(() => {
        const v = tf.clipByValue(x, EDGE, 1 - EDGE);
        const lp = tf.sub(tf.add(tf.mul(tf.sub(a, 1), tf.log(v)), tf.mul(tf.sub(b, 1), tf.log1p(tf.neg(v)))), lbeta(a, b));
        return tf.sum(lp, -1);
      }),
    sample: (rng, sampleShape) => {
      const [av, bv] = tf.tidy(() => [hostRead(tf.broadcastTo(a, shape), 'sampling a Beta', 'its draws are made on the host (rejection samplers); train a model with this latent on cpu or wasm'), hostRead(tf.broadcastTo(b, shape), 'sampling a Beta')]) as [Float32Array, Float32Array];
      const per = av.length;
      const reps = tf.util.sizeFromShape(sampleShape);
      const out = new Float32Array(per * reps);
      for (let r = 0; r < reps; r++) {
        for (let i = 0; i < per; i++) {
          const ga = gammaDraw(av[i]!, rng);
          const gb = gammaDraw(bv[i]!, rng);
          out[r * per + i] = Math.min(Math.max(ga / (ga + gb), EDGE), 1 - EDGE);
        }
      }
      return tf.tensor(out, [...sampleShape, ...shape], 'float32');
    },
    mean: () => tf.tidy(() => tf.broadcastTo(tf.div(a, tf.add(a, b)), shape)),
  };
}

export const betaFamily: FamilySpec = {
  name: 'Beta',
  params: [
    { name: 'alpha', constraint: 'positive' },
    { name: 'beta', constraint: 'positive' },
  ],
  support: 'unit',
  discrete: false,
  reparameterized: false,
  torch: `class Beta(rt.Family):
    def log_prob(self, x):
        a, b = self.params
        v = x.clamp(1e-6, 1 - 1e-6)
        return (a - 1) * torch.log(v) + (b - 1) * torch.log1p(-v) - (torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b))

    def sample(self, noise, shape):
        a, b = self.params
        return torch.distributions.Beta(a.expand(shape), b.expand(shape)).sample()
`,
  typing: 'elementwise',
  guide: 'own',
  usage: '`Beta(alpha, beta)` or `Beta(alpha: E1, beta: E2)`, both > 0',
  reference: 'Johnson, Kotz & Balakrishnan, Continuous Univariate Distributions vol. 2, ch. 25',
  create: ([a, b]) => beta(a!, b!),
};
