/**
 * A memory-budget refusal names the setting that dominates (issue #22): a 10^6-entry memory is
 * told to shrink the memory, not the batch or k.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { budgetProblem, sizesOf } from '../../src/check/budget.ts';
import { frontEnd } from '../../src/check/pipeline.ts';

const GiB4 = 4 * 2 ** 30;
const irOf = (name: string) => frontEnd(readFileSync(join(__dirname, '..', '..', 'models', `${name}.vmm`), 'utf8')).ir!;

describe('the budget advice names the dominating setting', () => {
  it('a tensor too large because of a 10^6-entry memory: lower the memory size', () => {
    const ir = irOf('vma_mnist');
    const p = budgetProblem(ir, { ...sizesOf(ir.train), memorySize: 1e6 }, GiB4);
    expect(p?.message).toContain('at batch 32 x k 4 with memory 1000000 is a tensor of');
    expect(p?.message).toMatch(/; lower the memory size \(it dominates: the batch size and k count less\)$/);
  });

  it('too many bytes because of the memory, of k, of the batch', () => {
    const ir = irOf('vsm_mnist');
    const sizes = sizesOf(ir.train);
    expect(budgetProblem(ir, { ...sizes, memorySize: 1e6 }, GiB4)?.message).toMatch(/; lower the memory size first \(it dominates\), then the batch size or k$/);
    expect(budgetProblem(ir, { ...sizes, k: 5000 }, GiB4)?.message).toMatch(/; lower k first \(it dominates\), then the batch size or the memory size$/);
    expect(budgetProblem(ir, { ...sizes, batch: 20000 }, GiB4)?.message).toMatch(/; lower the batch size, k or the memory size$/);
  });
});
