/**
 * Neural memory declarations (src/check/neural.ts): the IR they produce, `vmm check --explain`,
 * the printer round trip, and that one pass writes the memory once for the guide and the model.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/check/pipeline.ts';
import { explain } from '../../src/check/explain.ts';
import { printIr } from '../../src/ir/print.ts';
import { parse } from '../../src/ast/parse.ts';
import { printProgram, stripMeta } from '../../src/ast/print.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { runTrace } from '../../src/lower/trace.ts';
import { Rng } from '../../src/random/rng.ts';
import { fakeBatch } from '../lower/helpers.ts';
import { use } from '../runtime/backends.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models');
const recall = readFileSync(join(MODELS, 'titans_recall.vmm'), 'utf8');
const omniglot = readFileSync(join(MODELS, 'titans_omniglot.vmm'), 'utf8');

describe('neural memory declarations', () => {
  it('give the IR a neural memory with its write rule, and params for its initial weights', () => {
    const ir = frontEnd(recall).ir!;
    expect(ir.neural).toEqual([
      { name: 'nm', memory: 'pairs', widths: [2048, 256, 16], activation: 'tanh', key: 'kproj', value: 'vproj', gates: 'gate', chunk: 16, lr: 0.05, momentum: 0.5, forget: 0.01, writeBias: false, weights: ['nm.w0', 'nm.w1'], biases: ['nm.b0', 'nm.b1'] },
    ]);
    expect(ir.params.map((p) => p.name)).toEqual(['nm.w0', 'nm.b0', 'nm.w1', 'nm.b1']);
  });

  it('take a momentum cap in [0, 1]: eta = momentum * sigmoid(g1)', () => {
    const capped = frontEnd(omniglot).ir!.neural![0]!;
    expect(capped.momentum).toBe(0.5);
    expect(explain(frontEnd(omniglot).checked!)).toContain('eta = 0.5 * sigmoid(g1)');
    for (const bad of ['-0.5', '1.5']) {
      const r = frontEnd(omniglot.replace('momentum: 0.5', `momentum: ${bad}`));
      expect(r.diagnostics.find((d) => d.code === 'VMM2092')?.message).toContain('[0, 1]');
    }
  });

  it('express the delta rule: momentum 0, forget 0, biases not written (printed and explained)', () => {
    const delta = readFileSync(join(MODELS, 'titans_recall_delta.vmm'), 'utf8');
    const r = frontEnd(delta);
    const n = r.ir!.neural![0]!;
    expect([n.momentum, n.forget, n.writeBias, n.widths]).toEqual([0, 0, false, [4096, 16]]);
    expect(explain(r.checked!)).toContain('eta = 0, alpha = 0 with g = gate(entry); keys and queries L2-normalized; biases not written');
    expect(printIr(r.ir!)).toContain('momentum: 0, forget: 0, bias: 0)');
    // Defaults are not printed; the omniglot model keeps the paper's forgetting gate.
    expect(frontEnd(omniglot).ir!.neural![0]!).not.toHaveProperty('forget');
    for (const [opt, bad] of [['forget', '1.5'], ['bias', '0.5']] as const) {
      const bent = delta.replace(/^neural .*$/m, (line) => line.replace(`${opt}: 0`, `${opt}: ${bad}`));
      const d = frontEnd(bent).diagnostics.find((x) => x.code === 'VMM2092');
      expect(d?.message).toContain(`\`${opt}\``);
    }
  });

  it('are explained with their shapes and rule', () => {
    const text = explain(frontEnd(omniglot).checked!);
    expect(text).toContain('nm: mlp [128] -> [256] -> [128] (relu)');
    expect(text).toContain('writes the entries of `mem` : binary[M, 784], in chunks of 4');
    expect(text).toContain('key `kproj` [784] -> [128], value `vproj` [784] -> [128], gates `gate` [784] -> [3]');
  });

  it('print and parse back to the same AST', () => {
    const a = parse(omniglot).program;
    const b = parse(printProgram(a)).program;
    expect(stripMeta(b)).toEqual(stripMeta(a));
  });

  it('are written once per pass: the guide and the model read the same memory', async () => {
    await use('cpu');
    const ir = frontEnd(omniglot).ir!;
    const model = new CompiledModel(ir, 1);
    const calls = new Map<string, number>();
    const applyNet = (name: string, t: tf.Tensor) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return model.applyNet(name, t);
    };
    tf.tidy(() => {
      runTrace(ir, model.inputs(fakeBatch(ir, 2, { M: 3 })), applyNet, { k: 2, rng: new Rng(0), handlers: [] });
    });
    expect(calls.get('kproj')).toBe(1);
    expect(calls.get('vproj')).toBe(1);
    expect(calls.get('gate')).toBe(1);
    model.dispose();
  });
});
