/**
 * The parts of the exported trainer beside the model (issue #24), each against vmm's own, in the
 * differential style (same inputs give the same values):
 *
 * - the generated data sets: vmm_runtime.Rng is vmm's xoshiro128** number for number, and the
 *   `synthetic` and `recall` streams give vmm's very batches (train and validation) for a seed;
 * - the optimizers: Adam and SGD, with and without clipping by the global norm, update the same
 *   weights from the same gradients as src/runtime/optimizer.ts;
 * - validation: the export's `trace_bound` (guide draws, no estimator handler) gives the log
 *   weights of vmm's validation trace, and its address KL vmm's addressKl;
 * - REINFORCE's running mean under torchrun: two gloo ranks on half batches keep the running
 *   mean of the whole batch and take its gradient at the next step;
 * - train.py on a generated set writes train and validation records with no --data.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { trainStream, validationBatches } from '../../src/data/source.ts';
import type { DataOptions, RawBatch } from '../../src/data/bind.ts';
import { makeEstimator } from '../../src/estimators/index.ts';
import { addressKl } from '../../src/jobs/summaries.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { runTrace, toSampleBatch } from '../../src/lower/trace.ts';
import { Rng } from '../../src/random/rng.ts';
import { makeOptimizer, type OptimizerConfig } from '../../src/runtime/optimizer.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../../src/runtime/safetensors.ts';
import { fakeBatch } from '../lower/helpers.ts';
import { exportTo, relError, runPython, runPythonAsync, torchMissing, torchPython } from './torch_helpers.ts';

const has = torchPython() !== undefined;
if (!has && process.env['VMM_REQUIRE_TORCH'] === '1') throw new Error(`VMM_REQUIRE_TORCH=1: ${torchMissing}`);

/** A recall model with 8-bit keys (vmm draws them as distinct codes, Floyd's algorithm) and an unsigned memory (unused: only its data matter here). */
const RECALL8 = `model recall8
const K = 8
const V = 4
size N
data key : binary[K]
data x : binary[V]
memory pairs : binary[N, K + V]
net dec = linear(K, V)
observe x ~ Bernoulli(logits: dec(key))  // the memory only carries the pairs here
train {
  estimator = iwae(k: 1)
  dataset = recall
  episodes = episodes(classes: 6, shots: 1)
}
`;

const FAR = 300_000;
const FAR_AT = [0, 127, 128, 4095, 262_143, 262_144, 299_999];

/** The draws both sides make of one generator, in one order. */
const RNG_CASES: Array<[number | string, string | undefined]> = [
  [0, undefined],
  [1, 'recall-train'],
  [12345, 'synthetic-valid'],
  [2 ** 33 + 5, undefined],
  [-7, 'x'],
  [1.5, undefined],
  ['abc', 'episodes'],
];

function vmmDraws(seed: number | string, stream: string | undefined): number[] {
  const r = stream === undefined ? new Rng(seed) : new Rng(seed, stream);
  const out: number[] = [];
  for (let i = 0; i < 5; i++) out.push(r.nextUint32());
  out.push(r.int(7), r.int(1000003), r.next());
  for (let i = 0; i < 5; i++) out.push(r.normal());
  out.push(...r.sample(100, 5), ...r.sample(10, 8), ...r.shuffle([0, 1, 2, 3, 4, 5]));
  // Far into the stream (the port makes its numbers 2048 x 128 at a time, in lanes).
  const far = Array.from({ length: FAR }, () => r.nextUint32());
  out.push(...FAR_AT.map((i) => far[i]!), r.nextUint32());
  return out;
}



const PY_DRAWS = `
def draws(seed, stream):
    r = rt.Rng(seed, stream)
    out = r.uint32s(5) + [r.int(7), r.int(1000003), r.next()] + [r.normal() for _ in range(5)]
    out = out + r.sample(100, 5) + r.sample(10, 8) + r.shuffle([0, 1, 2, 3, 4, 5])
    far = r.uint32s(${FAR})
    return out + [far[i] for i in ${JSON.stringify(FAR_AT)}] + r.uint32s(1)
`;

const flat = (b: RawBatch): Record<string, NamedTensor> => Object.fromEntries(b.inputs.map((i) => [i.name, { shape: i.shape, data: Float32Array.from(i.data as ArrayLike<number>) }]));

describe.skipIf(!has)(`the exported trainer's parts against vmm's (${has ? torchPython() : torchMissing})`, () => {
  it("vmm's generator, the synthetic and recall streams (train and validation) and the optimizers, number for number", async () => {
    const work = mkdtempSync(join(tmpdir(), 'vmm-parts-'));
    // Streams: three training batches and the validation batches of each generated model.
    const models: Array<[string, string]> = [
      ['gmm', readFileSync('models/gmm.vmm', 'utf8')],
      ['titans_recall', readFileSync('models/titans_recall.vmm', 'utf8')],
      ['recall8', RECALL8],
    ];
    const dirs: Record<string, string> = {};
    const vmmBatches: Record<string, Record<string, NamedTensor>> = {};
    for (const [name, source] of models) {
      const { dir, ir } = exportTo(source);
      dirs[name] = dir;
      const ep = ir.train.episodes;
      const opts: DataOptions = { dataset: ir.train.dataset, seed: 3, classes: ep.classes, shots: ep.shots, distractors: ep.distractors };
      const stream = trainStream(ir, opts);
      const batches = [stream.next(4), stream.next(4), stream.next(2), ...validationBatches(ir, opts, 10, 4)];
      batches.forEach((b, i) => {
        for (const [input, t] of Object.entries(flat(b))) vmmBatches[name] = { ...vmmBatches[name], [`${i}/${input}`]: t };
      });
    }
    // Optimizers: three updates of two variables from fixed gradients.
    const init: Record<string, NamedTensor> = {
      a: { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1)) },
      b: { shape: [5], data: Float32Array.from({ length: 5 }, (_, i) => Math.cos(i)) },
    };
    const grads: Record<string, NamedTensor> = {};
    for (let s = 0; s < 3; s++) {
      for (const [n, t] of Object.entries(init)) grads[`${s}/${n}`] = { shape: t.shape, data: t.data.map((_, i) => Math.sin(7 * s + 3 * i + n.length) * (s + 1)) };
    }
    const configs: OptimizerConfig[] = [
      { kind: 'adam', lr: 0.01 },
      { kind: 'adam', lr: 0.01, clipNorm: 0.5 },
      { kind: 'sgd', lr: 0.1 },
      { kind: 'sgd', lr: 0.1, clipNorm: 0.5 },
    ];
    await tf.setBackend('cpu');
    const vmmWeights = configs.map((c) => {
      const vars = Object.fromEntries(Object.entries(init).map(([n, t]) => [n, tf.variable(tf.tensor(t.data, [...t.shape]))]));
      const opt = makeOptimizer(c, vars);
      for (let s = 0; s < 3; s++) tf.tidy(() => opt.apply(Object.fromEntries(Object.keys(init).map((n) => [n, tf.tensor(grads[`${s}/${n}`]!.data, [...grads[`${s}/${n}`]!.shape])]))));
      const w = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, Float32Array.from(v.dataSync())]));
      opt.dispose();
      tf.dispose(Object.values(vars));
      return w;
    });
    writeFileSync(join(work, 'opt.safetensors'), encodeSafetensors({ ...Object.fromEntries(Object.entries(init).map(([n, t]) => [`init/${n}`, t])), ...Object.fromEntries(Object.entries(grads).map(([n, t]) => [`grad/${n}`, t])) }));

    const out = runPython(
      `
import json, sys, torch, vmm_runtime as rt
${PY_DRAWS}
res = {'draws': [draws(s, st) for s, st in json.loads(${JSON.stringify(JSON.stringify(RNG_CASES))})]}
for name, d in ${JSON.stringify(dirs)}.items():
    spec = json.load(open(d + '/export.json'))['data']
    tr = rt.generated_stream(spec, 3, 'train')
    va = rt.generated_stream(spec, 3, 'valid')
    batches = [tr.next(4), tr.next(4), tr.next(2), va.next(4), va.next(4), va.next(2)]
    rt_out = {f'{i}/{k}': v for i, b in enumerate(batches) for k, v in b.items()}
    open(${JSON.stringify(work)} + f'/{name}.safetensors', 'wb').write(rt.encode_safetensors(rt_out))
t, _ = rt.read_safetensors(${JSON.stringify(join(work, 'opt.safetensors'))})
res['opt'] = []
for c in ${JSON.stringify(configs.map((c) => ({ kind: c.kind, lr: c.lr, ...(c.clipNorm ? { clip: c.clipNorm } : {}) })))}:
    params = {n: t['init/' + n].clone().requires_grad_(True) for n in ('a', 'b')}
    opt = rt.make_optimizer(c, params)
    for s in range(3):
        for n, p in params.items():
            p.grad = t[f'grad/{s}/{n}'].clone()
        opt.step()
    res['opt'].append({n: p.detach().reshape(-1).tolist() for n, p in params.items()})
json.dump(res, sys.stdout)
`,
      dirs['gmm']!,
    );
    const res = JSON.parse(out) as { draws: number[][]; opt: Record<string, number[]>[] };
    RNG_CASES.forEach(([seed, stream], i) => {
      const want = vmmDraws(seed, stream);
      const got = res.draws[i]!;
      // Integers exactly; normals (a log and a square root) to the last bits of a double.
      expect(got.length, `Rng(${seed}, ${stream})`).toBe(want.length);
      want.forEach((w, j) => expect(Math.abs(got[j]! - w), `Rng(${seed}, ${stream}) draw ${j}`).toBeLessThanOrEqual(Number.isInteger(w) ? 0 : 1e-12 * Math.max(1, Math.abs(w))));
    });
    for (const [name] of models) {
      const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(work, `${name}.safetensors`))));
      expect(Object.keys(tensors).sort(), name).toEqual(Object.keys(vmmBatches[name]!).sort());
      for (const [k, t] of Object.entries(vmmBatches[name]!)) {
        expect(tensors[k]!.shape, `${name} ${k}`).toEqual(t.shape);
        expect(relError(tensors[k]!.data, t.data), `${name} ${k}`).toBeLessThan(1e-6);
      }
    }
    configs.forEach((c, i) => {
      for (const n of Object.keys(init)) expect(relError(res.opt[i]![n]!, vmmWeights[i]![n]!), `${JSON.stringify(c)} ${n}`).toBeLessThan(1e-6);
    });
  }, 300_000);

  it("the validation trace's log weights and address KL are vmm's (vma_mnist: enumerate, relaxed)", async () => {
    await tf.setBackend('cpu');
    for (const est of [{ kind: 'enumerate', k: 2 }, { kind: 'relaxed', k: 2 }]) {
      const { dir, ir } = exportTo(readFileSync('models/vma_mnist.vmm', 'utf8'), { overrides: { estimator: est.kind, k: est.k } });
      const model = new CompiledModel(ir, 3, { baseline: makeEstimator(ir.train.estimator).needsBaselineNet });
      const raw = fakeBatch(ir, 3, { M: 5 }, 11);
      const k = 3;
      const values: Record<string, NamedTensor> = {};
      const lw = tf.tidy(() => {
        const t = runTrace(ir, model.inputs(raw), model.applyNet, { k, rng: new Rng(7), handlers: [] });
        for (const name of t.guideDists.keys()) {
          const v = t.values.get(name)!;
          if (!('soft' in v)) values[name] = { shape: v.t.shape, data: Float32Array.from(tf.cast(v.t, 'float32').dataSync()) };
        }
        return Float32Array.from(tf.sub(toSampleBatch(t.logP, k, 3), toSampleBatch(t.logQ, k, 3)).dataSync());
      });
      const kl = await addressKl(ir, model, raw, 5);
      const case_ = mkdtempSync(join(tmpdir(), 'vmm-bound-'));
      const weights: Record<string, NamedTensor> = {};
      for (const [n, v] of model.variables) weights[n] = { shape: v.shape, data: Float32Array.from(v.dataSync()) };
      model.dispose();
      writeFileSync(join(case_, 'weights.safetensors'), encodeSafetensors(weights));
      writeFileSync(join(case_, 'inputs.safetensors'), encodeSafetensors(Object.fromEntries(raw.inputs.map((i) => [i.name, { shape: i.shape, data: i.data as Float32Array }]))));
      writeFileSync(join(case_, 'values.safetensors'), encodeSafetensors(values));
      const out = await runPythonAsync(
        `
import json, math, sys, torch, model as M, vmm_runtime as rt
w, _ = rt.read_safetensors('${case_}/weights.safetensors')
inputs, _ = rt.read_safetensors('${case_}/inputs.safetensors')
values, _ = rt.read_safetensors('${case_}/values.safetensors')
m = M.Model()
m.load_vmm(w)
t = m.trace_bound(inputs, ${k}, rt.Noise(values=values))
lw = (t.term('logP') - t.term('logQ')).detach()
b = rt.importance_bound(m.trace_bound, inputs, ${k}, rt.Noise(values=values), chunk=${k})
kl = rt.address_kl(m.trace_bound, inputs, M.ADDRESS, rt.Noise(torch.Generator().manual_seed(1)))
json.dump({'lw': lw.reshape(-1).tolist(), 'bound': b.tolist(), 'lme': rt.logmeanexp(lw, 0).tolist(), 'kl': kl}, sys.stdout)
`,
        dir,
      );
      const r = JSON.parse(out) as { lw: number[]; bound: number[]; lme: number[]; kl: { kl: number; logM: number } };
      expect(relError(r.lw, lw), `${est.kind}: log weights`).toBeLessThan(1e-5);
      expect(relError(r.bound, r.lme), `${est.kind}: the bound is log mean exp of the log weights`).toBeLessThan(1e-6);
      expect(Math.abs(r.kl.kl - kl!.kl), `${est.kind}: address KL`).toBeLessThan(1e-5);
      expect(r.kl.logM).toBeCloseTo(kl!.logM, 10);
    }
  }, 300_000);

  it("REINFORCE's running mean over two gloo ranks is the whole batch's (and so is the next step's gradient)", () => {
    const { dir } = exportTo(readFileSync('models/vma_mnist.vmm', 'utf8'), { overrides: { estimator: 'reinforce', k: 2, args: { baseline: 'running' } } });
    const out = runPython(
      `
import tempfile, torch, torch.distributed as dist, torch.multiprocessing as mp
import model as M, vmm_runtime as rt
torch.manual_seed(0)
B, Mem, K = 6, 5, M.ESTIMATOR['k']
inputs = {'x': (torch.rand(B, 784) < 0.3).float(), 'mem': (torch.rand(B, Mem, 784) < 0.3).float()}
draws = [dict(M.Model(1).trace(inputs, K, rt.Noise(torch.Generator().manual_seed(s))).values) for s in (5, 6)]
def two_steps(inputs, draws):
    model = M.Model(1)
    s1 = M.forward_estimate(model, inputs, K, rt.Noise(values=draws[0]), {'steps': 0, 'runningMean': None})['state']
    r = M.forward_estimate(model, inputs, K, rt.Noise(values=draws[1]), s1)
    (-r['surrogate']).backward()
    return s1['runningMean'], {n: p.grad.clone() for n, p in model.vmm_parameters().items()}
full_mean, full = two_steps(inputs, draws)
store = tempfile.mktemp()
def rank(r, world, q):
    dist.init_process_group('gloo', init_method='file://' + store, rank=r, world_size=world)
    half = slice(r * B // world, (r + 1) * B // world)
    mean, g = two_steps({n: v[half] for n, v in inputs.items()}, [{n: v[:, half] for n, v in d.items()} for d in draws])
    for n in sorted(g):
        dist.all_reduce(g[n]); g[n] /= world
    if r == 0:
        q.put((abs(mean - full_mean) / abs(full_mean), max(float((g[n] - full[n]).abs().max() / (full[n].abs().max() + 1e-6)) for n in g)))
    dist.destroy_process_group()
ctx = mp.get_context('fork')
q = ctx.Queue()
ps = [ctx.Process(target=rank, args=(r, 2, q)) for r in range(2)]
[p.start() for p in ps]
mean_err, grad_err = q.get(timeout=240)
[p.join() for p in ps]
print('MEAN', mean_err, 'GRAD', grad_err)
`.replace(/^\n/, ''),
      dir,
    );
    expect(Number(/MEAN (\S+)/.exec(out)?.[1])).toBeLessThan(1e-6);
    expect(Number(/GRAD (\S+)/.exec(out)?.[1])).toBeLessThan(1e-5);
  }, 300_000);

  it('train.py on a generated set (gmm: synthetic) needs no --data and writes validation records', () => {
    const { dir } = exportTo(readFileSync('models/gmm.vmm', 'utf8'));
    const run = join(mkdtempSync(join(tmpdir(), 'vmm-gmm-')), 'run');
    runPython(`import subprocess, sys\nsubprocess.run([sys.executable, 'train.py', '--steps', '6', '--batch', '8', '--device', 'cpu', '--valid-every', '3', '--valid-size', '20', '--out', ${JSON.stringify(run)}], check=True)`, dir);
    const records = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; bound: number; addressKl?: number });
    expect(records.filter((r) => r.kind === 'train').map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const valid = records.filter((r) => r.kind === 'valid');
    expect(valid.map((r) => r.step)).toEqual([3, 6]);
    expect(valid.every((r) => Number.isFinite(r.bound) && r.addressKl === undefined)).toBe(true);
  }, 300_000);
});
