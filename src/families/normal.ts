/**
 * Normal(loc, scale): independent Gaussians over the event axis, reparameterized
 * (`loc + scale * eps`). Also written `Normal(E)`, E's last axis holding the mean and (before
 * softplus) the scale as halves: the form a net's output takes. The default guide of every real
 * latent (src/check/derive.ts names it through `GAUSSIAN`). The tensor math is `Normal` of
 * ./distributions.ts, whose log density is one fused kernel on cpu and wasm (./fused.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { kl, Normal } from './distributions.ts';
import type { FamilySpec } from './types.ts';

export const normalFamily: FamilySpec = {
  name: 'Normal',
  params: [
    { name: 'loc', constraint: 'real' },
    { name: 'scale', constraint: 'positive' },
  ],
  support: 'real',
  discrete: false,
  reparameterized: true,
  typing: 'halves',
  guide: 'gaussian',
  usage: '`Normal(E)` (E holds mean and scale halves), `Normal(loc, scale)` or `Normal(loc: E1, scale: E2)`',
  create: ([loc, scale]) => {
    const d = new Normal(loc!, scale!);
    return {
      logProb: (x) => d.logProb(x),
      sample: (r, s) => d.sample(r, s),
      rsample: (r, s) => d.rsample(r, s),
      rsampleScored: (r, s) => d.rsampleScored(r, s),
      mean: () => tf.broadcastTo(loc!, d.shape),
      entropy: () => d.entropy(),
    };
  },
  kl: ([lp, sp], [lq, sq]) => kl(new Normal(lp!, sp!), new Normal(lq!, sq!)),
  torch: `class Normal(rt.LocScale):

    def log_prob(self, x):
        loc, scale = self.params
        return -0.5 * ((x - loc) / scale) ** 2 - (torch.log(scale) + 0.5 * rt.LOG_2PI)

    def noise(self, noise, shape):
        return noise.normal(shape)
`,
};

/** The family a derived guide of a real latent takes (src/check/derive.ts) and soft attention's query (src/ir/addressing.ts). */
export const GAUSSIAN = normalFamily.name;
