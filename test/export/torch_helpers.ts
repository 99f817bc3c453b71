/**
 * Differential testing of `vmm export pytorch` against the tfjs lowering: the same weights (vmm's
 * initial ones, saved as safetensors), the same batch and the same draws (every guide site's
 * value recorded from vmm's trace; the exported trace takes it, recovering a reparameterized
 * site's noise from it so that pathwise gradients flow as in vmm) give per-site log-densities,
 * the guide's summed terms (log q, its score-function part), the bound and the gradients of the
 * estimator's loss; `compareWithTorch` returns both sides.
 *
 * PyTorch: Debian's /usr/bin/python3 has it here (the pyenv python3 on PATH has not);
 * `VMM_TORCH_PYTHON` names another. `torchPython()` is undefined when none imports torch.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { makeEstimator } from '../../src/estimators/index.ts';
import { exportData } from '../../src/export/torch/data.ts';
import { exportPytorch, writePackage } from '../../src/export/torch/package.ts';
import type { PipelineSettings } from '../../src/check/pipeline.ts';
import { CompiledModel } from '../../src/lower/compile.ts';
import { estimateObjective } from '../../src/lower/objective.ts';
import { logProb } from '../../src/lower/sites.ts';
import { toSampleBatch } from '../../src/lower/trace.ts';
import { Rng } from '../../src/random/rng.ts';
import { selectBackend } from '../../src/runtime/backend.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../../src/runtime/safetensors.ts';
import type { RawBatch } from '../../src/data/bind.ts';
import { fakeBatch } from '../lower/helpers.ts';

let found: string | null | undefined;

/** A python that imports torch, or undefined (the reason is `torchMissing`). */
export function torchPython(): string | undefined {
  if (found !== undefined) return found ?? undefined;
  const candidates = [process.env['VMM_TORCH_PYTHON'], '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const c of candidates) {
    const r = spawnSync(c, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return (found = c);
  }
  found = null;
  return undefined;
}

export const torchMissing = 'no python with torch and numpy (tried $VMM_TORCH_PYTHON, /usr/bin/python3, python3): apt-get install python3-torch';

/** Runs a Python snippet with `pkg` on its path; throws with its stderr on failure. */
export function runPython(code: string, pkg: string, timeout = 300_000): string {
  const r = spawnSync(torchPython()!, ['-c', code], { encoding: 'utf8', cwd: pkg, env: { ...process.env, PYTHONPATH: pkg, OMP_NUM_THREADS: '1' }, timeout });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** `runPython` without blocking the event loop (a long replay would stall vitest's worker RPC). */
export function runPythonAsync(code: string, pkg: string, timeout = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(torchPython()!, ['-c', code], { cwd: pkg, env: { ...process.env, PYTHONPATH: pkg, OMP_NUM_THREADS: '1' }, timeout });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (status) => (status === 0 ? resolve(out) : reject(new Error(`python failed (${status}):\n${err}\n${out}`))));
  });
}

/**
 * One Python process that replays case after case (each export's model.py and vmm_runtime.py
 * imported afresh from its folder), so that torch is imported once per test file rather than once
 * per case (~2-3 s each, 38 cases in torch_diff.test.ts). Requests are answered in order.
 */
const REPLAY_SERVER = `
import json, os, sys, traceback
import torch  # once
for line in sys.stdin:
    req = json.loads(line)
    try:
        for name in ('model', 'vmm_runtime'):
            sys.modules.pop(name, None)
        sys.path.insert(0, req['dir'])
        os.chdir(req['dir'])
        try:
            import model, vmm_runtime as rt
            rt.replay(model.Model(), req['case'], req['out'], lambda t, s: model.estimate(t, s, model.ESTIMATOR['args']))
        finally:
            sys.path.remove(req['dir'])
        print(json.dumps({'ok': True}), flush=True)
    except BaseException:
        print(json.dumps({'ok': False, 'error': traceback.format_exc()}), flush=True)
`;

interface ReplayServer {
  replay(dir: string, caseDir: string, out: string): Promise<void>;
  close(): void;
}
let server: ReplayServer | undefined;

/** Ends the replay process if one runs (a test file's afterAll). */
export function closeReplayServer(): void {
  server?.close();
}

export function replayServer(): ReplayServer {
  if (server) return server;
  const p = spawn(torchPython()!, ['-c', REPLAY_SERVER], { env: { ...process.env, OMP_NUM_THREADS: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  let buf = '';
  let err = '';
  const failAll = (e: Error) => {
    for (const w of waiting.splice(0)) w.reject(e);
    server = undefined;
  };
  p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const r = JSON.parse(line) as { ok: boolean; error?: string };
      const w = waiting.shift();
      if (w) r.ok ? w.resolve() : w.reject(new Error(`python replay failed:\n${r.error}\n${err}`));
    }
  });
  p.on('error', (e) => failAll(e));
  p.on('close', (status) => failAll(new Error(`the python replay process ended (${status}):\n${err}`)));
  // Not a reason for the test process to stay alive.
  p.unref();
  for (const stream of [p.stdin, p.stdout, p.stderr] as unknown as { unref?: () => void }[]) stream.unref?.();
  server = {
    replay: (dir, caseDir, out) =>
      new Promise<void>((resolve, reject) => {
        waiting.push({ resolve, reject });
        p.stdin.write(`${JSON.stringify({ dir, case: caseDir, out })}\n`);
      }),
    close: () => {
      p.stdin.end();
      server = undefined;
    },
  };
  return server;
}

export interface Side {
  bound: Float32Array;
  surrogate: number;
  sites: Map<string, Float32Array>;
  grads: Map<string, Float32Array>;
}

/** Exports `source` into a fresh folder and returns its path; `withData`: its data set too, as `vmm export pytorch` writes it. */
export function exportTo(source: string, settings?: PipelineSettings, withData = false): { dir: string; ir: NonNullable<ReturnType<typeof exportPytorch>['ir']> } {
  const r = exportPytorch(source, settings);
  if (!r.files) throw new Error(`export failed: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join('; ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'vmm-torch-'));
  writePackage(dir, r.files);
  if (withData) {
    const d = exportData(r.ir!);
    if ('bytes' in d) writePackage(dir, { [d.name]: d.bytes });
  }
  return { dir, ir: r.ir! };
}

const plain = (t: tf.Tensor): NamedTensor => ({ shape: t.shape, data: Float32Array.from(t.dataSync()) });

/** An Rng that keeps every block of uniforms it hands out (the truncated proposal's tail sample is the first). */
class RecordingRng extends Rng {
  readonly blocks: Float32Array[] = [];
  override uniforms(n: number): Float32Array {
    const u = super.uniforms(n);
    this.blocks.push(u);
    return u;
  }
}

/**
 * vmm's and the export's per-site log-densities, bound, surrogate and gradients on one batch
 * (`batch` examples, memories of `m` entries), vmm's initial weights of `seed`.
 */
export async function compareWithTorch(
  source: string,
  o: { settings?: PipelineSettings; batch?: number; m?: number; seed?: number; backend?: 'cpu' | 'wasm' } = {},
): Promise<{ vmm: Side; torch: Side }> {
  // Between the long synchronous stages, let vitest's worker answer its RPC (a minute's block fails the run).
  const yieldLoop = () => new Promise((r) => setImmediate(r));
  // cpu: tfjs's reference kernels. wasm (with vmm's native products and convolutions where built):
  // for the deep conv stacks, whose gradient on cpu is one synchronous block of ~50 s on an idle
  // 2-core machine (models/vma_omniglot_paper.vmm at batch 1), past vitest's 60 s RPC timeout
  // under load.
  if (o.backend === 'wasm') await selectBackend({ force: 'wasm', log: () => {} });
  else await tf.setBackend('cpu');
  const { dir, ir } = exportTo(source, o.settings);
  await yieldLoop();
  const estimator = makeEstimator(ir.train.estimator);
  const model = new CompiledModel(ir, o.seed ?? 3, { baseline: estimator.needsBaselineNet });
  await yieldLoop();
  const raw: RawBatch = fakeBatch(ir, o.batch ?? 3, { M: o.m ?? 5 }, 11);
  const k = ir.train.estimator.k;
  const run = (rng: Rng = new Rng(7)) => {
    const inputs = model.inputs(raw);
    return estimateObjective({
      ir,
      inputs,
      applyNet: model.applyNet,
      estimator,
      state: estimator.initState(),
      rng,
      ...(estimator.needsBaselineNet ? { baseline: model.baseline(inputs) } : {}),
    });
  };
  const b = raw.inputs[0]!.shape[0]!;
  const vmm: Side = { bound: new Float32Array(), surrogate: 0, sites: new Map(), grads: new Map() };
  const values: Record<string, NamedTensor> = {};
  const recorder = new RecordingRng(7);
  tf.tidy(() => {
    const r = run(recorder);
    vmm.bound = Float32Array.from(r.bound.dataSync());
    vmm.surrogate = r.surrogate.dataSync()[0]!;
    const e = r.trace.logQEnum ? r.trace.logQEnum.t.shape[0] : undefined;
    const full = (v: Parameters<typeof toSampleBatch>[0]) => Float32Array.from(toSampleBatch(v, k, b, e).dataSync());
    for (const [name, d] of r.trace.guideDists) {
      const v = r.trace.values.get(name)!;
      if ('soft' in v) {
        // A relaxed draw is replayed from its y = log of the relaxed one-hot; soft attention has no draw.
        if (v.logY) values[name] = plain(v.logY.t);
        continue;
      }
      if (!(v.plates.length === 1 && v.plates[0] === 'enum')) values[name] = plain(v.t.dtype === 'float32' ? v.t : tf.cast(v.t, 'float32'));
      vmm.sites.set(`guide/${name}`, full(logProb(d, v)));
    }
    const inputs = model.inputs(raw);
    for (const [name, d] of r.trace.modelDists) {
      const v = r.trace.values.get(name) ?? inputs.get(name)!;
      if ('soft' in v) continue;
      vmm.sites.set(`model/${name}`, full(logProb(d, v)));
    }
    // The guide's terms as summed: log q of every draw (log r(a) for a truncated proposal's address)
    // and its score-function part.
    vmm.sites.set('term/logQ', full(r.trace.logQ));
    vmm.sites.set('term/logQScore', full(r.trace.logQDiscrete));
  });
  // The truncated proposal's tail sample S (src/lower/truncated.ts): the address's first draw
  // of vmm's generator, `tail` uniform entries per example, replayed as '<address>/tail'.
  const proposal = ir.train.address;
  const address = ir.model.find((st) => st.stmt === 'site' && st.role === 'address');
  if (proposal && proposal.tail > 0 && address && !ir.softAttention?.length) {
    const m = raw.inputs.find((i) => i.name === ir.memories[0]?.name)?.shape[1] ?? 0;
    const u = recorder.blocks.find((x) => x.length === b * proposal.tail);
    if (m > proposal.k && u) values[`${address.name}/tail`] = { shape: [b, proposal.tail], data: u.map((x) => Math.min(m - 1, Math.floor(x * m))) };
  }
  await yieldLoop();
  const { grads } = tf.variableGrads(() => {
    const r = run();
    const loss = tf.neg(r.surrogate);
    return (r.extraLoss ? tf.add(loss, r.extraLoss) : loss) as tf.Scalar;
  }, [...model.variables.values()]);
  const byVar = new Map([...model.variables.entries()].map(([n, v]) => [v.name, n]));
  for (const [vn, g] of Object.entries(grads)) vmm.grads.set(byVar.get(vn) ?? vn, Float32Array.from(g.dataSync()));
  tf.dispose(grads);
  await yieldLoop();

  const weights: Record<string, NamedTensor> = {};
  for (const [n, v] of model.variables) weights[n] = plain(v);
  const inputs: Record<string, NamedTensor> = {};
  for (const i of raw.inputs) inputs[i.name] = { shape: i.shape, data: i.data as Float32Array };
  const caseDir = mkdtempSync(join(tmpdir(), 'vmm-case-'));
  writeFileSync(join(caseDir, 'weights.safetensors'), encodeSafetensors(weights));
  writeFileSync(join(caseDir, 'inputs.safetensors'), encodeSafetensors(inputs));
  writeFileSync(join(caseDir, 'values.safetensors'), encodeSafetensors(values));
  writeFileSync(join(caseDir, 'case.json'), JSON.stringify({ k }));
  model.dispose();
  const out = join(caseDir, 'torch.safetensors');
  await replayServer().replay(dir, caseDir, out);
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(out)));
  const torch: Side = { bound: tensors['bound']!.data, surrogate: tensors['surrogate']!.data[0]!, sites: new Map(), grads: new Map() };
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith('site/')) torch.sites.set(name.slice(5), t.data);
    if (name.startsWith('grad/')) torch.grads.set(name.slice(5), t.data);
  }
  return { vmm, torch };
}

/** The largest |a - b| over the largest |b| (at least `floor`), plus 1e-3: the measure every comparison uses. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / (Math.max(m, floor) + 1e-3);
}
