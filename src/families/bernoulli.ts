/**
 * Bernoulli(logits) over each coordinate: values 0/1, `log p(x) = x l - softplus(l)`. Written with
 * its parameter named, `logits:` or `probs:` (turned into logits by the checker's IR). Not
 * reparameterized: a latent of it gets a score-function estimator. The tensor math is `Bernoulli`
 * of ./distributions.ts, whose log density is one fused kernel on cpu and wasm (./fused.ts).
 */
import { Bernoulli, kl } from './distributions.ts';
import type { FamilySpec } from './types.ts';

export const bernoulliFamily: FamilySpec = {
  name: 'Bernoulli',
  params: [{ name: 'logits', constraint: 'real' }],
  support: 'binary',
  discrete: true,
  reparameterized: false,
  typing: 'logitsOrProbs',
  guide: 'logits',
  usage: '`Bernoulli(logits: E)` or `Bernoulli(probs: E)`',
  create: ([logits]) => {
    const d = new Bernoulli(logits!);
    return { logProb: (x) => d.logProb(x), sample: (r, s) => d.sample(r, s), mean: () => d.probs(), entropy: () => d.entropy() };
  },
  kl: ([lp], [lq]) => kl(new Bernoulli(lp!), new Bernoulli(lq!)),
  torch: `class Bernoulli(rt.Family):
    def log_prob(self, x):
        (logits,) = self.params
        return x * logits - F.softplus(logits)

    def sample(self, noise, shape):
        (logits,) = self.params
        return (noise.uniform(shape) < torch.sigmoid(logits)).float()
`,
};
