/**
 * The memory budget (src/check/budget.ts): figures from the IR, and a refusal with the figures
 * when a tensor is too long for a backend or the total exceeds the memory available.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { budgetProblem, estimateBudget, MAX_TENSOR_ELEMENTS, sizesOf, WASM_MAX_BYTES } from '../../src/check/budget.ts';
import { frontEnd } from '../../src/check/pipeline.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');
const irOf = (text: string) => {
  const r = frontEnd(text);
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.ir!;
};

describe('estimateBudget', () => {
  it('counts the parameters of the nets and params, with gradient and Adam slots', () => {
    const ir = irOf(readFileSync(join(MODELS, 'vae.vmm'), 'utf8'));
    const f = estimateBudget(ir, sizesOf(ir.train));
    const expected = ir.nets.reduce((a, n) => a + n.paramCount, 0);
    expect(f.parameters).toBe(expected);
    expect(f.parameterBytes).toBe(expected * 4 * 4);
    expect(estimateBudget(ir, { ...sizesOf(ir.train), adam: false }).parameterBytes).toBe(expected * 4 * 2);
  });

  it('grows the activations with batch and k, and with the memory for nets mapped over it', () => {
    const ir = irOf(readFileSync(join(MODELS, 'vma_mnist.vmm'), 'utf8'));
    const s = sizesOf(ir.train);
    const base = estimateBudget(ir, s).activationBytes;
    expect(estimateBudget(ir, { ...s, batch: s.batch * 2 }).activationBytes).toBeGreaterThan(1.9 * base);
    expect(estimateBudget(ir, { ...s, memorySize: s.memorySize * 10 }).activationBytes).toBeGreaterThan(2 * base);
  });

  it('every model in models/ fits in the wasm heap at its settings', () => {
    for (const m of ['vae', 'vma_mnist', 'vma_omniglot', 'gmm', 'sbn']) {
      const ir = irOf(readFileSync(join(MODELS, `${m}.vmm`), 'utf8'));
      expect(budgetProblem(ir, sizesOf(ir.train), WASM_MAX_BYTES), m).toBeUndefined();
    }
  });
});

describe('budgetProblem', () => {
  const vae = () => irOf(readFileSync(join(MODELS, 'vae.vmm'), 'utf8'));

  it('refuses a param of 2^40 entries, naming it, with the figures', () => {
    const text = `model p
size M
data x : binary[4]
memory mem : binary[M, 4]
param table : real[1099511627776, 4]
net dec = mlp(4, 8, 4)
discrete address a ~ Categorical(table)
observe x ~ Bernoulli(logits: dec(table[a]))
train { estimator = vimco(k: 2) }
`;
    const r = frontEnd(text);
    expect(r.ir).toBeUndefined();
    const errors = r.diagnostics.filter((x) => x.severity === 'error');
    expect(errors.map((x) => x.code)).toEqual(['VMM3020']);
    expect(errors[0]!.message).toMatch(/^the model does not fit: param `table` needs a tensor of 4,398,046,511,104 numbers, .* 4,398,046,545,356 parameters \(64\.0 TiB with gradients and Adam slots\)/);
    expect(text.slice(errors[0]!.span.start, errors[0]!.span.end)).toBe('table');
  });

  it('refuses a huge batch by the length of one activation tensor', () => {
    const ir = vae();
    const p = budgetProblem(ir, { ...sizesOf(ir.train), batch: 10_000_000 });
    expect(p?.message).toMatch(/at batch 10000000 x k 1 is a tensor of [\d,]+ numbers, more than the 2,147,483,647/);
    expect(p?.figures.largest.elements).toBeGreaterThan(MAX_TENSOR_ELEMENTS);
    expect(p?.culprit).toBeUndefined();
  });

  it('refuses a total above the memory given, with parameters, bytes and activations in one line', () => {
    const ir = vae();
    const p = budgetProblem(ir, { ...sizesOf(ir.train), batch: 100_000, k: 20 }, WASM_MAX_BYTES);
    expect(p?.message).toMatch(/^the model does not fit: training needs about [\d.]+ (GiB|TiB), more than the 4\.0 GiB available; 667,248 parameters \([\d.]+ MiB with gradients and Adam slots\), activations about .* at batch 100000, k 20, memory 8; lower the batch size, k or the memory size$/);
    expect(p?.message).not.toContain('\n');
  });

  it('accepts the same model at its own settings', () => {
    const ir = vae();
    expect(budgetProblem(ir, sizesOf(ir.train), WASM_MAX_BYTES)).toBeUndefined();
  });
});
