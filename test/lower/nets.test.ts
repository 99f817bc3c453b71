import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { IrLayer, IrNet } from '../../src/ir/types.ts';
import {
  applyNet,
  conv2dFilterGrad,
  createNetParams,
  dense,
  layerOutputShape,
  paramCount,
  paramName,
} from '../../src/lower/nets.ts';
import { Rng } from '../../src/random/rng.ts';
import { BACKENDS, describeBackends, maxRelDiff, use, values } from '../runtime/backends.ts';

function net(name: string, inShape: number[], layers: IrLayer[], nets?: Map<string, IrNet>): IrNet {
  let shape = inShape;
  for (const l of layers) shape = layerOutputShape(l, shape, nets);
  return { name, layers, inShape, outShape: shape, paramCount: paramCount(layers) };
}

function mlp(name: string, sizes: number[], act: 'relu' | 'tanh' | 'elu' = 'relu'): IrNet {
  const layers: IrLayer[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push({ kind: 'linear', in: sizes[i]!, out: sizes[i + 1]! });
    if (i + 2 < sizes.length) layers.push({ kind: 'act', fn: act });
  }
  return net(name, [sizes[0]!], layers);
}

const MLP = mlp('h', [6, 8, 5], 'relu');
const MLP_TANH = mlp('t', [6, 7, 7, 3], 'tanh');
const CONV = net('enc', [64], [
  { kind: 'reshape', shape: [1, 8, 8] },
  { kind: 'conv2d', inChannels: 1, outChannels: 3, kernel: 3, stride: 2, padding: 'same' },
  { kind: 'act', fn: 'relu' },
  { kind: 'conv2d', inChannels: 3, outChannels: 4, kernel: 3, stride: 1, padding: 'valid' },
  { kind: 'act', fn: 'elu' },
  { kind: 'flatten' },
  { kind: 'linear', in: 16, out: 5 },
]);
const DECONV = net('dec', [6], [
  { kind: 'linear', in: 6, out: 2 * 3 * 3 },
  { kind: 'act', fn: 'softplus' },
  { kind: 'reshape', shape: [2, 3, 3] },
  { kind: 'deconv2d', inChannels: 2, outChannels: 3, kernel: 4, stride: 2, padding: 'same' },
  { kind: 'act', fn: 'relu' },
  { kind: 'deconv2d', inChannels: 3, outChannels: 1, kernel: 3, stride: 2, padding: 'valid' },
  { kind: 'act', fn: 'sigmoid' },
]);
const IMG = net('img', [2, 5, 5], [
  { kind: 'conv2d', inChannels: 2, outChannels: 3, kernel: 3, stride: 1, padding: 'same' },
  { kind: 'act', fn: 'tanh' },
]);
const CALLS = new Map<string, IrNet>([[MLP.name, MLP]]);
const CALLER = net('outer', [6], [{ kind: 'call', net: 'h' }, { kind: 'act', fn: 'tanh' }, { kind: 'linear', in: 5, out: 2 }], CALLS);
const ALL = [MLP, MLP_TANH, CONV, DECONV, IMG, CALLER];
const NETS = new Map(ALL.map((n) => [n.name, n]));

function allParams(seed = 7): Record<string, tf.Variable> {
  const rng = new Rng(seed);
  const out: Record<string, tf.Variable> = {};
  for (const n of ALL) Object.assign(out, createNetParams(n, rng));
  return out;
}

function input(n: IrNet, lead: number[], seed: number): tf.Tensor {
  return tf.randomNormal([...lead, ...n.inShape], 0, 1, 'float32', seed);
}

describe('net shapes and parameters (no tensors)', () => {
  it('computes output shapes channels-first like the checker', () => {
    expect(CONV.outShape).toEqual([5]);
    expect(DECONV.outShape).toEqual([1, 13, 13]); // 3 -same s2-> 6 -valid k3 s2-> (6-1)*2+3 = 13
    expect(IMG.outShape).toEqual([3, 5, 5]);
    expect(CALLER.outShape).toEqual([2]);
  });

  it('counts parameters per net, excluding called nets', () => {
    expect(paramCount(MLP)).toBe(6 * 8 + 8 + 8 * 5 + 5);
    expect(paramCount(CONV)).toBe(9 * 1 * 3 + 3 + 9 * 3 * 4 + 4 + 16 * 5 + 5);
    expect(paramCount(DECONV)).toBe(6 * 18 + 18 + 16 * 3 * 2 + 3 + 9 * 1 * 3 + 1);
    expect(paramCount(CALLER)).toBe(5 * 2 + 2);
  });

  it('rejects shape mismatches with the layer named', () => {
    expect(() => layerOutputShape({ kind: 'linear', in: 4, out: 2 }, [5])).toThrow(/linear expects last axis 4/);
    expect(() => layerOutputShape({ kind: 'conv2d', inChannels: 3, outChannels: 1, kernel: 3, stride: 1, padding: 'same' }, [12])).toThrow(
      /expects an image \[3, H, W\]/,
    );
    expect(() => layerOutputShape({ kind: 'call', net: 'nope' }, [3], new Map())).toThrow(/unknown net 'nope'/);
  });
});

describe('net parameters', () => {
  it('names parameters net/<net>/<layer>/<w|b> and initialises weights uniformly, biases at zero', async () => {
    await use(BACKENDS[0]!);
    const p = createNetParams(CONV, new Rng(1));
    expect(Object.keys(p).sort()).toEqual(
      ['net/enc/1/w', 'net/enc/1/b', 'net/enc/3/w', 'net/enc/3/b', 'net/enc/6/w', 'net/enc/6/b'].sort(),
    );
    expect(p[paramName('enc', 1, 'w')]!.shape).toEqual([3, 3, 1, 3]);
    expect(values(p['net/enc/1/b']!)).toEqual([0, 0, 0]);
    // He-uniform before the relu: limit sqrt(6 / 9).
    const w = values(p['net/enc/1/w']!);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 9) + 1e-6);
    // Glorot-uniform on the last linear: limit sqrt(6 / (16 + 5)).
    const w2 = values(p['net/enc/6/w']!);
    expect(Math.max(...w2.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 21) + 1e-6);
    expect(Math.max(...w2.map(Math.abs))).toBeGreaterThan(0.5 * Math.sqrt(6 / 21));
    // Same seed, same weights.
    const q = createNetParams(CONV, new Rng(1));
    expect(values(q['net/enc/6/w']!)).toEqual(w2);
    tf.dispose([...Object.values(p), ...Object.values(q)]);
  });
});

describe('slice and an initial bias', () => {
  // `reshape(6) >> slice(2, 5) >> linear(3, 4, bias: -1.5) >> relu`: the key-bits-only, sparse key
  // features of models/titans_recall.vmm.
  const KEYS = net('keys', [6], [
    { kind: 'reshape', shape: [6] },
    { kind: 'slice', from: 2, to: 5 },
    { kind: 'linear', in: 3, out: 4, bias: -1.5 },
    { kind: 'act', fn: 'relu' },
  ]);

  it('keeps features FROM .. TO - 1 of a vector and rejects a slice past its end', () => {
    expect(KEYS.outShape).toEqual([4]);
    expect(layerOutputShape({ kind: 'slice', from: 1, to: 3 }, [7])).toEqual([2]);
    expect(() => layerOutputShape({ kind: 'slice', from: 2, to: 8 }, [7])).toThrow(/slice \[2:8\]/);
    expect(() => layerOutputShape({ kind: 'slice', from: 0, to: 2 }, [1, 2, 2])).toThrow(/slice/);
  });

  it('starts the bias at the constant and applies x[from:to] @ w + b over leading axes', async () => {
    await use(BACKENDS[0]!);
    const p = createNetParams(KEYS, new Rng(3));
    expect(values(p[paramName('keys', 2, 'b')]!)).toEqual([-1.5, -1.5, -1.5, -1.5]);
    const w = values(p[paramName('keys', 2, 'w')]!);
    const x = [0.3, -1, 2, 0.5, -0.25, 9, 1, 1, -2, 0, 4, -3];
    const y = tf.tidy(() => values(applyNet(KEYS, p, new Map([['keys', KEYS]]), tf.tensor(x, [2, 6]))));
    for (let r = 0; r < 2; r++) {
      for (let j = 0; j < 4; j++) {
        let pre = -1.5;
        for (let i = 0; i < 3; i++) pre += x[r * 6 + 2 + i]! * w[i * 4 + j]!;
        expect(y[r * 4 + j]).toBeCloseTo(Math.max(0, pre), 5);
      }
    }
    tf.dispose(Object.values(p));
  });
});

describeBackends('applyNet', () => {
  it('maps over leading axes: shapes for mlp, conv, deconv, image and call stacks', () => {
    const params = allParams();
    tf.tidy(() => {
      for (const n of ALL) {
        for (const lead of [[4], [2, 3], [1, 2, 2]]) {
          const y = applyNet(n, params, NETS, input(n, lead, 3));
          expect(y.shape).toEqual([...lead, ...n.outShape]);
          expect(values(y).every(Number.isFinite)).toBe(true);
        }
      }
    });
    tf.dispose(Object.values(params));
  });

  it('gives the same output for a batch as for each row on its own', () => {
    const params = allParams();
    tf.tidy(() => {
      for (const n of ALL) {
        const x = input(n, [5], 11);
        const all = values(applyNet(n, params, NETS, x));
        const per = tf.unstack(x).flatMap((row) => values(applyNet(n, params, NETS, row)));
        expect(maxRelDiff(per, all)).toBeLessThan(1e-5);
      }
    });
    tf.dispose(Object.values(params));
  });

  it('fused and unfused linear layers agree', () => {
    const params = allParams();
    tf.tidy(() => {
      for (const n of [MLP, MLP_TANH, CONV, CALLER]) {
        const x = input(n, [3], 5);
        expect(maxRelDiff(values(applyNet(n, params, NETS, x, n.inShape, { fused: false })), values(applyNet(n, params, NETS, x)))).toBeLessThan(1e-5);
      }
    });
    tf.dispose(Object.values(params));
  });

  it('keeps images channels-first at the boundary: flatten(reshape(C,H,W)(v)) = v, and a 1x1 conv mixes channels', () => {
    const roundTrip = net('rt', [12], [{ kind: 'reshape', shape: [3, 2, 2] }, { kind: 'flatten' }]);
    const v = tf.reshape(tf.range(0, 24), [2, 12]);
    expect(values(applyNet(roundTrip, {}, new Map(), v))).toEqual(values(v));
    // An image input is read as [C, H, W]: flatten alone is the PyTorch order.
    const flat = net('fl', [2, 2, 3], [{ kind: 'flatten' }]);
    const img = tf.reshape(tf.range(0, 12), [1, 2, 2, 3]);
    expect(values(applyNet(flat, {}, new Map(), img))).toEqual(values(img));
    // 1x1 conv with weights [1, 10]: out[h, w] = x[0, h, w] + 10 x[1, h, w].
    const mix = net('mix', [2, 2, 3], [{ kind: 'conv2d', inChannels: 2, outChannels: 1, kernel: 1, stride: 1, padding: 'same' }]);
    const p = { 'net/mix/0/w': tf.tensor4d([1, 10], [1, 1, 2, 1]), 'net/mix/0/b': tf.zeros([1]) };
    const x = values(img);
    const want = [0, 1, 2, 3, 4, 5].map((i) => x[i]! + 10 * x[6 + i]!);
    expect(values(applyNet(mix, p, new Map(), img))).toEqual(want);
    tf.dispose([v, img, ...Object.values(p)]);
  });

  it('has a finite, non-zero gradient for every parameter', () => {
    const params = allParams();
    for (const n of ALL) {
      const own = Object.entries(params).filter(([k]) => k.startsWith(`net/${n.name}/`) || (n === CALLER && k.startsWith('net/h/')));
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(applyNet(n, params, NETS, input(n, [2, 3], 9)))) as tf.Scalar,
        own.map(([, v]) => v),
      );
      for (const [name, v] of own) {
        const g = grads[v.name];
        expect(g, `${name} has a gradient`).toBeDefined();
        const gv = values(g!);
        expect(gv.every(Number.isFinite), `${name} finite`).toBe(true);
        expect(Math.max(...gv.map(Math.abs)), `${name} non-zero`).toBeGreaterThan(0);
      }
      tf.dispose([value, ...Object.values(grads)]);
    }
    tf.dispose(Object.values(params));
  });

  it('does not grow the tensor count across 50 apply + grad iterations', () => {
    const params = allParams();
    const vars = Object.values(params);
    const iter = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => tf.addN(ALL.map((n) => tf.sum(applyNet(n, params, NETS, input(n, [3], 1))))) as tf.Scalar,
          vars,
        );
        return tf.addN([value, ...Object.values(grads).map((g) => tf.sum(g))]);
      });
    for (let i = 0; i < 3; i++) iter().dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) iter().dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(vars);
  });
});

describe('applyNet across backends', () => {
  it('cpu and wasm agree within 1e-4 on outputs and gradients', async () => {
    if (!(BACKENDS.includes('cpu') && BACKENDS.includes('wasm'))) return;
    const results: Record<string, number[][]> = {};
    for (const b of ['cpu', 'wasm'] as const) {
      await use(b);
      const params = allParams(3);
      const vars = Object.values(params);
      const names = Object.keys(params);
      results[b] = tf.tidy(() => {
        const outs = ALL.map((n) => values(applyNet(n, params, NETS, input(n, [4], 21))));
        const { grads } = tf.variableGrads(
          () => tf.addN(ALL.map((n) => tf.sum(tf.sin(applyNet(n, params, NETS, input(n, [4], 21)))))) as tf.Scalar,
          vars,
        );
        return [...outs, ...names.map((k) => values(grads[params[k]!.name]!))];
      });
      tf.dispose(vars);
    }
    results['cpu']!.forEach((ref, i) => expect(maxRelDiff(results['wasm']![i]!, ref), `entry ${i}`).toBeLessThan(1e-4));
  });
});

describe('dense layers: the one-call native backward (VmmDenseGrad, wasm with OpenBLAS)', () => {
  // n = 3000 rows of width 400 is more than one 4 MB chunk of the relu mask (2621 rows), so the
  // chunked accumulation of dw is exercised. The reference is the same gradient written with tfjs
  // ops on the same backend (a cpu reference would differ where float rounding flips a relu).
  it('gives dw, db and dx of act(x w + b) as tfjs ops do, with and without relu, also when dx was not expected', async () => {
    if (!BACKENDS.includes('wasm')) return;
    await use('wasm');
    if (!tf.getKernel('VmmDenseGrad', 'wasm')) return; // no OpenBLAS module: the tfjs-ops gradient runs
    const rng = new Rng(5);
    for (const relu of [true, false]) {
      tf.tidy(() => {
        const [n, k, m] = [3000, 24, 400];
        const x = tf.randomNormal([n, k], 0, 1, 'float32', rng.nextSeed());
        const w = tf.variable(tf.randomNormal([k, m], 0, 0.3, 'float32', rng.nextSeed()));
        const b = tf.variable(tf.randomNormal([m], 0, 0.3, 'float32', rng.nextSeed()));
        const c = tf.randomNormal([n, m], 0, 1, 'float32', rng.nextSeed());
        const f = (xi: tf.Tensor) => tf.sum(tf.mul(dense(xi, w as tf.Tensor as tf.Tensor2D, b, relu), c)) as tf.Scalar;
        // Expected: g = c * (y > 0) (or c), dw = x^T g, db = sum_rows g, dx = g w^T.
        const y = tf.add(tf.matMul(x, w), b);
        const g = relu ? tf.mul(c, tf.step(y)) : c;
        const want = [tf.matMul(x, g, true, false), tf.sum(g, 0), tf.matMul(g, w, false, true)].map(values);
        // x is data here: the forward pass expects no dx, and tf.grad w.r.t. x asks for it anyway.
        const { grads } = tf.variableGrads(() => f(x), [w, b]);
        const dx = tf.grad(f)(x);
        [grads[w.name]!, grads[b.name]!, dx].map(values).forEach((got, i) => {
          const ref = want[i]!;
          const scale = Math.max(...ref.map(Math.abs));
          expect(scale, `relu ${relu}, entry ${i} non-zero`).toBeGreaterThan(0);
          expect(Math.max(...ref.map((v, j) => Math.abs(v - got[j]!))) / scale, `relu ${relu}, entry ${i}`).toBeLessThan(1e-5);
        });
        tf.dispose([w, b]);
      });
    }
  });
});

describeBackends('conv2dFilterGrad (the wasm workaround for Conv2DBackpropFilter)', () => {
  it('equals the gradient of sum(dy * conv2d(x, w)) w.r.t. w for same/valid padding and strides', () => {
    for (const [pad, s, k, h] of [
      ['same', 1, 3, 7],
      ['same', 2, 3, 7],
      ['valid', 2, 3, 8],
      ['same', 2, 4, 6],
      ['valid', 1, 5, 9],
    ] as const) {
      tf.tidy(() => {
        const x = tf.randomNormal([2, h, h, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
        const w = tf.randomNormal([k, k, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
        const y = tf.conv2d(x, w, s, pad);
        const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
        const mine = values(conv2dFilterGrad(x, dy, w.shape, s, pad));
        // Reference: an explicit sum over output positions and taps, in JS.
        const xv = values(x);
        const dyv = values(dy);
        const info = tf.backend_util.computeConv2DInfo(x.shape, w.shape, s, 1, pad);
        const [oh, ow] = [info.outHeight, info.outWidth];
        const ref = new Float64Array(k * k * 3 * 4);
        for (let n = 0; n < 2; n++)
          for (let p = 0; p < oh; p++)
            for (let q = 0; q < ow; q++)
              for (let i = 0; i < k; i++)
                for (let j = 0; j < k; j++) {
                  const r = p * s + i - info.padInfo.top;
                  const c = q * s + j - info.padInfo.left;
                  if (r < 0 || c < 0 || r >= h || c >= h) continue;
                  for (let ci = 0; ci < 3; ci++)
                    for (let co = 0; co < 4; co++) {
                      ref[((i * k + j) * 3 + ci) * 4 + co]! += xv[((n * h + r) * h + c) * 3 + ci]! * dyv[((n * oh + p) * ow + q) * 4 + co]!;
                    }
                }
        expect(maxRelDiff(mine, ref), `${pad} stride ${s} kernel ${k}`).toBeLessThan(1e-4);
      });
    }
  });
});

describe('params (src/lower/params.ts)', () => {
  it('creates normal(std) and zeros variables of the declared shape, resolving size symbols', async () => {
    await use(BACKENDS[0]!);
    const { createParam, resolveSize } = await import('../../src/lower/params.ts');
    const size = (c: number, terms: Record<string, number> = {}) => ({ c, terms });
    const w = createParam({ name: 'w', type: { elem: 'real', shape: [size(200), size(50)] }, init: { kind: 'normal', std: 0.1 } }, new Rng(1));
    expect(w.shape).toEqual([200, 50]);
    const wv = values(w);
    const mean = wv.reduce((a, b) => a + b, 0) / wv.length;
    const sd = Math.sqrt(wv.reduce((a, b) => a + (b - mean) ** 2, 0) / wv.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(sd).toBeGreaterThan(0.09);
    expect(sd).toBeLessThan(0.11);
    const z = createParam({ name: 'z', type: { elem: 'real', shape: [size(1, { M: 2 })] }, init: { kind: 'zeros' } }, new Rng(1), { M: 3 });
    expect(values(z)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(() => createParam({ name: 'u', type: { elem: 'real', shape: [size(0, { M: 1 })] }, init: { kind: 'zeros' } }, new Rng(1))).toThrow(
      /createParam\(u\): size symbol 'M' is not bound/,
    );
    expect(resolveSize(size(2, { M: 3 }), { M: 4 })).toBe(14);
    tf.dispose([w, z]);
  });
});
