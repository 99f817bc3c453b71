import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { printIr } from '../../src/ir/print.ts';
import type { IrExpr, IrProgram, IrSite } from '../../src/ir/types.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const ir = (src: string): IrProgram => {
  const r = frontEnd(src);
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.ir!;
};
const site = (p: IrProgram, name: string, part: 'model' | 'guide' = 'model') =>
  (part === 'model' ? p.model : p.guide.stmts).find((s): s is IrSite => s.stmt === 'site' && s.name === name)!;

describe('toIr', () => {
  const vma = ir(readFileSync(join(ROOT, 'models', 'vma_mnist.vmm'), 'utf8'));

  it('folds consts and counts net parameters', () => {
    expect(vma.consts).toEqual({ D: 784, Z: 32, H: 128 });
    const h = vma.nets.find((n) => n.name === 'h')!;
    expect(h.layers).toEqual([{ kind: 'linear', in: 784, out: 256 }, { kind: 'act', fn: 'relu' }, { kind: 'linear', in: 256, out: 128 }]);
    expect(h.paramCount).toBe(784 * 256 + 256 + 256 * 128 + 128);
  });

  it('splits Normal(e) into loc = e[:n] and scale = softplus(e[n:]) + 1e-4, sharing e', () => {
    const z = site(vma, 'z');
    expect(z.dist).toMatchObject({ kind: 'family', family: 'Normal', paramNames: ['loc', 'scale'] });
    if (z.dist.kind !== 'family') return;
    const [loc, scale] = z.dist.params as [IrExpr, IrExpr];
    expect(loc).toMatchObject({ op: 'slice', from: 0, to: 32 });
    expect(scale).toMatchObject({ op: 'binary', fn: 'add', left: { op: 'builtin', fn: 'softplus', args: [{ op: 'slice', from: 32, to: 64 }] }, right: { op: 'const', value: 1e-4 } });
    if (loc.op !== 'slice' || scale.op !== 'binary' || scale.left.op !== 'unary' || scale.left.arg.op !== 'slice') return;
    expect(scale.left.arg.arg).toBe(loc.arg);
    expect(loc.type.shape).toEqual([{ c: 32, terms: {} }]);
  });

  it('keeps symbolic sizes and the addressed memory', () => {
    const a = site(vma, 'a');
    expect(a).toMatchObject({ role: 'address', discrete: true, dist: { kind: 'Categorical', n: { c: 0, terms: { M: 1 } }, memory: 'mem' } });
    const ga = site(vma, 'a', 'guide');
    expect(ga.dist).toMatchObject({ kind: 'Categorical', logits: { op: 'matmul' } });
    expect(vma.guide.derived).toBe(false);
  });

  it('turns Bernoulli probs into logits', () => {
    const p = ir('data x : binary[4]\nparam p : real[4]\nobserve x ~ Bernoulli(probs: sigmoid(p))\n');
    const x = site(p, 'x');
    expect(x.dist).toMatchObject({ kind: 'family', family: 'Bernoulli', paramNames: ['logits'] });
    if (x.dist.kind === 'family') expect(x.dist.params[0]).toMatchObject({ op: 'binary', fn: 'sub', left: { op: 'builtin', fn: 'log' } });
  });

  it('includes a derived guide, marked derived', () => {
    const src = readFileSync(join(ROOT, 'models', 'vma_mnist.vmm'), 'utf8').replace(/guide \{[^}]*\}/, '').replace(/net (h|enc) = .*\n/g, '');
    const p = ir(src);
    expect(p.guide.derived).toBe(true);
    expect(p.guide.stmts.map((s) => s.name)).toEqual(['a', 'z']);
    expect(p.nets.map((n) => n.name)).toContain('qa_h');
  });

  it('is plain data, printed stably', () => {
    expect(JSON.parse(JSON.stringify(vma))).toEqual(vma);
    expect(printIr(vma)).toBe(printIr(JSON.parse(JSON.stringify(vma)) as IrProgram));
    expect(printIr(vma)).toContain('  address a : cat(M) ~ Categorical(n: M, uniform, memory: mem)  [discrete]');
  });
});
