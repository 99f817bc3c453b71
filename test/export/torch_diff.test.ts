/**
 * `vmm export pytorch` against the tfjs lowering (issue #24): for each model and estimator, the
 * same weights, batch and draws give the same per-site log-densities, bound and gradients of the
 * estimator's loss to float32 tolerance (./torch_helpers.ts says how the draws are shared).
 * Needs a python with torch (CI: python3-torch; VMM_REQUIRE_TORCH=1 makes its absence a failure).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareWithTorch, relError, torchMissing, torchPython } from './torch_helpers.ts';

const has = torchPython() !== undefined;
if (!has && process.env['VMM_REQUIRE_TORCH'] === '1') throw new Error(`VMM_REQUIRE_TORCH=1: ${torchMissing}`);

/** model file, estimator override (kind, k, args), memory size. */
const CASES: Array<[string, { kind: string; k: number; args?: Record<string, string | number> }?]> = [
  ['models/vae.vmm'],
  ['models/vae.vmm', { kind: 'iwae', k: 4 }],
  ['models/gmm.vmm'],
  ['models/vma_mnist.vmm'],
  ['models/vma_mnist.vmm', { kind: 'vimco', k: 3, args: { baseline: 'arithmetic' } }],
  ['models/vma_mnist.vmm', { kind: 'reinforce', k: 2, args: { baseline: 'running' } }],
  ['models/vma_mnist.vmm', { kind: 'reinforce', k: 2, args: { baseline: 'nvil' } }],
  ['models/vma_mnist.vmm', { kind: 'rloo', k: 3 }],
  ['models/vma_mnist.vmm', { kind: 'rws', k: 3 }],
  ['models/vma_mnist.vmm', { kind: 'enumerate', k: 2 }],
  ['models/vma_mnist.vmm', { kind: 'enumerate', k: 1 }],
  ['models/bench_vma.vmm'],
  ['models/sbn.vmm'],
  ['models/vma_omniglot_mlp.vmm'],
  ['models/vma_omniglot.vmm'],
  ['models/vsm_mnist.vmm'],
  ['models/vsm_omniglot.vmm'],
];

describe.skipIf(!has)(`the PyTorch export against vmm (${has ? torchPython() : torchMissing})`, () => {
  for (const [file, est] of CASES) {
    const label = `${file}${est ? ` with ${est.kind}(k: ${est.k}${Object.entries(est.args ?? {}).map(([k, v]) => `, ${k}: ${v}`).join('')})` : ''}`;
    it(label, async () => {
      const settings = est ? { overrides: { estimator: est.kind, k: est.k, ...(est.args ? { args: est.args } : {}) } } : undefined;
      const { vmm, torch } = await compareWithTorch(readFileSync(file, 'utf8'), settings ? { settings } : {});
      expect([...torch.sites.keys()].sort()).toEqual([...vmm.sites.keys()].sort());
      for (const [site, v] of vmm.sites) expect(relError(torch.sites.get(site)!, v), `site ${site}`).toBeLessThan(1e-5);
      expect(relError(torch.bound, vmm.bound), 'bound').toBeLessThan(1e-5);
      expect([...torch.grads.keys()].sort()).toEqual([...vmm.grads.keys()].sort());
      for (const [name, g] of vmm.grads) expect(relError(torch.grads.get(name)!, g), `gradient of ${name}`).toBeLessThan(2e-4);
    }, 120_000);
  }
});
