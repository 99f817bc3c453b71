import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { globalNorm, makeOptimizer, resolveConfig } from '../../src/runtime/optimizer.ts';
import { fusedAdamAvailable } from '../../src/runtime/adam.ts';
import { loadBlas } from '../../src/runtime/blas.ts';
import { describeBackends, values } from './backends.ts';

/** Adam, Algorithm 1 of Kingma & Ba (2014), in float64 for one scalar parameter. */
function adamRef(theta0: number, grads: number[], lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  let theta = theta0;
  let m = 0;
  let v = 0;
  const out: number[] = [];
  grads.forEach((g, i) => {
    const t = i + 1;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const mh = m / (1 - b1 ** t);
    const vh = v / (1 - b2 ** t);
    theta -= (lr * mh) / (Math.sqrt(vh) + eps);
    out.push(theta);
  });
  return out;
}

describeBackends('optimizers', () => {
  it('Adam matches a hand-computed update (first step moves by lr * sign(g))', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 0.5]));
    const opt = makeOptimizer({ kind: 'adam', lr: 0.1 }, new Map([['w', w]]));
    const gs = [
      [0.5, -1, 2],
      [1, 2, -3],
      [-0.25, 0.5, 0.01],
    ];
    const traj: number[][] = [];
    for (const g of gs) {
      const gt = tf.tensor1d(g);
      opt.apply({ [w.name]: gt });
      gt.dispose();
      traj.push(values(w));
    }
    // Step one by hand: m_hat = g, v_hat = g^2, so theta -= 0.1 * g / (|g| + 1e-8).
    expect(traj[0]![0]).toBeCloseTo(0.9, 6);
    expect(traj[0]![1]).toBeCloseTo(-1.9, 6);
    expect(traj[0]![2]).toBeCloseTo(0.4, 6);
    for (let j = 0; j < 3; j++) {
      const ref = adamRef([1, -2, 0.5][j]!, gs.map((g) => g[j]!), 0.1);
      for (let t = 0; t < gs.length; t++) expect(traj[t]![j]).toBeCloseTo(ref[t]!, 5);
    }
    expect(opt.step).toBe(3);
    opt.dispose();
    w.dispose();
  });

  it('SGD with and without momentum, and global-norm clipping', () => {
    const a = tf.variable(tf.tensor1d([0, 0]));
    const plain = makeOptimizer({ kind: 'sgd', lr: 0.5 }, { a });
    const g = tf.tensor1d([3, 4]);
    plain.apply({ a: g });
    expect(values(a)).toEqual([-1.5, -2]);

    const b = tf.variable(tf.tensor1d([0, 0]));
    const mom = makeOptimizer({ kind: 'sgd', lr: 1, momentum: 0.5 }, { b });
    mom.apply({ b: g }); // buf = g
    mom.apply({ b: g }); // buf = 0.5 g + g
    expect(values(b)).toEqual([-(3 + 4.5), -(4 + 6)]);

    const c = tf.variable(tf.tensor1d([0, 0]));
    const clip = makeOptimizer({ kind: 'sgd', lr: 1, clipNorm: 1 }, { c });
    clip.apply({ c: g }); // ||g|| = 5 -> g / 5
    const cv = values(c);
    expect(cv[0]).toBeCloseTo(-0.6, 6);
    expect(cv[1]).toBeCloseTo(-0.8, 6);
    clip.apply({ c: tf.tidy(() => tf.mul(g, 0.1)) }); // norm 0.5 < 1: unchanged gradient
    expect(values(c)[0]).toBeCloseTo(-0.9, 6);

    expect(values(globalNorm([tf.tensor1d([3]), tf.tensor1d([4])]))[0]).toBeCloseTo(5, 6);
    tf.dispose([a, b, c, g]);
    plain.dispose();
    mom.dispose();
    clip.dispose();
  });

  it('leaves variables without a gradient alone and checks gradient shapes', () => {
    const a = tf.variable(tf.tensor1d([1]));
    const b = tf.variable(tf.tensor1d([1]));
    const opt = makeOptimizer({ kind: 'adam', lr: 0.1 }, { a, b });
    const g = tf.tensor1d([1]);
    opt.apply({ a: g });
    expect(values(b)).toEqual([1]);
    expect(values(a)[0]).toBeCloseTo(0.9, 6);
    const bad = tf.tensor1d([1, 2]);
    expect(() => opt.apply({ b: bad })).toThrow(/gradient of b has shape \[2\], variable \[1\]/);
    tf.dispose([a, b, g, bad]);
    opt.dispose();
  });

  it('exportState / importState continue bitwise identically', async () => {
    const mk = () => ({ w: tf.variable(tf.tensor2d([0.3, -0.2, 0.1, 0.7], [2, 2])), u: tf.variable(tf.tensor1d([1, 2, 3])) });
    const grads = (i: number) => ({ w: tf.randomNormal([2, 2], 0, 1, 'float32', 10 + i), u: tf.randomNormal([3], 0, 1, 'float32', 50 + i) });
    const run = (vars: ReturnType<typeof mk>, opt: ReturnType<typeof makeOptimizer>, from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const g = grads(i);
        opt.apply(g);
        tf.dispose(Object.values(g));
      }
    };
    const v1 = mk();
    const o1 = makeOptimizer({ kind: 'adam', lr: 0.01 }, v1);
    run(v1, o1, 0, 4);
    const state = await o1.exportState();
    const snap = { w: values(v1.w), u: values(v1.u) };
    run(v1, o1, 4, 7);

    const v2 = mk();
    v2.w.assign(tf.tensor2d(snap.w, [2, 2]));
    v2.u.assign(tf.tensor1d(snap.u));
    const o2 = makeOptimizer({ kind: 'adam', lr: 0.01 }, v2);
    o2.importState(state);
    run(v2, o2, 4, 7);
    expect(o2.step).toBe(7);
    expect(values(v2.w)).toEqual(values(v1.w));
    expect(values(v2.u)).toEqual(values(v1.u));
    tf.dispose([...Object.values(v1), ...Object.values(v2)]);
    o1.dispose();
    o2.dispose();
  });

  it('does not grow the tensor count across 50 steps', () => {
    const w = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1));
    const opt = makeOptimizer({ kind: 'adam', lr: 0.01, clipNorm: 1 }, { w });
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(w)) as tf.Scalar, [w]);
      opt.apply(grads);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    w.dispose();
  });
  it('updates a variable in place only where nothing else holds its buffer: a clone taken before a step keeps its values', () => {
    const w = tf.variable(tf.randomNormal([5, 3], 0, 1, 'float32', 2));
    const opt = makeOptimizer({ kind: 'adam', lr: 0.1 }, { w });
    const g = tf.ones([5, 3]);
    opt.apply({ w: g }); // w now owns a buffer of its own: the next step may write into it
    const held = tf.clone(w); // shares the buffer (cpu, wasm)
    const heldValues = values(held);
    opt.apply({ w: g });
    expect(values(held)).toEqual(heldValues);
    expect(Math.max(...values(w).map((x, i) => Math.abs(x - heldValues[i]!)))).toBeGreaterThan(0.01);
    tf.dispose([w, g, held]);
    opt.dispose();
  });

  it('the fused Adam update (cpu: a JS pass; wasm: native, where built) agrees with the op-by-op one, with and without clipping', async () => {
    // On cpu always; on wasm where the OpenBLAS module is built.
    expect(fusedAdamAvailable()).toBe(tf.getBackend() === 'cpu' || loadBlas() !== undefined);
    for (const clipNorm of [undefined, 0.5]) {
      const init = tf.randomNormal([37, 29], 0, 1, 'float32', 1);
      const wf = tf.variable(init);
      const wu = tf.variable(init);
      const config = { kind: 'adam' as const, lr: 0.01, ...(clipNorm ? { clipNorm } : {}) };
      const fused = makeOptimizer(config, { w: wf });
      const unfused = makeOptimizer(config, { w: wu }, { fused: false });
      const before = tf.memory().numTensors;
      for (let t = 0; t < 6; t++) {
        // Gradients over five orders of magnitude, a tenth of them zero (v = 0 in the denominator).
        const g = tf.tidy(() => {
          const raw = tf.mul(tf.randomNormal([37, 29], 0, 1, 'float32', 10 + t), tf.pow(10, tf.randomUniform([37, 29], -4, 1, 'float32', 20 + t)));
          return tf.mul(raw, tf.cast(tf.greater(tf.randomUniform([37, 29], 0, 1, 'float32', 30 + t), 0.1), 'float32'));
        });
        fused.apply({ w: g });
        unfused.apply({ w: g });
        g.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      const a = values(wf);
      const b = values(wu);
      expect(Math.max(...values(init).map((x, i) => Math.abs(a[i]! - x)))).toBeGreaterThan(0.01); // they moved
      // Float32 either way; the two round in different places: a few ulps apart.
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b[i]!)));
      const sf = (await fused.exportState()).slots;
      const su = (await unfused.exportState()).slots;
      for (const slot of ['m', 'v']) {
        const x = sf[slot]!['w']!.data;
        const y = su[slot]!['w']!.data;
        // m = b1 m + (1 - b1) g cancels where signs differ: compare on the slot's own scale.
        const scale = Math.max(...Array.from(y, Math.abs));
        for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThanOrEqual(1e-5 * scale);
      }
      tf.dispose([init, wf, wu]);
      fused.dispose();
      unfused.dispose();
    }
  });
});

describe('optimizer configuration', () => {
  it('fills defaults and rejects bad settings with the setting named', () => {
    expect(resolveConfig({ kind: 'adam', lr: 1e-3 })).toEqual({ kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, momentum: 0, clipNorm: null });
    expect(() => resolveConfig({ kind: 'adam', lr: 0 })).toThrow(/learning rate/);
    expect(() => resolveConfig({ kind: 'adam', lr: 1, beta2: 1 })).toThrow(/beta2/);
    expect(() => resolveConfig({ kind: 'sgd', lr: 1, clipNorm: -1 })).toThrow(/clipNorm/);
    expect(() => resolveConfig({ kind: 'rmsprop' as 'adam', lr: 1 })).toThrow(/unknown kind 'rmsprop'/);
  });

  it('importState refuses a state of another kind or other variables', async () => {
    const w = tf.variable(tf.zeros([2]));
    const adam = makeOptimizer({ kind: 'adam', lr: 0.1 }, { w });
    const sgd = makeOptimizer({ kind: 'sgd', lr: 0.1 }, { w });
    const adamState = await adam.exportState();
    expect(() => sgd.importState(adamState)).toThrow(/state is for adam/);
    const other = tf.variable(tf.zeros([3]));
    const adam2 = makeOptimizer({ kind: 'adam', lr: 0.1 }, { w: other });
    expect(() => adam2.importState(adamState)).toThrow(/m of w has shape \[2\] in the state, variable \[3\]/);
    [adam, sgd, adam2].forEach((o) => o.dispose());
    tf.dispose([w, other]);
  });
});
