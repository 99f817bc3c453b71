import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from '../../src/ast/parse.ts';
import { check } from '../../src/check/check.ts';
import { explain } from '../../src/check/explain.ts';
import { frontEnd } from '../../src/check/pipeline.ts';
import { addSize, constSize, formatSize, formatType, scaleSize, sizeEq, symSize } from '../../src/ir/size.ts';
import { closest, editDistance } from '../../src/check/suggest.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const model = (name: string) => readFileSync(join(ROOT, 'models', name), 'utf8');

function checkSource(src: string) {
  const p = parse(src);
  expect(p.diagnostics).toEqual([]);
  return check(p.program);
}

const BASE = `
const D = 8
size M
data x : binary[D]
memory mem : binary[M, D]
net h = mlp(D, 16, 4)
net dec = mlp(2 + 4, D)
net prior = linear(4, 4)
discrete address a ~ Categorical(mem)
let r = h(mem[a])
latent z ~ Normal(prior(r))
observe x ~ Bernoulli(logits: dec(concat(z, r)))
`;

describe('sizes', () => {
  it('are linear combinations of symbols, printed readably', () => {
    const m2 = addSize(symSize('M'), constSize(2));
    expect(formatSize(m2)).toBe('M + 2');
    expect(formatSize(addSize(scaleSize(symSize('M'), 2), constSize(1), -1))).toBe('2*M - 1');
    expect(formatSize(addSize(symSize('N'), scaleSize(symSize('M'), -1)))).toBe('-M + N');
    expect(formatSize(addSize(symSize('M'), symSize('M'), -1))).toBe('0');
    expect(sizeEq(m2, { c: 2, terms: { M: 1, N: 0 } })).toBe(true);
    expect(formatType({ elem: 'real', shape: [m2, constSize(784)] })).toBe('real[M + 2, 784]');
    expect(formatType({ elem: 'cat', shape: [], card: symSize('M') })).toBe('cat(M)');
    expect(formatType({ elem: 'real', shape: [] })).toBe('real');
  });
});

describe('suggestions', () => {
  it('count an adjacent swap as one edit', () => {
    expect(editDistance('mme', 'mem')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(closest('mme', ['x', 'mem', 'h'])).toBe('mem');
    expect(closest('zzzz', ['mem'])).toBeUndefined();
  });
});

describe('check', () => {
  it('accepts every model of models/ with no diagnostics', () => {
    for (const f of readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.vmm'))) {
      const r = checkSource(model(f));
      expect(r.diagnostics, f).toEqual([]);
      expect(r.checked, f).toBeDefined();
    }
  });

  it('reports independent errors together and suppresses cascades', () => {
    const src = BASE.replace('Categorical(mem)', 'Categorical(mme)').replace('net prior = linear(4, 4)', 'net prior = linear(4, 4)\nlet bad = h(x) + x');
    const r = checkSource(src);
    // `mme` is unknown (a, r, z then stay silent); `h(x) + x` is an independent shape error.
    expect(r.diagnostics.map((d) => d.code).sort()).toEqual(['VMM2001', 'VMM2020']);
    expect(r.checked).toBeUndefined();
  });

  it('gives symbolic sizes to stacked memories', () => {
    const src = BASE.replace('size M', 'size M\nparam slots : real[2, D]')
      .replace('Categorical(mem)', 'Categorical(stack(mem, slots))')
      .replace('h(mem[a])', 'h(stack(mem, slots)[a])');
    const r = checkSource(src);
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const a = r.checked!.model.find((s) => s.name === 'a')!;
    expect(formatType(a.type)).toBe('cat(M + 2)');
  });

  it('points a size mismatch at the smallest sub-expression, with a note at the declaration', () => {
    const src = BASE.replace('net dec = mlp(2 + 4, D)', 'net dec = mlp(2 + 4, 5)');
    const r = checkSource(src);
    expect(r.diagnostics).toHaveLength(1);
    const d = r.diagnostics[0]!;
    expect(d.code).toBe('VMM2054');
    expect(src.slice(d.span.start, d.span.end)).toBe('dec(concat(z, r))');
    expect(d.message).toContain('needs logits real[8], found');
    expect(src.slice(d.notes[0]!.span!.start, d.notes[0]!.span!.end)).toBe('x');
  });

  it('derives a guide when there is none and records why', () => {
    const r = checkSource(BASE);
    const c = r.checked!;
    expect(c.guide.derived).toBe(true);
    expect(c.guide.stmts.map((s) => s.name)).toEqual(['a', 'z']);
    expect(c.guide.notes.map((n) => n.site)).toEqual(['a', 'z']);
    expect(c.nets.filter((n) => n.derived).map((n) => n.name)).toEqual(['qa_h', 'q_z']);
    // z conditions on x and on the model's own read h(mem[a]).
    const qz = c.nets.find((n) => n.name === 'q_z')!;
    expect(qz.inShape).toEqual([8 + 4]);
    expect(qz.outShape).toEqual([4]);
  });

  it('picks fresh names for derived nets', () => {
    const r = checkSource(BASE.replace('net prior = linear(4, 4)', 'net prior = linear(4, 4)\nnet qa_h = linear(8, 8)\nlet _u = qa_h(x)'));
    expect(r.checked!.nets.filter((n) => n.derived).map((n) => n.name)).toEqual(['qa_h_2', 'q_z']);
  });

  it('fills training defaults: vimco(k: 4) with discrete latents, iwae(k: 1) without', () => {
    expect(checkSource(BASE).checked!.train.estimator).toMatchObject({ kind: 'vimco', k: 4 });
    const vae = model('vae.vmm').replace(/train \{[^}]*\}/, '');
    const t = checkSource(vae).checked!.train;
    expect(t.estimator).toMatchObject({ kind: 'iwae', k: 1 });
    expect(t).toMatchObject({ batch: 32, steps: 10000, optimizer: { kind: 'adam', lr: 1e-3 }, dataset: 'mnist' });
    expect(t.episodes).toEqual({ classes: 4, shots: 2, distractors: 0 });
  });

  it('optimizer clip: a positive global-norm bound reaches the IR; zero or a name is VMM3005/VMM3003', () => {
    const vae = model('vae.vmm').replace(/optimizer = [^\n]*/, 'optimizer = adam(lr: 1e-3, clip: 50)');
    expect(checkSource(vae).checked!.train.optimizer).toEqual({ kind: 'adam', lr: 1e-3, clip: 50 });
    const zero = checkSource(vae.replace('clip: 50', 'clip: 0'));
    expect(zero.diagnostics.map((d) => d.code)).toContain('VMM3005');
    expect(zero.diagnostics.find((d) => d.code === 'VMM3005')!.message).toContain('gradient norm');
    const unknown = checkSource(vae.replace('clip: 50', 'clipnorm: 50'));
    expect(unknown.diagnostics.length).toBeGreaterThan(0);
  });

  it('episodes min_shots: below shots it reaches the IR, equal to shots it is dropped, above shots it is VMM3005 at its value', () => {
    const mem = model('vma_mnist.vmm').replace(/episodes = [^\n]*/, 'episodes = episodes(classes: 2, shots: 4, min_shots: 1)');
    expect(checkSource(mem).checked!.train.episodes).toEqual({ classes: 2, shots: 4, distractors: 0, minShots: 1 });
    expect(checkSource(mem.replace('min_shots: 1', 'min_shots: 4')).checked!.train.episodes).toEqual({ classes: 2, shots: 4, distractors: 0 });
    const over = checkSource(mem.replace('min_shots: 1', 'min_shots: 5'));
    const d = over.diagnostics.find((x) => x.code === 'VMM3005')!;
    expect(d.message).toContain('`min_shots` (5) exceeds `shots` (4)');
    expect(mem.replace('min_shots: 1', 'min_shots: 5').slice(d.span.start, d.span.end)).toBe('5');
    expect(checkSource(mem.replace('min_shots: 1', 'min_shots: 0')).diagnostics.map((x) => x.code)).toContain('VMM3005');
  });

  it('never crashes on a model with any one line removed', () => {
    for (const f of readdirSync(join(ROOT, 'models')).filter((f) => f.endsWith('.vmm'))) {
      const lines = model(f).split('\n');
      for (let i = 0; i < lines.length; i++) {
        const src = [...lines.slice(0, i), ...lines.slice(i + 1)].join('\n');
        const r = frontEnd(src);
        for (const d of r.diagnostics) {
          expect(d.span.start).toBeGreaterThanOrEqual(0);
          expect(d.span.end).toBeLessThanOrEqual(src.length);
        }
      }
    }
  });
});

describe('explain', () => {
  it('describes sites, nets, the guide and the settings', () => {
    const text = explain(checkSource(model('vma_mnist.vmm')).checked!);
    expect(text).toContain('discrete address a ~ Categorical(mem)');
    expect(text).toContain('address a : cat(M); one of the M entries of `mem`; not reparameterizable: score function with the VIMCO leave-one-out baseline (k = 4, geometric)');
    expect(text).toContain('latent z : real[32]; continuous: reparameterized');
    expect(text).toMatch(/h\s+\[784\] -> \[128\]\s+233,856 params/);
    expect(text).toContain('guide (written in the file):');
    expect(text).toMatch(/steps = 3000\n/); // written in the file
    expect(text).toMatch(/optimizer = adam\(lr: 0\.001\)/);
  });

  it('prints a derived guide in .vmm syntax, marked as derived', () => {
    const text = explain(checkSource(BASE).checked!);
    expect(text).toContain('guide (derived by the compiler: the file has no guide block):');
    expect(text).toContain('net qa_h = mlp(8, 256, 128)');
    expect(text).toContain('a ~ Categorical(logits: qa_h(mem) @ qa_h(x))');
    expect(text).toContain('z ~ Normal(q_z(concat(x, h(mem[a]))))');
    expect(text).toContain('(derived for the guide)');
  });
});

describe('frontEnd', () => {
  it('stops after the parser when it reports errors', () => {
    const r = frontEnd('data x : binary[8\nlatent z ~ Normal(0, 1)');
    expect(r.diagnostics.every((d) => d.code.startsWith('VMM1'))).toBe(true);
    expect(r.checked).toBeUndefined();
    expect(r.ir).toBeUndefined();
  });

  it('stops after the checker when it reports errors, and keeps warnings otherwise', () => {
    expect(frontEnd('latent z ~ Normal(q, 1)').ir).toBeUndefined();
    const r = frontEnd(BASE + '\nconst UNUSED = 3\n');
    expect(r.ir).toBeDefined();
    expect(r.diagnostics.map((d) => d.code)).toEqual(['VMM2080']);
  });
});
