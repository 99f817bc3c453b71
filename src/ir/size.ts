/**
 * Symbolic sizes: `c + sum_s terms[s] * s`, linear in the free size symbols (`M + 2`, `2*M`).
 * Products of two symbols are not representable; callers report them (VMM2012).
 * Also the printing of sizes and value types used by every diagnostic ("real[M + 2, 784]").
 */
import type { Shape, Size, ValueType } from './types.ts';

export function constSize(c: number): Size {
  return { c, terms: {} };
}

export function symSize(name: string): Size {
  return { c: 0, terms: { [name]: 1 } };
}

function normalize(terms: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(terms).sort()) if (terms[k] !== 0) out[k] = terms[k]!;
  return out;
}

export function addSize(a: Size, b: Size, sign = 1): Size {
  const terms: Record<string, number> = { ...a.terms };
  for (const [k, v] of Object.entries(b.terms)) terms[k] = (terms[k] ?? 0) + sign * v;
  return { c: a.c + sign * b.c, terms: normalize(terms) };
}

export function scaleSize(a: Size, k: number): Size {
  const terms: Record<string, number> = {};
  for (const [s, v] of Object.entries(a.terms)) terms[s] = v * k;
  return { c: a.c * k, terms: normalize(terms) };
}

/** True when the size mentions no size symbol. */
export function isConcrete(s: Size): boolean {
  return Object.values(s.terms).every((v) => v === 0);
}

export function sizeEq(a: Size, b: Size): boolean {
  if (a.c !== b.c) return false;
  const ka = Object.keys(normalize(a.terms));
  const kb = Object.keys(normalize(b.terms));
  if (ka.length !== kb.length) return false;
  return ka.every((k) => a.terms[k] === b.terms[k]);
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((s, i) => sizeEq(s, b[i]!));
}

/** `M + 2`, `2*M - 1`, `784`. Symbols in alphabetical order, then the constant. */
export function formatSize(s: Size): string {
  let out = '';
  for (const [sym, c] of Object.entries(normalize(s.terms))) {
    const mag = Math.abs(c);
    const term = mag === 1 ? sym : `${mag}*${sym}`;
    if (out === '') out = c < 0 ? `-${term}` : term;
    else out += c < 0 ? ` - ${term}` : ` + ${term}`;
  }
  if (out === '') return String(s.c);
  if (s.c > 0) out += ` + ${s.c}`;
  else if (s.c < 0) out += ` - ${-s.c}`;
  return out;
}

export function formatShape(shape: Shape): string {
  return `[${shape.map(formatSize).join(', ')}]`;
}

/** `binary[784]`, `real[M + 2, 784]`, `real` (a scalar), `cat(M)`, `int`. */
export function formatType(t: ValueType): string {
  const dims = t.shape.length ? formatShape(t.shape) : '';
  if (t.elem === 'cat') return `cat(${t.card ? formatSize(t.card) : '?'})${dims}`;
  return `${t.elem}${dims}`;
}

export function typeEq(a: ValueType, b: ValueType): boolean {
  if (a.elem !== b.elem || !shapeEq(a.shape, b.shape)) return false;
  if (a.elem === 'cat') return a.card !== undefined && b.card !== undefined && sizeEq(a.card, b.card);
  return true;
}

/** The concrete value of a size, or undefined if it mentions a symbol. */
export function concreteValue(s: Size): number | undefined {
  return isConcrete(s) ? s.c : undefined;
}

export function concreteShape(shape: Shape): number[] | undefined {
  const out: number[] = [];
  for (const s of shape) {
    const v = concreteValue(s);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

export function shapeOf(dims: number[]): Shape {
  return dims.map(constSize);
}

/** Halves a size if every coefficient is even (`2*Z` -> `Z`), else undefined. */
export function halveSize(s: Size): Size | undefined {
  if (s.c % 2 !== 0 || Object.values(s.terms).some((v) => v % 2 !== 0)) return undefined;
  return scaleSize(s, 0.5);
}

export function realType(shape: Shape): ValueType {
  return { elem: 'real', shape };
}
