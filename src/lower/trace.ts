/**
 * One pass of guide then model over a minibatch: the guide draws every latent (K samples per
 * example), the model scores them. The result holds log p(x, latents) and log q(latents | x) as
 * plated values, from which an estimator (src/estimators/) builds its objective.
 *
 * This is the executable form of the IR's program: no code generation, the IR is walked directly
 * on tfjs tensors inside the caller's tf.tidy.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { IrDist, IrExpr, IrProgram, IrSite, Size } from '../ir/types.ts';
import { cacheKey, evaluate, type Binding, type EvalContext } from './evaluate.ts';
import { broadcastTo, broadcastValues, reshape, type Value } from './plates.ts';
import type { Rng } from '../estimators/rng.ts';
import { bindDist, categoricalProbs, enumerateValues, logProb, sample, sampleScored, type BoundDist } from './sites.ts';

/**
 * How addresses are read in this pass (the estimator decides; see evaluate.ts). 'enumerate'
 * sums over the model's one discrete Categorical site, address or not.
 */
export type AddressMode = 'sample' | 'enumerate' | 'soft';

export interface TraceOptions {
  k: number;
  addressing: AddressMode;
  rng: Rng;
  /** Soft mode only: read with the prior p(a) instead of q(a | x) (generation without a target). */
  softWeightsFromPrior?: boolean;
}

/** Inputs of a pass: data [B, ...], memories [B, M, ...] or shared [M, ...], params (no plates). */
export type Inputs = Map<string, Value>;

export interface Trace {
  /** Sum of the model's log-densities (latents, addresses, observations). */
  logP: Value;
  /** Sum of the guide's log-densities of the sampled sites. */
  logQ: Value;
  /** The part of logQ from discrete (non-reparameterizable) sites: the score-function term. */
  logQDiscrete: Value;
  /** Enumerate mode: log q(a = i | x) on the enum plate, for training the address guide. */
  logQEnum?: Value;
  /** Values of every site (guide samples, enumerated values) and the soft weights. */
  values: Map<string, Binding>;
  guideDists: Map<string, BoundDist>;
  modelDists: Map<string, BoundDist>;
}

/** A zero log-density with no plates (created per call: tensors must not live at module scope). */
const zero = (): Value => ({ t: tf.scalar(0), plates: [] });

export function addValues(a: Value, b: Value): Value {
  const { tensors, plates } = broadcastValues([a, b]);
  return { t: tf.add(tensors[0]!, tensors[1]!), plates };
}

/** `a + b` where `a` may be nothing yet (a running sum of log-densities starts at its first term). */
function accumulate(a: Value | undefined, b: Value): Value {
  return a === undefined ? b : addValues(a, b);
}

/** Binds size symbols from the shapes of the memories actually supplied (e.g. M = 32). */
export function sizeBindings(ir: IrProgram, inputs: Inputs): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of ir.memories) {
    const v = inputs.get(m.name);
    if (!v) continue;
    const ev = v.t.shape.slice(v.plates.length);
    m.type.shape.forEach((s, i) => {
      const syms = Object.entries(s.terms).filter(([, c]) => c !== 0);
      if (syms.length === 1 && syms[0]![1] === 1) out.set(syms[0]![0], ev[i]! - s.c);
    });
  }
  return out;
}

export function resolveSize(s: Size, bindings: Map<string, number>): number {
  let n = s.c;
  for (const [sym, coeff] of Object.entries(s.terms)) {
    const v = bindings.get(sym);
    if (v === undefined) throw new InternalError('lower', `size symbol ${sym} is not bound by any memory`);
    n += coeff * v;
  }
  return n;
}

export function runTrace(
  ir: IrProgram,
  inputs: Inputs,
  applyNet: EvalContext['applyNet'],
  opts: TraceOptions,
): Trace {
  const sizes = sizeBindings(ir, inputs);
  const uniformSize = (d: IrDist & { kind: 'Categorical' }) => resolveSize(d.n, sizes);
  const cache = new Map<string, Value>();
  const values = new Map<string, Binding>();
  const guideDists = new Map<string, BoundDist>();
  const modelDists = new Map<string, BoundDist>();
  const modelSites = new Map<string, IrSite>();
  for (const s of ir.model) if (s.stmt === 'site') modelSites.set(s.name, s);

  let logQ: Value | undefined;
  let logQDiscrete: Value | undefined;
  let logQEnum: Value | undefined;

  // ---- guide: draw every latent.
  const genv = new Map<string, Binding>(inputs);
  const gctx: EvalContext = { env: genv, applyNet, cache, letKeys: new Map() };
  for (const st of ir.guide.stmts) {
    if (st.stmt === 'let') {
      bindLet(st.name, st.value, gctx);
      continue;
    }
    const site = modelSites.get(st.name);
    if (!site) throw new InternalError('lower', `guide site ${st.name} has no model site`);
    const d = bindDist(st.dist, gctx, uniformSize);
    guideDists.set(st.name, d);
    let v: Binding;
    if (site.role === 'address' && opts.addressing === 'soft') {
      v = { soft: opts.softWeightsFromPrior ? priorWeights(site, gctx, uniformSize) : categoricalProbs(d) };
    } else if (site.discrete && opts.addressing === 'enumerate') {
      // validateEstimatorFor guarantees exactly one discrete site, a Categorical.
      v = enumerateValues(d);
      logQEnum = logProb(d, v);
    } else {
      const drawn = sampleScored(d, opts.k, opts.rng);
      v = drawn.value;
      const lq = drawn.logProb;
      logQ = accumulate(logQ, lq);
      if (site.discrete) logQDiscrete = accumulate(logQDiscrete, lq);
    }
    genv.set(st.name, v);
    values.set(st.name, v);
  }

  // ---- model: score the guide's draws and the observations.
  const menv = new Map<string, Binding>(inputs);
  for (const [name, v] of values) menv.set(name, v);
  const mctx: EvalContext = { env: menv, applyNet, cache, letKeys: new Map() };
  let logP: Value | undefined;
  for (const st of ir.model) {
    if (st.stmt === 'let') {
      bindLet(st.name, st.value, mctx);
      continue;
    }
    if (st.role === 'address' && opts.addressing === 'soft') continue; // deterministic read: no density
    const d = bindDist(st.dist, mctx, uniformSize);
    modelDists.set(st.name, d);
    const x = st.role === 'observe' ? inputs.get(st.name) : menv.get(st.name);
    if (!x || 'soft' in x) throw new InternalError('lower', `no value for site ${st.name}`);
    logP = accumulate(logP, logProb(d, x));
  }
  return {
    logP: logP ?? zero(),
    logQ: logQ ?? zero(),
    logQDiscrete: logQDiscrete ?? zero(),
    logQEnum,
    values,
    guideDists,
    modelDists,
  };
}

/** Binds a `let` and records its cache key so later expressions that use it can be shared. */
function bindLet(name: string, value: IrExpr, ctx: EvalContext): void {
  ctx.env.set(name, evaluate(value, ctx));
  const key = cacheKey(value, ctx.letKeys);
  if (key !== undefined) ctx.letKeys?.set(name, key);
}

/** p(a | M) as attention weights (uniform or the model's logits), for soft generation. */
function priorWeights(site: IrSite, ctx: EvalContext, n: (d: IrDist & { kind: 'Categorical' }) => number): Value {
  const d = bindDist(site.dist, ctx, n);
  return categoricalProbs(d);
}

/**
 * Ancestral sampling from the model given memories (no target): every latent drawn from its
 * prior, addresses from p(a | M). Returns the distributions of the observed sites (their means
 * make the pictures) and the sampled addresses.
 */
export function runPrior(
  ir: IrProgram,
  inputs: Inputs,
  applyNet: EvalContext['applyNet'],
  opts: TraceOptions,
): { observed: Map<string, BoundDist>; values: Map<string, Binding> } {
  const sizes = sizeBindings(ir, inputs);
  const uniformSize = (d: IrDist & { kind: 'Categorical' }) => resolveSize(d.n, sizes);
  const env = new Map<string, Binding>(inputs);
  const ctx: EvalContext = { env, applyNet, cache: new Map() };
  const observed = new Map<string, BoundDist>();
  const values = new Map<string, Binding>();
  for (const st of ir.model) {
    if (st.stmt === 'let') {
      env.set(st.name, evaluate(st.value, ctx));
      continue;
    }
    const d = bindDist(st.dist, ctx, uniformSize);
    if (st.role === 'observe') {
      observed.set(st.name, d);
      continue;
    }
    const v: Binding =
      st.role === 'address' && opts.addressing === 'soft'
        ? { soft: categoricalProbs(d) }
        : sample(d, opts.k, opts.rng);
    env.set(st.name, v);
    values.set(st.name, v);
  }
  return { observed, values };
}

/** A per-example scalar value broadcast to exactly [K, B] (or [E, K, B] with the enum plate). */
export function toSampleBatch(v: Value, k: number, b: number, e?: number): tf.Tensor {
  const hasEnum = e !== undefined;
  const target = hasEnum ? (['enum', 'sample', 'batch'] as const) : (['sample', 'batch'] as const);
  const shape: number[] = [];
  for (const p of target) {
    const i = v.plates.indexOf(p);
    shape.push(i >= 0 ? v.t.shape[i]! : 1);
  }
  const full = hasEnum ? [e, k, b] : [k, b];
  if (v.t.rank !== v.plates.length) throw new InternalError('lower', 'toSampleBatch expects a per-example scalar');
  return broadcastTo(reshape(v.t, shape), full as number[]);
}
