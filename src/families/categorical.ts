/**
 * Categorical(logits): one of N categories, the index into the last axis of its logits; or uniform
 * over N categories or over the entries of a memory (`Categorical(mem)`, the form an address takes).
 * Enumerable: the lowering keeps the normalized log-probabilities as its parameter and reads a value's
 * log-probability by index; `enumerate` sums over the N values and soft attention weighs entries by
 * their probabilities. Relaxed by Gumbel-softmax (`RelaxedCategorical`, the ExpConcrete density) for
 * the `relaxed` estimator. The tensor math is in ./distributions.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Categorical, kl, RelaxedCategorical } from './distributions.ts';
import type { FamilySpec } from './types.ts';

export const categoricalFamily: FamilySpec = {
  name: 'Categorical',
  params: [{ name: 'logits', constraint: 'real' }],
  support: 'category',
  discrete: true,
  reparameterized: false,
  typing: 'categories',
  guide: 'logits',
  usage: '`Categorical(mem)`, `Categorical(N)` or `Categorical(logits: E)`',
  create: ([logits]) => {
    const d = new Categorical(logits!);
    return { logProb: (x) => d.logProb(x), sample: (r, s) => d.sample(r, s), mean: () => tf.argMax(logits!, -1), entropy: () => d.entropy() };
  },
  kl: ([lp], [lq]) => kl(new Categorical(lp!), new Categorical(lq!)),
  enumerable: {
    size: ([logits]) => logits![logits!.length - 1]!,
    table: ([logits]) => tf.logSoftmax(logits!),
  },
  relaxation: {
    rsample: (table, temperature, rng, sampleShape) => new RelaxedCategorical(table, temperature).rsample(rng, sampleShape),
    logProb: (table, temperature, y) => new RelaxedCategorical(table, temperature).logProb(y),
  },
};

/**
 * The family of an address: by the language's definition an address is a Categorical over the
 * entries of a memory (src/check/sites.ts, VMM2052), and the IR's node for the categories forms
 * (`Categorical(mem)`, `Categorical(N)`, `Categorical(logits: E)`) is bound to this entry.
 */
export const ADDRESS_FAMILY = categoricalFamily.name;
