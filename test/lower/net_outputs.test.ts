/**
 * Nets with several outputs (`tap(NAME)`, read as `g(x).NAME`) and skip inputs (`skip(NAME, C)`,
 * passed as `dec(h, NAME: v)`): the U-Net-style connections of the VMA reimplementation's decoder
 * (models/vma_omniglot_paper.vmm).
 *
 * - lowering: taps have their declared shapes, equal the net cut at the tap, and come from the
 *   same pass as the final output; a skip joins channel-wise in channels-first order; leading axes
 *   map; every parameter gets a finite, non-zero gradient through taps and skips;
 * - evaluation: a read `f(mem[a]).s2` through a sampled address is `f(mem[a_k]).s2`, through soft
 *   weights `sum_i w_i f(mem_i).s2` (each output blended), and `f(x)`, `f(x).s2` share one pass;
 * - training: a tiny model with feature-map skips learns with hard (VIMCO) and soft addressing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { IrExpr, IrLayer, IrNet } from '../../src/ir/types.ts';
import { applyNet, applyNetOutputs, createNetParams, layerOutputShape, paramCount } from '../../src/lower/nets.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { evaluate, type EvalContext } from '../../src/lower/evaluate.ts';
import { selectBackend } from '../../src/runtime/backend.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { applySettings } from '../../src/check/settings.ts';
import { withAddressing } from '../../src/ir/addressing.ts';
import { Rng } from '../../src/random/rng.ts';
import { fakeBatch, irOf } from './helpers.ts';

beforeAll(async () => {
  await selectBackend({ force: 'wasm', log: () => {} });
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const maxAbsDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

function net(name: string, inShape: number[], layers: IrLayer[], extra: Partial<IrNet> = {}): IrNet {
  let shape = inShape;
  for (const l of layers) shape = layerOutputShape(l, shape);
  return { name, layers, inShape, outShape: shape, paramCount: paramCount(layers), ...extra };
}

const ENC_LAYERS: IrLayer[] = [
  { kind: 'reshape', shape: [1, 4, 4] },
  { kind: 'conv2d', inChannels: 1, outChannels: 2, kernel: 3, stride: 1, padding: 'same' },
  { kind: 'act', fn: 'relu' },
  { kind: 'tap', name: 's4' },
  { kind: 'conv2d', inChannels: 2, outChannels: 3, kernel: 3, stride: 2, padding: 'same' },
  { kind: 'act', fn: 'tanh' },
  { kind: 'tap', name: 's2' },
  { kind: 'flatten' },
  { kind: 'linear', in: 12, out: 5 },
];
const ENC = net('f', [16], ENC_LAYERS, {
  taps: [
    { name: 's4', shape: [2, 4, 4] },
    { name: 's2', shape: [3, 2, 2] },
  ],
});
const DEC = net(
  'dec',
  [6],
  [
    { kind: 'linear', in: 6, out: 12 },
    { kind: 'act', fn: 'relu' },
    { kind: 'reshape', shape: [3, 2, 2] },
    { kind: 'skip', name: 's2', channels: 3 },
    { kind: 'deconv2d', inChannels: 6, outChannels: 2, kernel: 3, stride: 2, padding: 'same' },
    { kind: 'act', fn: 'relu' },
    { kind: 'skip', name: 's4', channels: 2 },
    { kind: 'conv2d', inChannels: 4, outChannels: 1, kernel: 3, stride: 1, padding: 'same' },
    { kind: 'flatten' },
  ],
  {
    skips: [
      { name: 's2', shape: [3, 2, 2] },
      { name: 's4', shape: [2, 4, 4] },
    ],
  },
);
const NETS = new Map([ENC, DEC].map((n) => [n.name, n]));

describe('nets with taps and skips: lowering', () => {
  it('shapes: taps as declared over any leading axes, the skip-joined decoder as the checker says', () => {
    expect(DEC.outShape).toEqual([16]);
    const params = { ...createNetParams(ENC, new Rng(1)), ...createNetParams(DEC, new Rng(2)) };
    tf.tidy(() => {
      for (const lead of [[3], [2, 3]]) {
        const x = tf.randomNormal([...lead, 16], 0, 1, 'float32', 5);
        const o = applyNetOutputs(ENC, params, NETS, x);
        expect(o.out.shape).toEqual([...lead, 5]);
        expect(o.taps['s4']!.shape).toEqual([...lead, 2, 4, 4]);
        expect(o.taps['s2']!.shape).toEqual([...lead, 3, 2, 2]);
        // The final output is applyNet's.
        expect(maxAbsDiff(values(o.out), values(applyNet(ENC, params, NETS, x)))).toBeLessThan(1e-6);
        const y = applyNetOutputs(DEC, params, NETS, tf.randomNormal([...lead, 6], 0, 1, 'float32', 6), { skips: o.taps });
        expect(y.out.shape).toEqual([...lead, 16]);
        expect(values(y.out).every(Number.isFinite)).toBe(true);
      }
    });
    tf.dispose(Object.values(params));
  });

  it('a tap is the net cut at that stage (channels first)', () => {
    const params = createNetParams(ENC, new Rng(3));
    const cut = (upTo: number) => net('f', [16], ENC_LAYERS.slice(0, upTo));
    tf.tidy(() => {
      const x = tf.randomNormal([4, 16], 0, 1, 'float32', 7);
      const o = applyNetOutputs(ENC, params, NETS, x);
      expect(maxAbsDiff(values(o.taps['s4']!), values(applyNet(cut(3), params, NETS, x)))).toBeLessThan(1e-6);
      expect(maxAbsDiff(values(o.taps['s2']!), values(applyNet(cut(6), params, NETS, x)))).toBeLessThan(1e-6);
    });
    tf.dispose(Object.values(params));
  });

  it('a skip joins channel-wise: flatten after skip(s, C) is [x..., s...] channels first', () => {
    const join = net('j', [2, 2, 3], [{ kind: 'skip', name: 's', channels: 1 }, { kind: 'flatten' }], { skips: [{ name: 's', shape: [1, 2, 3] }] });
    const x = tf.reshape(tf.range(0, 24), [2, 2, 2, 3]);
    const s = tf.reshape(tf.range(100, 112), [2, 1, 2, 3]);
    const y = applyNetOutputs(join, {}, new Map(), x, { skips: { s } }).out;
    expect(y.shape).toEqual([2, 18]);
    expect(values(y).slice(0, 18)).toEqual([...values(x).slice(0, 12), ...values(s).slice(0, 6)]);
    // Vectors too: [n] joined by [c] is [n + c].
    const vec = net('v', [3], [{ kind: 'skip', name: 's', channels: 2 }], { skips: [{ name: 's', shape: [2] }] });
    const v = applyNetOutputs(vec, {}, new Map(), tf.tensor2d([[1, 2, 3]]), { skips: { s: tf.tensor2d([[4, 5]]) } }).out;
    expect(values(v)).toEqual([1, 2, 3, 4, 5]);
    expect(() => applyNetOutputs(join, {}, new Map(), x, { skips: {} })).toThrow(/skip input 's' not given/);
    tf.dispose([x, s, y, v]);
  });

  it('every parameter has a finite, non-zero gradient through the taps and the skips', () => {
    const params = { ...createNetParams(ENC, new Rng(4)), ...createNetParams(DEC, new Rng(5)) };
    const x = tf.randomNormal([3, 16], 0, 1, 'float32', 8);
    const h = tf.randomNormal([3, 6], 0, 1, 'float32', 9);
    const { value, grads } = tf.variableGrads(() => {
      const o = applyNetOutputs(ENC, params, NETS, x);
      // The decoder reads the encoder's taps; the encoder's final output goes in too.
      const y = applyNetOutputs(DEC, params, NETS, tf.concat([tf.slice(h, [0, 0], [3, 1]), o.out], 1), { skips: o.taps }).out;
      return tf.sum(tf.square(y)) as tf.Scalar;
    });
    expect(Object.keys(grads).length).toBe(Object.keys(params).length);
    for (const [name, g] of Object.entries(grads)) {
      const v = values(g);
      expect(v.every(Number.isFinite), name).toBe(true);
      expect(v.some((e) => e !== 0), name).toBe(true);
    }
    tf.dispose([value, x, h, ...Object.values(grads), ...Object.values(params)]);
  });
});

/** A small model whose decoder reads the chosen entry's feature maps (test/golden/good/net_taps_skips.vmm, trimmed). */
const UNET_VMA = `
model unet_tiny
const D = 16
const Z = 2
const H = 4
size M
data x : binary[D]
memory mem : binary[M, D]
net h = mlp(D, 16, H)
net f = reshape(1, 4, 4) >> conv2d(1, 4) >> relu >> tap(s4) >> conv2d(4, 4, stride: 2) >> relu >> tap(s2) >> flatten >> linear(16, H)
net prior = linear(H, 2 * Z)
net enc = mlp(2 * H, 16, 2 * Z)
net dec = linear(Z + H, 16) >> relu >> reshape(4, 2, 2) >> skip(s2, 4) >> deconv2d(8, 4, stride: 2) >> relu >> skip(s4, 4) >> conv2d(8, 1) >> flatten
discrete address a ~ Categorical(mem)
let r = f(mem[a])
latent z ~ Normal(prior(r))
observe x ~ Bernoulli(logits: dec(concat(z, r), s2: f(mem[a]).s2, s4: f(mem[a]).s4))
guide {
  a ~ Categorical(logits: h(mem) @ h(x))
  z ~ Normal(enc(concat(f(x), f(mem[a]))))
}
train {
  estimator = vimco(k: 4)
  optimizer = adam(lr: 3e-3)
  batch = 8
}
`;

describe('nets with taps and skips: evaluation of memory reads', () => {
  const ir = irOf(UNET_VMA);
  const obs = ir.model.find((s) => s.stmt === 'site' && s.role === 'observe')!;
  const decExpr = (obs as { dist: { params: IrExpr[] } }).dist.params[0] as Extract<IrExpr, { op: 'net' }>; // Bernoulli's logits
  const tapExpr = decExpr.skips!.find((s) => s.name === 's2')!.arg; // f(mem[a]).s2
  const finalExpr = { ...tapExpr, tap: undefined, type: { elem: 'real' as const, shape: [{ c: 4, terms: {} }] } } as IrExpr; // f(mem[a])

  function context(model: CompiledModel, addr: EvalContext['env'] extends Map<string, infer B> ? B : never, mem: tf.Tensor): EvalContext {
    return { env: new Map([['mem', { t: mem, plates: ['batch'] }], ['a', addr]]), applyNet: model.applyNet, cache: new Map() };
  }

  it('soft weights blend every output: f(mem[a]).s2 = sum_i w_i f(mem_i).s2', () => {
    const model = new CompiledModel(ir, 1);
    tf.tidy(() => {
      const mem = tf.cast(tf.greater(tf.randomUniform([2, 3, 16], 0, 1, 'float32', 3), 0.5), 'float32'); // [batch 2, M 3, D]
      const w = tf.softmax(tf.randomNormal([2, 3], 0, 1, 'float32', 4)); // [batch, M]
      const ctx = context(model, { soft: { t: w, plates: ['batch'] } }, mem);
      const got = evaluate(tapExpr, ctx);
      expect(got.t.shape).toEqual([2, 4, 2, 2]);
      const taps = model.applyNet.outputs('f', mem, {}).taps['s2']!; // [batch, M, 4, 2, 2]
      const want = tf.sum(tf.mul(tf.reshape(w, [2, 3, 1, 1, 1]), taps), 1);
      expect(maxAbsDiff(values(got.t), values(want))).toBeLessThan(1e-5);
      // The final output of the same pass is in the cache: f(mem[a]) is its blend too.
      const fin = evaluate(finalExpr, ctx);
      const wantFin = tf.matMul(tf.reshape(w, [2, 1, 3]), model.applyNet('f', mem));
      expect(maxAbsDiff(values(fin.t), values(wantFin))).toBeLessThan(1e-5);
      expect(ctx.cache.size).toBe(3); // f(mem[a]), .s4, .s2
    });
    model.dispose();
  });

  it('a sampled address reads the entry: f(mem[a]).s2 = f(mem[a_k]).s2', () => {
    const model = new CompiledModel(ir, 1);
    tf.tidy(() => {
      const mem = tf.cast(tf.greater(tf.randomUniform([2, 3, 16], 0, 1, 'float32', 5), 0.5), 'float32');
      const a = tf.tensor2d([[2, 0], [1, 1]], [2, 2], 'int32'); // [sample K=2, batch 2]
      const ctx = context(model, { t: a, plates: ['sample', 'batch'] }, mem);
      const got = evaluate(tapExpr, ctx);
      expect(got.plates).toEqual(['sample', 'batch']);
      const taps = values(model.applyNet.outputs('f', mem, {}).taps['s2']!); // [batch, M, 4, 2, 2]
      const n = 16; // 4 * 2 * 2
      const all = values(got.t); // [sample, batch, 4, 2, 2]
      [[2, 0], [1, 1]].forEach((entries, k) =>
        entries.forEach((i, b) => {
          const at = (k * 2 + b) * n;
          expect(maxAbsDiff(all.slice(at, at + n), taps.slice((b * 3 + i) * n, (b * 3 + i + 1) * n))).toBeLessThan(1e-6);
        }),
      );
    });
    model.dispose();
  });
});

describe('nets with taps and skips: training', () => {
  it('hard (VIMCO) and soft addressing train the feature-map model: the bound rises, no tensor leaks', () => {
    for (const addressing of ['hard', 'soft'] as const) {
      const ir = withAddressing(applySettings(irOf(UNET_VMA), { addressing }));
      const trainer = new Trainer(ir, 7);
      const batch = fakeBatch(ir, 8, { M: 4 }, 11);
      const bounds: number[] = [];
      let tensors = 0;
      for (let i = 0; i < 60; i++) {
        bounds.push(trainer.step(batch).bound);
        if (i === 5) tensors = tf.memory().numTensors;
      }
      expect(tf.memory().numTensors, addressing).toBe(tensors);
      expect(bounds.every(Number.isFinite), addressing).toBe(true);
      const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
      // One fixed batch: after 60 steps the bound is clearly above where it started.
      expect(mean(bounds.slice(-10)), `${addressing}: ${bounds[0]} -> ${bounds[59]}`).toBeGreaterThan(mean(bounds.slice(0, 5)) + 1);
      trainer.dispose();
    }
  });
});
