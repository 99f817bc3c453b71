/**
 * The objective of one minibatch for an estimator: run the trace in the addressing mode the
 * estimator asks for (sampled, enumerated, soft), shape its terms as the estimator expects
 * ([K, B] log-weights, [E, K, B] joint terms), and return what the estimator makes of them.
 * Also the evaluation quantities that are not training objectives: the K-sample bound with many
 * samples (chunked), q(a | x) for few-shot accuracy and KL(q(a|x) || p(a)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { Estimator, EstimatorResult, EstimatorState } from '../estimators/types.ts';
import type { Rng } from '../random/rng.ts';
import type { IrProgram } from '../ir/types.ts';
import type { EvalContext } from './evaluate.ts';
import { alignTo, broadcastTo, reshape, type Value } from './plates.ts';
import { estimatorSpec } from '../estimators/registry.ts';
import { guideMean, guideWeights, handlersFor, readHandlers, truncated, type Handler } from './handlers.ts';
import type { AddressCache } from './cached_keys.ts';
import { runTrace, toSampleBatch, type Inputs, type Trace } from './trace.ts';

export interface ObjectiveInput {
  ir: IrProgram;
  inputs: Inputs;
  applyNet: EvalContext['applyNet'];
  estimator: Estimator;
  state: EstimatorState;
  rng: Rng;
  /** b(x) for NVIL: computed by the caller from the inputs when the estimator needs it. */
  baseline?: tf.Tensor;
  /** A shared memory's cached keys for `address = topk(k, tail)` (./cached_keys.ts), kept by the trainer. */
  addressCache?: AddressCache;
}

export function batchSize(inputs: Inputs): number {
  for (const v of inputs.values()) {
    const i = v.plates.indexOf('batch');
    if (i >= 0) return v.t.shape[i]!;
  }
  throw new InternalError('lower', 'no input carries the batch plate');
}

/** Runs the model for the estimator and returns its result (call inside tf.tidy / a gradient fn). */
export function estimateObjective(o: ObjectiveInput): EstimatorResult & { trace: Trace } {
  const settings = o.ir.train.estimator;
  const spec = estimatorSpec(settings.kind);
  if (!spec) throw new InternalError('lower', `unknown estimator ${settings.kind}`);
  const k = o.estimator.k;
  const b = batchSize(o.inputs);
  transformed(o.ir, settings.kind === 'soft' ? 'soft' : 'sample');
  const trace = runTrace(o.ir, o.inputs, o.applyNet, {
    k,
    rng: o.rng,
    handlers: [...addressHandlers(o.ir), ...handlersFor(settings)],
    ...(o.addressCache && o.ir.train.address ? { addressCache: o.addressCache } : {}),
  });
  if (spec.terms === 'enumerated') {
    const e = trace.logQEnum!.t.shape[0]!;
    const logJoint = tf.sub(toSampleBatch(trace.logP, k, b, e), toSampleBatch(trace.logQ, k, b, e));
    const logQAddress = alignTo(trace.logQEnum!, ['enum', 'batch']);
    const r = o.estimator.estimate({ kind: 'enumerated', logJoint, logQAddress: broadcastTo(logQAddress, [e, b]) }, o.state);
    return { ...r, trace };
  }
  const logWeights = tf.sub(toSampleBatch(trace.logP, k, b), toSampleBatch(trace.logQ, k, b));
  const discrete = o.estimator.discrete === 'score' || o.estimator.discrete === 'wake';
  const r = o.estimator.estimate(
    {
      kind: 'sampled',
      logWeights,
      ...(discrete ? { logQDiscrete: toSampleBatch(trace.logQDiscrete, k, b) } : {}),
      ...(o.baseline ? { baseline: o.baseline } : {}),
    },
    o.state,
  );
  return { ...r, trace };
}

/**
 * The K-sample importance-weighted bound log (1/K) sum_k w_k per example, with K up to
 * thousands, in chunks of `chunk` samples combined by logsumexp (Burda et al. 2015). With
 * `reads: 'sample'` it is a stochastic lower bound on log p(x | memory) whatever estimator
 * trained the model; with 'soft' it is the bound of the soft-attention model (a model of its own:
 * src/ir/addressing.ts), a stochastic lower bound on its log p(x | memory).
 */
export function importanceBound(
  ir: IrProgram,
  inputs: Inputs,
  applyNet: EvalContext['applyNet'],
  opts: { k: number; chunk: number; rng: Rng; reads: 'sample' | 'soft' },
): Float32Array {
  const b = batchSize(inputs);
  const partial: Float32Array[] = [];
  for (const lse of boundChunks(ir, () => inputs, applyNet, opts)) {
    partial.push(lse.dataSync() as Float32Array);
    lse.dispose();
  }
  return combineChunks(partial, b, opts.k);
}

/**
 * `importanceBound` with asynchronous reads, for any backend (webgpu reads only so;
 * src/kernels/readback.ts). `inputs` is called once per chunk, inside the chunk's tidy scope: no
 * tensor outlives a chunk, across the awaits between them.
 */
export async function importanceBoundAsync(
  ir: IrProgram,
  inputs: () => Inputs,
  applyNet: EvalContext['applyNet'],
  opts: { k: number; chunk: number; rng: Rng; reads: 'sample' | 'soft' },
): Promise<Float32Array> {
  const partial: Float32Array[] = [];
  let b = 0;
  for (const lse of boundChunks(ir, inputs, applyNet, opts)) {
    b = lse.shape[0]!;
    partial.push((await lse.data()) as Float32Array);
    lse.dispose();
  }
  return combineChunks(partial, b, opts.k);
}

/** The per-chunk logsumexp of the log-weights, `[B]` each, chunk by chunk (the caller disposes each). */
function* boundChunks(
  ir: IrProgram,
  inputs: () => Inputs,
  applyNet: EvalContext['applyNet'],
  opts: { k: number; chunk: number; rng: Rng; reads: 'sample' | 'soft' },
): Generator<tf.Tensor1D> {
  transformed(ir, opts.reads);
  let done = 0;
  while (done < opts.k) {
    const k = Math.min(opts.chunk, opts.k - done);
    yield tf.tidy(() => {
      const inp = inputs();
      const b = batchSize(inp);
      const handlers = [...(opts.reads === 'sample' ? addressHandlers(ir) : []), ...readHandlers(opts.reads)];
      const trace = runTrace(ir, inp, applyNet, { k, rng: opts.rng, handlers });
      const lw = tf.sub(toSampleBatch(trace.logP, k, b), toSampleBatch(trace.logQ, k, b));
      return tf.logSumExp(lw, 0) as tf.Tensor1D;
    });
    done += k;
  }
}

/** log (1/K) sum over all chunks, from each chunk's logsumexp `[B]`. */
function combineChunks(partial: Float32Array[], b: number, k: number): Float32Array {
  const out = new Float32Array(b);
  for (let i = 0; i < b; i++) {
    let m = -Infinity;
    for (const p of partial) m = Math.max(m, p[i]!);
    let s = 0;
    for (const p of partial) s += Math.exp(p[i]! - m);
    out[i] = m + Math.log(s) - Math.log(k);
  }
  return out;
}

/** The handler of the train block's address proposal (`address = topk(k, tail)`), on top of the estimator's. */
function addressHandlers(ir: IrProgram): Handler[] {
  const a = ir.train.address;
  return a && !ir.softAttention?.length ? [truncated(a.k, a.tail)] : [];
}

/**
 * Soft reads score the soft-attention model (src/ir/addressing.ts); the control, its inputs
 * replaced. A program that reached here without its transform would train or score another model
 * than the one named: a bug in the caller, caught here rather than reported as a figure.
 */
function transformed(ir: IrProgram, reads: 'sample' | 'soft'): void {
  if (reads === 'soft' && !ir.softAttention) throw new InternalError('lower', 'soft reads of a program without its soft-attention transform (withAddressing)');
  if (ir.train.control && !ir.noMemory) throw new InternalError('lower', 'a no-memory control without its transform (withAddressing)');
}

/**
 * What the K-sample bound of `importanceBound` bounds, in words, for every report: the same
 * quantity for the hard and soft variants of a file (log p(x | memory) of a generative model that
 * never sees the target when it reads memory), of different models.
 */
export function describeBound(ir: IrProgram, samples: number): string {
  const iw = `${samples}-sample importance-weighted bound on log p(x | memory)`;
  if (ir.noMemory?.length) return `${iw} of the no-memory control (every memory entry one learned entry)`;
  if (ir.softAttention?.length) return `${iw} of the soft-attention model (a latent query u ~ N(0, I), reads weighted by softmax(keys @ u); guide q(u, z | x))`;
  const a = ir.train.address;
  if (a && ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) {
    return `${iw}, addresses drawn from the truncated proposal topk(k: ${a.k}, tail: ${a.tail}) (the guide's ${a.k} most probable entries, the others uniformly) and weighted by its density, latents from the guide q(z | x, a)`;
  }
  if (ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) return `${iw}, addresses and latents drawn from the guide q(a, z | x)`;
  return iw;
}

/** q(a | x) for the first address site: probabilities [B, M] (from the guide's Categorical; soft attention: at the mean query). */
export function addressPosterior(ir: IrProgram, inputs: Inputs, applyNet: EvalContext['applyNet'], rng: Rng): tf.Tensor {
  const addr = ir.model.find((s) => s.stmt === 'site' && s.role === 'address');
  if (!addr) throw new InternalError('lower', `${ir.name} has no address site`);
  return tf.tidy(() => {
    // The soft-attention model's q(a | x): the attention weights at the guide's mean query.
    const queries = new Set((ir.softAttention ?? []).map((q) => q.query));
    const trace = runTrace(ir, inputs, applyNet, { k: 1, rng, handlers: [guideWeights(), ...(queries.size ? [guideMean(queries)] : [])] });
    const w = trace.values.get(addr.name);
    if (!w || !('soft' in w)) throw new InternalError('lower', 'address posterior not computed');
    const v: Value = w.soft;
    const b = batchSize(inputs);
    // q(a | x) of an address over latent slots depends on their (one) sampled value.
    if (v.plates.includes('sample')) return reshape(alignTo(v, ['sample', 'batch'], undefined, { sample: 1, batch: b }), [b, -1]);
    return alignTo(v, ['batch'], undefined, { batch: b });
  });
}
