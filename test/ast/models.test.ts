import { describe, expect, it } from 'vitest';
import { parse } from '../../src/ast/parse.ts';
import { printProgram } from '../../src/ast/print.ts';
import { expectRoundTrip, modelFiles, spanProblems } from './helpers.ts';

const models = modelFiles();

describe('models/*.vmm', () => {
  it('has the example models', () => {
    expect(models.map(([f]) => f)).toEqual(
      expect.arrayContaining([
        'bench_vma.vmm',
        'gmm.vmm',
        'sbn.vmm',
        'vae.vmm',
        'vma_mnist.vmm',
        'vma_omniglot.vmm',
        'vma_omniglot_soft.vmm',
      ]),
    );
  });

  describe.each(models)('%s', (_file, source) => {
    it('parses without diagnostics', () => {
      const { program, diagnostics } = parse(source);
      expect(diagnostics).toEqual([]);
      expect(program.items.length).toBeGreaterThan(5);
      expect(program.items[0]!.kind).toBe('ModelHeader');
      expect(program.items[0]!.leading?.length).toBeGreaterThan(0); // the comment saying what the model is
    });

    it('has valid spans', () => {
      const { program } = parse(source);
      expect(spanProblems(program, source)).toEqual([]);
    });

    it('round-trips through the printer', () => {
      expectRoundTrip(source);
    });

    it('is already formatted (vmm fmt leaves it unchanged)', () => {
      expect(printProgram(parse(source).program)).toBe(source);
    });
  });
});
