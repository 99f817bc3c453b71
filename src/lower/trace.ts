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
import { stopGradient } from '../kernels/stop_gradient.ts';
import type { IrDist, IrExpr, IrProgram, IrSite, Size } from '../ir/types.ts';
import { cacheKey, evaluate, type Binding, type EvalContext } from './evaluate.ts';
import { broadcastTo, broadcastValues, reshape, type Value } from './plates.ts';
import type { Rng } from '../random/rng.ts';
import { ancestral, softAttention, TERM, type Handler, type SiteMessage, type TraceContext } from './handlers.ts';
import { cacheApplies, cachedAddress, type AddressCache } from './cached_keys.ts';
import { bindDist, expandToEvent, logProb, needsScoreFunction, sampleScored, type BoundDist } from './sites.ts';

export interface TraceOptions {
  k: number;
  rng: Rng;
  /** The handler stack, top first (./handlers.ts); the defaults below apply where none decides. */
  handlers: readonly Handler[];
  /** False: no guide phase (generation from the prior with the `ancestral` handler). */
  guide?: boolean;
  /**
   * A shared memory's cached keys (./cached_keys.ts, kept by the trainer): where it applies, the
   * guide's address site is not bound over every entry; the `truncated` handler reads the cache.
   */
  addressCache?: AddressCache;
}

/** Inputs of a pass: data [B, ...], memories [B, M, ...] or shared [M, ...], params (no plates). */
export type Inputs = Map<string, Value>;

export interface Trace {
  /** Every accumulator the handlers filled (TERM.logP, TERM.logQ, ...), by name. */
  terms: Map<string, Value>;
  /** Sum of the model's log-densities (latents, addresses, observations). */
  logP: Value;
  /** Sum of the guide's log-densities of the drawn sites. */
  logQ: Value;
  /** The part of logQ from draws without a pathwise gradient: the score-function term. */
  logQDiscrete: Value;
  /** Enumerate handler: log q(a = i | x) on the enum plate, for training the address guide. */
  logQEnum?: Value;
  /** Values of every site (guide draws, enumerated values, soft weights). */
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

/**
 * One pass of guide then model through the handler stack. Defaults where no handler decided:
 * the guide draws K values per example (reparameterized when the family allows, its density
 * into TERM.logQ, and into TERM.logQScore when the draw has no pathwise gradient); the model
 * scores the guide's value (or the observation) into TERM.logP.
 */
export function runTrace(ir: IrProgram, inputs: Inputs, applyNet: EvalContext['applyNet'], opts: TraceOptions): Trace {
  const sizes = sizeBindings(ir, inputs);
  const uniformSize = (d: IrDist & { kind: 'Categorical' }) => resolveSize(d.n, sizes);
  const cache = new Map<string, Value>();
  const values = new Map<string, Binding>();
  const guideDists = new Map<string, BoundDist>();
  const modelDists = new Map<string, BoundDist>();
  const terms = new Map<string, Value>();
  const modelSites = new Map<string, IrSite>();
  for (const s of ir.model) if (s.stmt === 'site') modelSites.set(s.name, s);
  const ctx: TraceContext = { k: opts.k, rng: opts.rng, ir };
  const add = (term: string, v: Value) => {
    const prev = terms.get(term);
    terms.set(term, prev === undefined ? v : addValues(prev, v));
  };
  const handle = (msg: SiteMessage): void => {
    for (const h of opts.handlers) h.process?.(msg, ctx);
    if (!msg.value) {
      if (msg.phase === 'guide') {
        const drawn = sampleScored(msg.dist, opts.k, opts.rng);
        msg.value = drawn.value;
        msg.logProb ??= drawn.logProb;
        msg.score ||= needsScoreFunction(msg.dist);
      } else {
        msg.value = msg.site.role === 'observe' ? inputs.get(msg.site.name) : values.get(msg.site.name);
        if (!msg.value) throw new InternalError('lower', `no value for site ${msg.site.name}`);
      }
    }
    for (let i = opts.handlers.length - 1; i >= 0; i--) opts.handlers[i]!.postprocess?.(msg, ctx);
    if (msg.term === undefined) return;
    if (!msg.logProb) {
      if ('soft' in msg.value) throw new InternalError('lower', `soft value of ${msg.site.name} has no density`);
      msg.logProb = logProb(msg.dist, msg.value);
    }
    add(msg.term, msg.logProb);
    if (msg.phase === 'guide' && msg.score) add(TERM.logQScore, msg.logProb);
  };

  // ---- guide: draw every latent.
  if (opts.guide !== false) {
    const genv = new Map<string, Binding>(inputs);
    const gctx: EvalContext = { env: genv, applyNet, cache, letKeys: new Map() };
    for (const st of ir.guide.stmts) {
      if (st.stmt === 'let') {
        bindLet(st.name, st.value, gctx);
        continue;
      }
      const site = modelSites.get(st.name);
      if (!site) throw new InternalError('lower', `guide site ${st.name} has no model site`);
      const bind = () => expandToEvent(bindDist(st.dist, gctx, uniformSize), site.type.shape.map((x) => resolveSize(x, sizes)));
      // The cached path binds the address's table only if a handler asks for it (none does).
      const keyCache = opts.addressCache;
      const cached = keyCache !== undefined && keyCache.split.address === st.name && cacheApplies(keyCache.split, inputs);
      if (cached) ctx.cachedAddress = cachedAddress(keyCache, genv, gctx, batchOf(inputs));
      let d: BoundDist | undefined = cached ? undefined : bind();
      if (d) guideDists.set(st.name, d);
      const upTo = ir.guide.stmts.indexOf(st);
      /** This site's guide distribution with the named inputs (params) seen through stopGradient. */
      const rebind = (stopped: ReadonlySet<string>): BoundDist => {
        const env = new Map<string, Binding>(genv);
        for (const name of stopped) {
          const v = inputs.get(name);
          if (v) env.set(name, { t: stopGradient(v.t), plates: v.plates });
        }
        const ctx2: EvalContext = { env, applyNet, cache: new Map(), letKeys: new Map() };
        for (const prev of ir.guide.stmts.slice(0, upTo)) if (prev.stmt === 'let') bindLet(prev.name, prev.value, ctx2);
        return bindDist(st.dist, ctx2, uniformSize);
      };
      const msg: SiteMessage = {
        site,
        phase: 'guide',
        get dist() {
          return (d ??= bind());
        },
        modelDist: () => bindDist(site.dist, gctx, uniformSize),
        rebind,
        term: TERM.logQ,
        score: false,
      };
      handle(msg);
      if (d && !guideDists.has(st.name)) guideDists.set(st.name, d);
      genv.set(st.name, msg.value!);
      values.set(st.name, msg.value!);
    }
  }

  // ---- model: score the guide's draws and the observations.
  const menv = new Map<string, Binding>(inputs);
  for (const [name, v] of values) menv.set(name, v);
  const mctx: EvalContext = { env: menv, applyNet, cache, letKeys: new Map() };
  for (const st of ir.model) {
    if (st.stmt === 'let') {
      bindLet(st.name, st.value, mctx);
      continue;
    }
    const d = expandToEvent(bindDist(st.dist, mctx, uniformSize), st.type.shape.map((x) => resolveSize(x, sizes)));
    modelDists.set(st.name, d);
    const msg: SiteMessage = { site: st, phase: 'model', dist: d, modelDist: () => d, rebind: () => d, term: TERM.logP, score: false };
    const given = values.get(st.name);
    if (given) msg.value = given;
    handle(msg);
    if (st.role !== 'observe') {
      menv.set(st.name, msg.value!);
      values.set(st.name, msg.value!);
    }
  }
  const logQEnum = terms.get(TERM.logQEnum);
  return {
    terms,
    logP: terms.get(TERM.logP) ?? zero(),
    logQ: terms.get(TERM.logQ) ?? zero(),
    logQDiscrete: terms.get(TERM.logQScore) ?? zero(),
    ...(logQEnum ? { logQEnum } : {}),
    values,
    guideDists,
    modelDists,
  };
}

/** The size of the batch plate of the inputs. */
function batchOf(inputs: Inputs): number {
  for (const v of inputs.values()) {
    const i = v.plates.indexOf('batch');
    if (i >= 0) return v.t.shape[i]!;
  }
  throw new InternalError('lower', 'no input carries the batch plate');
}

/** Binds a `let` and records its cache key so later expressions that use it can be shared. */
function bindLet(name: string, value: IrExpr, ctx: EvalContext): void {
  ctx.env.set(name, evaluate(value, ctx));
  const key = cacheKey(value, ctx.letKeys);
  if (key !== undefined) ctx.letKeys?.set(name, key);
}

/**
 * Ancestral sampling from the model given memories (no target): every latent drawn from its
 * prior, addresses from p(a | M) (or, `soft`, the soft-attention model's reads from its prior query).
 * Returns the distributions of the observed sites (their means make the pictures) and the values.
 */
export function runPrior(
  ir: IrProgram,
  inputs: Inputs,
  applyNet: EvalContext['applyNet'],
  opts: { k: number; rng: Rng; soft?: boolean },
): { observed: Map<string, BoundDist>; values: Map<string, Binding> } {
  const handlers = [...(opts.soft ? [softAttention()] : []), ancestral()];
  const t = runTrace(ir, inputs, applyNet, { k: opts.k, rng: opts.rng, handlers, guide: false });
  const observed = new Map<string, BoundDist>();
  for (const s of ir.model) if (s.stmt === 'site' && s.role === 'observe') observed.set(s.name, t.modelDists.get(s.name)!);
  return { observed, values: t.values };
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
