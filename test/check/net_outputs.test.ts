/**
 * The checker on nets with several outputs (`tap`) and skip inputs (`skip`): types of tap reads
 * mapped over leading axes, skip inputs with the leading axes of the net's input, and the
 * pretty-printer round trip of `g(x).NAME` and `dec(h, NAME: v)`.
 */
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { formatType } from '../../src/ir/size.ts';
import { parse } from '../../src/ast/parse.ts';
import { printProgram } from '../../src/ast/print.ts';

const HEAD = `
model t
const D = 16
size M
data x : binary[D]
memory mem : binary[M, D]
net f = reshape(1, 4, 4) >> conv2d(1, 2) >> relu >> tap(s4) >> conv2d(2, 3, stride: 2) >> tap(s2) >> flatten >> linear(12, 4)
net dec = linear(4, 12) >> reshape(3, 2, 2) >> skip(s2, 3) >> deconv2d(6, 1, stride: 2) >> flatten
`;
const TAIL = `
latent z : real[2] ~ Normal(0, 1)
observe x ~ Bernoulli(logits: dec(f(x), s2: f(x).s2))
`;

function check(body: string) {
  const r = frontEnd(HEAD + body + TAIL);
  return { errors: r.diagnostics.filter((d) => d.severity === 'error'), ir: r.ir };
}

describe('tap reads and skip inputs', () => {
  it('a tap read maps over the leading axes of the application, like the final output', () => {
    const r = check('let e = f(mem).s2\nlet v = f(mem)\nlet w = dec(v, s2: e)\n');
    expect(r.errors).toEqual([]);
    const lets = new Map(r.ir!.model.filter((s) => s.stmt === 'let').map((s) => [s.name, formatType(s.type)]));
    expect(lets.get('e')).toBe('real[M, 3, 2, 2]');
    expect(lets.get('v')).toBe('real[M, 4]');
    expect(lets.get('w')).toBe('real[M, 16]');
  });

  it('a skip input must have the leading axes of the net input', () => {
    const r = check('let w = dec(f(mem), s2: f(x).s2)\n');
    expect(r.errors.map((d) => d.code)).toEqual(['VMM2037']);
    expect(r.errors[0]!.message).toMatch(/skip input `s2` of net `dec` expects \[M, 3, 2, 2\] \(the leading axes \[M\] of its input `f\(mem\)`, then the skip's shape\), found `f\(x\)\.s2` : real\[3, 2, 2\]/);
  });

  it('prints and parses back member reads and skip arguments (the formatter round trip)', () => {
    const src = HEAD + 'let e = (f(mem)).s2\nlet w = dec(f(x), s2: f(x).s2)[0]\n' + TAIL;
    const once = printProgram(parse(src).program);
    expect(once).toContain('let e = f(mem).s2');
    expect(once).toContain('let w = dec(f(x), s2: f(x).s2)[0]');
    expect(printProgram(parse(once).program)).toBe(once);
  });
});
