/** `synthetic`: a seeded mixture of Gaussians (../synthetic.ts) in the model's data size; for models without a memory. */
import { RunError } from '../../diagnostics/errors.ts';
import { bindInputs } from '../bind.ts';
import type { GeneratedDatasetSpec } from '../spec.ts';
import { syntheticMixture } from '../synthetic.ts';

export const syntheticDataset: GeneratedDatasetSpec = {
  name: 'synthetic',
  kind: 'generated',
  summary: "a mixture of Gaussians in the model's data size, generated (models without a memory)",
  readsNoFiles: 'the synthetic data set is generated',
  open(ir, o, stream) {
    const b = bindInputs(ir);
    if (stream === undefined && b.memory) throw new RunError(`${ir.name} has a memory; the synthetic data set has no episodes (use mnist or omniglot)`);
    const gen = syntheticMixture({ dim: b.dataSize, seed: o.seed, ...(stream ? { stream } : {}) });
    return {
      next: (n) => ({ inputs: [{ name: b.data, data: gen.next(n), shape: [n, b.dataSize], plates: ['batch'] }] }),
      state: () => gen.state(),
      setState: (s) => gen.setState(s as ReturnType<typeof gen.state>),
      describe: `synthetic mixture of ${gen.components} Gaussians in ${b.dataSize} dimensions`,
    };
  },
};
