/**
 * The three families the language was built on. Their several written forms (`Categorical(mem)`,
 * `Normal(E)` with mean and scale halves, `Bernoulli(probs: p)`) are checked by
 * src/check/dists.ts and their hot-path lowering lives in src/lower/sites.ts; here they are
 * described like every other family and bound to the classes of ./distributions.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Bernoulli, Categorical, kl, Normal } from './distributions.ts';
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
  typing: 'builtin',
  usage: '`Normal(E)` (E holds mean and scale halves), `Normal(loc, scale)` or `Normal(loc: E1, scale: E2)`',
  create: ([loc, scale]) => {
    const d = new Normal(loc!, scale!);
    return { logProb: (x) => d.logProb(x), sample: (r, s) => d.sample(r, s), rsample: (r, s) => d.rsample(r, s), mean: () => tf.broadcastTo(loc!, d.shape), entropy: () => d.entropy() };
  },
  kl: ([lp, sp], [lq, sq]) => kl(new Normal(lp!, sp!), new Normal(lq!, sq!)),
};

export const bernoulliFamily: FamilySpec = {
  name: 'Bernoulli',
  params: [{ name: 'logits', constraint: 'real' }],
  support: 'binary',
  discrete: true,
  reparameterized: false,
  typing: 'builtin',
  usage: '`Bernoulli(logits: E)` or `Bernoulli(probs: E)`',
  create: ([logits]) => {
    const d = new Bernoulli(logits!);
    return { logProb: (x) => d.logProb(x), sample: (r, s) => d.sample(r, s), mean: () => d.probs(), entropy: () => d.entropy() };
  },
  kl: ([lp], [lq]) => kl(new Bernoulli(lp!), new Bernoulli(lq!)),
};

export const categoricalFamily: FamilySpec = {
  name: 'Categorical',
  params: [{ name: 'logits', constraint: 'real' }],
  support: 'category',
  discrete: true,
  reparameterized: false,
  typing: 'builtin',
  usage: '`Categorical(mem)`, `Categorical(N)` or `Categorical(logits: E)`',
  create: ([logits]) => {
    const d = new Categorical(logits!);
    return { logProb: (x) => d.logProb(x), sample: (r, s) => d.sample(r, s), mean: () => tf.argMax(logits!, -1), entropy: () => d.entropy() };
  },
  kl: ([lp], [lq]) => kl(new Categorical(lp!), new Categorical(lq!)),
};
