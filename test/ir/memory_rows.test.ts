/**
 * Where a memory's rows sit in the table an address ranges over: evaluation counts a few-shot hit
 * only when argmax q(a | x) is one of the memory's own rows, wherever learned entries are stacked.
 */
import { expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { memoryRowOffset } from '../../src/jobs/evaluate_run.ts';

const model = (table: string) => `
model rows
const D = 4
size M
data x : binary[D]
memory mem : binary[M, D]
param dummies : real[2, D]
param more : real[3, D]
net f = linear(D, D)
discrete address a ~ Categorical(${table})
observe x ~ Bernoulli(logits: f((${table})[a]))
`;

it.each([
  ['mem', 0],
  ['stack(mem, dummies)', 0],
  ['stack(dummies, mem)', 2],
  ['stack(dummies, more, mem)', 5],
  ['stack(stack(more, dummies), mem, dummies)', 5],
])('rows of the memory in %s start at %i', (table, offset) => {
  const r = frontEnd(model(table));
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(memoryRowOffset(r.ir!, 10)).toBe(offset);
});
