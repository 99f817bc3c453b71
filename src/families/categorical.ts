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
  // Like the lowering, the parameter kept is the table of normalized log-probabilities.
  torch: `class Categorical(rt.Family):
    enumerable = True

    def __init__(self, logits):
        super().__init__(torch.log_softmax(logits, -1))

    @classmethod
    def uniform(cls, n, device=None):
        c = cls.__new__(cls)
        rt.Family.__init__(c, torch.full((n,), -math.log(n), device=device))
        return c

    def log_prob(self, x):
        (table,) = self.params
        lead = torch.broadcast_shapes(tuple(table.shape[:-1]), tuple(x.shape))
        t = table.expand(*lead, table.shape[-1])
        return torch.gather(t, -1, x.expand(*lead).unsqueeze(-1)).squeeze(-1)

    def sample(self, noise, shape):
        (table,) = self.params
        return torch.argmax(table + noise.gumbel(tuple(shape) + (table.shape[-1],)), -1)
`,
  relaxation: {
    rsample: (table, temperature, rng, sampleShape) => new RelaxedCategorical(table, temperature).rsample(rng, sampleShape),
    logProb: (table, temperature, y) => new RelaxedCategorical(table, temperature).logProb(y),
    torch: `class RelaxedCategorical:
    """ExpConcrete (Maddison, Mnih & Teh 2016, arXiv:1611.00712): y = log_softmax((table + g) / temperature)."""

    @staticmethod
    def rsample(table, temperature, g):
        return torch.log_softmax((table + g) / temperature, -1)

    @staticmethod
    def noise_of(table, temperature, y):
        # the noise up to a constant per draw, which the log_softmax drops
        return temperature * y - table

    @staticmethod
    def log_prob(table, temperature, y):
        n = y.shape[-1]
        s = torch.log_softmax(table, -1) - y * temperature
        return s.sum(-1) - torch.logsumexp(s, -1) * n + (math.lgamma(n) + (n - 1) * math.log(temperature))
`,
  },
};

/**
 * The family of an address: by the language's definition an address is a Categorical over the
 * entries of a memory (src/check/sites.ts, VMM2052), and the IR's node for the categories forms
 * (`Categorical(mem)`, `Categorical(N)`, `Categorical(logits: E)`) is bound to this entry.
 */
export const ADDRESS_FAMILY = categoricalFamily.name;
