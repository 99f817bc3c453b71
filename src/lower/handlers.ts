/**
 * Effect handlers for the trace (the idea of Pyro's poutine messengers and NumPyro's
 * handlers.py): walking the IR, every site becomes a message that passes through a stack of
 * handlers. Each may draw or fix the site's value, say which log-density accumulator ("term") its
 * density goes into, or hide it. What is not decided by a handler gets the default in ./trace.ts:
 * the guide draws (reparameterized where it can), the model scores the guide's value or the
 * observation.
 *
 * Sampled, enumerated, soft and relaxed reads of an address are handlers here, not switches in
 * the evaluator: an estimator names the handlers it needs (src/estimators/registry.ts), and a new
 * way to treat a site is a new handler (docs/extending.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { Rng } from '../random/rng.ts';
import { stopGradient } from '../kernels/stop_gradient.ts';
import { argValue, estimatorSpec, filledSettings, type HandlerName } from '../estimators/registry.ts';
import { childrenOf, exprsOf } from '../ir/traverse.ts';
import type { EstimatorSettings, IrExpr, IrProgram, IrSite } from '../ir/types.ts';
import type { Binding } from './evaluate.ts';
import type { Value } from './plates.ts';
import { drawFromProposal, proposalFromTable, proposalFromTop } from './truncated.ts';
import { categoricalProbs, enumerateValues, logProb, mean, relaxedLogProb, relaxedSample, sample, type BoundDist } from './sites.ts';

export type Phase = 'guide' | 'model';

/** Accumulators of a trace. Handlers may add their own names; estimators read the ones they know. */
export const TERM = {
  /** log p(x, latents): the model's densities. */
  logP: 'logP',
  /** log q(latents | x): the guide's densities of the drawn values. */
  logQ: 'logQ',
  /** The part of logQ from draws without a pathwise gradient (the score-function term). */
  logQScore: 'logQScore',
  /** log q(a = i | x) of an enumerated site, on the enum plate. */
  logQEnum: 'logQEnum',
} as const;

export interface SiteMessage {
  /** The model's site (its role, type, discreteness), also in the guide phase. */
  readonly site: IrSite;
  readonly phase: Phase;
  /** The distribution of this phase's statement, with its parameters evaluated. */
  readonly dist: BoundDist;
  /** Binds the model's own distribution of the site in the guide's scope (soft generation reads p(a)). */
  readonly modelDist: () => BoundDist;
  /** Guide phase: this site's distribution again, with the named params seen through stopGradient. */
  readonly rebind: (stopped: ReadonlySet<string>) => BoundDist;
  value?: Binding;
  /** The density of `value` under `dist`, when the handler that drew it computed it already. */
  logProb?: Value;
  /** The accumulator the density goes into; undefined: none (a soft read, a blocked site). */
  term: string | undefined;
  /** A guide draw without a pathwise gradient: its density also goes into TERM.logQScore. */
  score: boolean;
}

export interface TraceContext {
  /** Samples per example. */
  k: number;
  rng: Rng;
  ir: IrProgram;
  /** A shared memory's cached keys for the `truncated` handler (trace option `addressCache`). */
  cachedAddress?: CachedAddress;
}

/**
 * The guide's address logits `keys(mem) @ query(x)` of a shared memory, read without computing
 * them over every entry (issue #26): `top(k)` `[B, k]` (int32, no gradient) are the entries whose
 * keys, cached from earlier weights, score highest against the query (over every entry, or the
 * probed buckets: ./cached_keys.ts), `size` the memory's M, `logitsAt(idx)` the current logits of
 * the entries `idx` `[B, n]` only (their keys recomputed from the gathered rows), differentiable.
 */
export interface CachedAddress {
  site: string;
  size: number;
  top: (k: number) => tf.Tensor;
  logitsAt: (idx: tf.Tensor) => tf.Tensor;
}

export interface Handler {
  readonly name: string;
  /** Top of the stack first: may set the value, the density, the term. */
  process?(msg: SiteMessage, ctx: TraceContext): void;
  /** After the value is fixed, bottom of the stack first. */
  postprocess?(msg: SiteMessage, ctx: TraceContext): void;
}

const isAddress = (msg: SiteMessage) => msg.site.role === 'address';

/**
 * Exact summation: the one discrete site of an enumerable family (a Categorical) takes every value on the `enum` plate, and
 * log q(a = i | x) goes into TERM.logQEnum, where the estimator trains the guide towards the exact
 * posterior. That term must move the guide only: params the model also reads (learned entries in
 * `stack(mem, dummies)`) are seen through stopGradient in it, so that they follow the exact
 * gradient of the bound alone.
 */
export function enumerate(): Handler {
  return {
    name: 'enumerate',
    process(msg, ctx) {
      if (msg.phase !== 'guide' || msg.value || !msg.site.discrete || !msg.dist.spec.enumerable) return;
      const shared = modelParams(ctx.ir);
      const d = shared.size ? msg.rebind(shared) : msg.dist;
      msg.value = enumerateValues(d);
      msg.logProb = logProb(d, msg.value);
      msg.term = TERM.logQEnum;
      msg.score = false;
    },
  };
}

const modelParamsOf = new WeakMap<IrProgram, Set<string>>();

/** The params the model's statements read (directly or through its lets); computed once per program. */
export function modelParams(ir: IrProgram): Set<string> {
  const known = modelParamsOf.get(ir);
  if (known) return known;
  const out = new Set<string>();
  modelParamsOf.set(ir, out);
  const visit = (e: IrExpr): void => {
    if (e.op === 'ref') {
      if (e.ref === 'param') out.add(e.name);
      return;
    }
    for (const c of childrenOf(e)) visit(c);
  };
  for (const e of exprsOf(ir.model)) visit(e);
  return out;
}

/**
 * The guide's address weights q(a | x) as the address's value (reads become weighted sums of
 * entries) with no density: used to read q(a | x) off a trace (few-shot accuracy, the KL of the
 * address), never to score a model, whose reads would then see the target through the weights.
 */
export function guideWeights(): Handler {
  return {
    name: 'guide-weights',
    process(msg) {
      if (!isAddress(msg)) return;
      if (msg.phase === 'guide' && !msg.value) msg.value = { soft: categoricalProbs(msg.dist) };
      msg.term = undefined;
      msg.score = false;
    },
  };
}

/**
 * Fixes the named continuous guide sites at their guide's mean (the soft-attention query when
 * q(a | x) is read off for classification: argmax_i softmax(keys @ E[u | x])_i is then the same
 * rule as the hard guide's argmax_i keys_i . query(x), without the noise of one sampled query).
 */
export function guideMean(names: ReadonlySet<string>): Handler {
  return {
    name: 'guide-mean',
    process(msg) {
      if (msg.phase !== 'guide' || msg.value || !names.has(msg.site.name)) return;
      msg.value = mean(msg.dist);
      msg.term = undefined;
      msg.score = false;
    },
  };
}

/**
 * Soft attention in a generative model (background.md §2; src/ir/addressing.ts): the address
 * holds attention weights and reads become weighted sums of entries; the address has no density
 * (it is a deterministic function of the model's query latent). In the model phase the weights are
 * always the MODEL's own distribution of the address, softmax(keys @ u) for the query u, never the
 * guide's: a read that used q(a | x) would see the target, and its "bound" would not bound any
 * model's likelihood (issue #20). The guide phase reads with the guide's weights, which the
 * transform makes the same function of the (guide-drawn) query.
 */
export function softAttention(): Handler {
  return {
    name: 'soft',
    process(msg) {
      if (!isAddress(msg)) return;
      msg.value = { soft: categoricalProbs(msg.dist) };
      msg.term = undefined;
      msg.score = false;
    },
  };
}

/**
 * Gumbel-softmax / Concrete relaxation (Jang et al. 2016, arXiv:1611.01144; Maddison et al. 2016,
 * arXiv:1611.00712): the guide draws y = log of a relaxed one-hot at `temperature`, reads are
 * weighted by exp(y), and y is scored with ExpConcrete densities in the guide and the model.
 */
export function relaxed(temperature: number): Handler {
  return {
    name: 'relaxed',
    process(msg, ctx) {
      if (!isAddress(msg)) return;
      if (msg.phase === 'guide' && !msg.value) {
        const y = relaxedSample(msg.dist, ctx.k, temperature, ctx.rng);
        msg.value = { soft: { t: tf.exp(y.t), plates: y.plates }, logY: y };
        msg.logProb = relaxedLogProb(msg.dist, y, temperature);
        msg.score = false;
      } else if (msg.phase === 'model') {
        const v = msg.value;
        if (!v || !('soft' in v) || !v.logY) throw new InternalError('lower', `relaxed site ${msg.site.name} has no relaxed draw`);
        msg.logProb = relaxedLogProb(msg.dist, v.logY, temperature);
      }
    },
  };
}

/**
 * Wake-phase draws (reweighted wake-sleep, Bornschein & Bengio 2015, arXiv:1406.2751): every
 * latent is drawn without a gradient, and its density is the guide's log q(h | x) of the fixed
 * draw, differentiable in the guide's parameters only.
 */
export function wake(): Handler {
  return {
    name: 'wake',
    process(msg, ctx) {
      if (msg.phase !== 'guide' || msg.value) return;
      const v = sample(msg.dist, ctx.k, ctx.rng);
      msg.value = { t: stopGradient(v.t), plates: v.plates };
      msg.score = true;
    },
  };
}

/**
 * A truncated address proposal (`address = topk(k: K, tail: T)`, issue #26; ./truncated.ts): the
 * guide's address is drawn from r(a) = (1 - eps) q(a | x) / q(top) on its K most probable entries
 * and eps / (M - K) on every other entry, and r's density is the address's log q, so the
 * importance weights p(x, a, z) / (r(a) q(z | ...)) keep the bound a lower bound on log p(x).
 * The draw has no pathwise gradient: log r(a) is the score-function term (vimco, reinforce, rloo,
 * rws). A memory of at most K entries is proposed from q itself.
 *
 * With a shared memory's keys cached (`ctx.cachedAddress`, kept by the trainer) the top entries
 * are chosen from the cached scores and the guide's logits are computed for the K + T entries the
 * proposal reads only; the site's full table is never bound (./truncated.ts `proposalFromTop`).
 */
export function truncated(k: number, tail: number): Handler {
  return {
    name: 'truncated',
    process(msg, ctx) {
      if (msg.phase !== 'guide' || msg.value || !isAddress(msg)) return;
      const cached = ctx.cachedAddress;
      if (cached && cached.site === msg.site.name) {
        const p = proposalFromTop(cached.top(Math.min(k, cached.size)), cached.size, cached.logitsAt, tail, ctx.rng);
        const d = drawFromProposal(p, ctx.k, ctx.rng);
        msg.value = { t: d.value, plates: ['sample', 'batch'] };
        msg.logProb = { t: d.logProb, plates: ['sample', 'batch'] };
        msg.score = true;
        return;
      }
      if (!msg.dist.spec.enumerable || msg.dist.n === undefined) return;
      const table = msg.dist.params[0]!;
      if (table.plates.includes('enum')) throw new InternalError('lower', `truncated proposal of ${msg.site.name} on the enum plate`);
      const m = msg.dist.n;
      const lead = table.t.shape.slice(0, table.plates.length);
      const rows = lead.reduce((a, b) => a * b, 1);
      const full = table.t.rank === table.plates.length ? tf.broadcastTo(tf.reshape(table.t, [...lead, 1]), [...lead, m]) : table.t;
      const p = proposalFromTable(tf.reshape(full, [rows, m]), k, tail, ctx.rng);
      const fresh = !table.plates.includes('sample');
      const n = fresh ? ctx.k : 1;
      const d = drawFromProposal(p, n, ctx.rng);
      const shape = fresh ? [n, ...lead] : lead;
      const plates = fresh ? ['sample', ...table.plates] : table.plates;
      msg.value = { t: tf.reshape(d.value, shape), plates };
      msg.logProb = { t: tf.reshape(d.logProb, shape), plates };
      msg.score = true;
    },
  };
}

/** Fixes the values of the named sites (replaying a recorded trace, conditioning a latent). */
export function condition(values: ReadonlyMap<string, Binding>): Handler {
  return {
    name: 'condition',
    process(msg) {
      const v = values.get(msg.site.name);
      if (v && !msg.value && (msg.phase === 'guide' || msg.site.role === 'observe')) msg.value = v;
    },
  };
}

/** Hides the named sites' densities from every accumulator. */
export function block(names: ReadonlySet<string>): Handler {
  return {
    name: 'block',
    postprocess(msg) {
      if (names.has(msg.site.name)) {
        msg.term = undefined;
        msg.score = false;
      }
    },
  };
}

/**
 * Ancestral sampling with no guide (generation): latents are drawn from the model's own
 * distributions, observed sites are not scored (there is no data); their distributions are kept.
 */
export function ancestral(): Handler {
  return {
    name: 'ancestral',
    process(msg, ctx) {
      if (msg.phase !== 'model') return;
      if (!msg.value) msg.value = msg.site.role === 'observe' ? mean(msg.dist) : sample(msg.dist, ctx.k, ctx.rng);
      msg.term = undefined;
    },
  };
}

/** The handlers of each way of reading addresses in evaluation (training takes them from the estimator). */
export function readHandlers(mode: 'sample' | 'soft' | 'enumerate'): Handler[] {
  if (mode === 'soft') return [softAttention()];
  if (mode === 'enumerate') return [enumerate()];
  return [];
}

/** The handler behind each name an estimator spec lists (src/estimators/registry.ts). */
const HANDLERS: Record<HandlerName, (s: EstimatorSettings) => Handler> = {
  enumerate: () => enumerate(),
  soft: () => softAttention(),
  relaxed: (s) => relaxed(argValue(s, 'temperature') as number),
  wake: () => wake(),
};

/** The handler stack an estimator asks for. */
export function handlersFor(s: EstimatorSettings): Handler[] {
  const spec = estimatorSpec(s.kind);
  if (!spec) throw new InternalError('lower', `unknown estimator ${s.kind}`);
  const filled = filledSettings(s);
  return spec.handlers.map((h) => HANDLERS[h](filled));
}
