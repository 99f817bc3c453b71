/**
 * The `train { }` block: known keys, estimator / optimizer names and their arguments, value types,
 * defaults (grammar/README.md, "Training settings"), and the constraints the lowering puts on an
 * estimator given the model (VMM3xxx): enumeration sums over exactly one Categorical, soft attention
 * needs addresses used only as memory indices, VIMCO's leave-one-out baseline needs k >= 2.
 */
import type { Arg, Call, Expr, Setting, Span, TrainBlock } from '../ast/types.ts';
import { estimatorKinds, estimatorSettings, estimatorSpec } from '../estimators/registry.ts';
import { family } from '../families/registry.ts';
import type { Limit } from '../ir/limits.ts';
import { type EstimatorArg, type EstimatorSettings, type IrProgram, type TrainSettings } from '../ir/types.ts';
import { datasetNames } from '../data/registry.ts';
import type { Ctx, Scope } from './context.ts';
import { evalConst } from './consts.ts';
import { formatExpr } from './format.ts';
import { LIMITS, type LimitName } from './limits.ts';
import { outsideLimit } from '../ir/limits.ts';
import { didYouMean } from './suggest.ts';
import { checkedFamily, type CheckedSite, type CheckedStmt } from './types.ts';

export const TRAIN_KEYS = ['estimator', 'optimizer', 'batch', 'steps', 'episodes', 'dataset', 'address'] as const;
/** The estimators a train block may name (the registry's, for the editor's completions). */
export function estimatorNames(): string[] {
  return estimatorKinds();
}

const HINTS: Record<string, string> = {
  lr: 'the learning rate is an optimizer argument: `optimizer = adam(lr: 1e-3)`',
  learning_rate: 'the learning rate is an optimizer argument: `optimizer = adam(lr: 1e-3)`',
  k: 'the number of samples is an estimator argument: `estimator = vimco(k: 4)`',
  samples: 'the number of samples is an estimator argument: `estimator = vimco(k: 4)`',
  batch_size: 'write `batch = 32`',
};

/** The estimator used when the file names none: VIMCO for models with discrete latents, else IWAE. */
export function defaultEstimator(hasDiscrete: boolean): EstimatorSettings {
  return estimatorSettings(hasDiscrete ? 'vimco' : 'iwae');
}

export function defaultTrain(hasDiscrete: boolean): TrainSettings {
  return {
    estimator: defaultEstimator(hasDiscrete),
    optimizer: { kind: 'adam', lr: 1e-3 },
    batch: 32,
    steps: 10000,
    episodes: { classes: 4, shots: 2, distractors: 0 },
    dataset: 'mnist',
  };
}

export interface TrainResult {
  train: TrainSettings;
  explicit: string[];
  /** Where the estimator is written (its `k:` for vimco): the estimator's fit to the model is reported here. */
  estimatorSpan?: Span;
  kSpan?: Span;
  /** Where `address = topk(...)` is written: its fit to the model and the estimator is reported here. */
  addressSpan?: Span;
}

const SCOPE: Scope = { where: 'train', order: Number.MAX_SAFE_INTEGER, recordReads: false };

/** `name(args)` or a bare `name`, as a call. */
function asCall(e: Expr): Call | undefined {
  if (e.kind === 'Call') return e;
  if (e.kind === 'Ident') return { kind: 'Call', callee: e, args: [], span: e.span };
  return undefined;
}

function namedArgs(ctx: Ctx, c: Call, allowed: string[]): Map<string, Arg> | undefined {
  const out = new Map<string, Arg>();
  let ok = true;
  for (const a of c.args) {
    if (!a.name) {
      ctx.error('VMM3004', `arguments of \`${c.callee.name}\` are named: write \`${c.callee.name}(${allowed.map((x) => `${x}: ...`).join(', ')})\``, a.span);
      ok = false;
    } else if (!allowed.includes(a.name.name)) {
      const takes = allowed.length ? `it takes ${allowed.map((x) => `\`${x}:\``).join(', ')}` : 'it takes no arguments';
      ctx.error('VMM3004', `\`${c.callee.name}\` has no argument \`${a.name.name}\`${didYouMean(a.name.name, allowed)} (${takes})`, a.name.span);
      ok = false;
    } else if (out.has(a.name.name)) {
      ctx.error('VMM3004', `argument \`${a.name.name}\` is given twice`, a.span, [{ message: 'first given here', span: out.get(a.name.name)!.span }]);
      ok = false;
    } else out.set(a.name.name, a);
  }
  return ok ? out : undefined;
}

/** A numeric setting checked against the limits shared with the command line (./limits.ts, or an estimator argument's own). */
function limitedValue(ctx: Ctx, e: Expr, name: LimitName | Limit): number | undefined {
  const limit: Limit = typeof name === 'string' ? LIMITS[name] : name;
  const v = evalConst(ctx, e, SCOPE, limit.what);
  if (v === undefined) return undefined;
  const problem = outsideLimit(limit, v);
  if (problem) {
    const text = formatExpr(e);
    ctx.error('VMM3005', `${limit.what} ${problem}, found ${text}${text === String(v) ? '' : ` = ${v}`}`, e.span);
    return undefined;
  }
  return v;
}

function choice<T extends string>(ctx: Ctx, e: Expr, allowed: readonly T[], what: string, code = 'VMM3005'): T | undefined {
  if (e.kind === 'Ident' && (allowed as readonly string[]).includes(e.name)) return e.name as T;
  const got = formatExpr(e);
  ctx.error(code, `unknown ${what} \`${got}\`${didYouMean(got, allowed)} (expected ${allowed.map((x) => `\`${x}\``).join(', ')})`, e.span);
  return undefined;
}

/**
 * Checks the train block: keys, estimator and optimizer arguments (from the estimator registry),
 * limits, episodes and the data set. Whether the estimator fits the model is decided on the IR by
 * the registry's rule, after the model checks (src/check/check.ts, `reportMisfits`).
 */
export function checkTrain(ctx: Ctx, block: TrainBlock | undefined, model: CheckedStmt[]): TrainResult {
  const latents = model.filter((s): s is CheckedSite => s.stmt === 'site' && s.role !== 'observe');
  // Latents drawn without a pathwise gradient (discrete, or a non-reparameterized family) pick VIMCO by default.
  const discrete = latents.filter((s) => s.discrete || family(checkedFamily(s.dist))?.reparameterized === false);
  const train = defaultTrain(discrete.length > 0);
  const explicit: string[] = [];
  if (!block) return { train, explicit };
  const seen = new Map<string, Setting>();
  let estimatorExpr: Expr | undefined;
  let kExpr: Expr | undefined;
  let addressExpr: Expr | undefined;
  for (const s of block.settings) {
    const key = s.key.name;
    if (!(TRAIN_KEYS as readonly string[]).includes(key)) {
      const hint = HINTS[key] ? `: ${HINTS[key]}` : `${didYouMean(key, TRAIN_KEYS)} (the settings are ${TRAIN_KEYS.join(', ')})`;
      ctx.error('VMM3001', `unknown training setting \`${key}\`${hint}`, s.key.span);
      continue;
    }
    const prev = seen.get(key);
    if (prev) {
      ctx.error('VMM3002', `\`${key}\` is set twice`, s.key.span, [{ message: `\`${key}\` is first set here`, span: prev.key.span }]);
      continue;
    }
    seen.set(key, s);
    explicit.push(key);
    const v = s.value;
    switch (key) {
      case 'estimator': {
        const c = asCall(v);
        const kind = c && choice(ctx, c.callee, estimatorKinds(), 'estimator', 'VMM3003');
        if (!c) ctx.error('VMM3003', `an estimator is written \`vimco(k: 4)\`, \`iwae(k: 8)\`, ...; found \`${formatExpr(v)}\``, v.span);
        if (!c || !kind) break;
        estimatorExpr = v;
        // The arguments, their defaults and limits are the estimator's registry entry.
        const spec = estimatorSpec(kind)!;
        let k = spec.defaultK;
        const written: Record<string, EstimatorArg> = {};
        const args = namedArgs(ctx, c, spec.args.map((a) => a.name));
        if (args) {
          for (const a of spec.args) {
            const given = args.get(a.name);
            if (!given) continue;
            if (a.kind === 'count') {
              kExpr = given.value;
              const n = limitedValue(ctx, given.value, 'k');
              if (n !== undefined && n < a.min && a.below) {
                ctx.error(a.below.code, `\`${kind}\` needs k >= ${a.min} samples: ${a.below.why}; found k = ${n}`, given.value.span);
              } else if (n !== undefined) k = n;
            } else if (a.kind === 'choice') {
              const v = choice(ctx, given.value, a.choices, `${kind} ${a.name}`);
              if (v !== undefined) written[a.name] = v;
            } else {
              const v = limitedValue(ctx, given.value, a.limit);
              if (v !== undefined) written[a.name] = v;
            }
          }
        }
        const est = estimatorSettings(kind, { k, args: written });
        train.estimator = est;
        break;
      }
      case 'optimizer': {
        const c = asCall(v);
        const kind = c && choice(ctx, c.callee, ['adam', 'sgd'] as const, 'optimizer', 'VMM3003');
        if (!c) ctx.error('VMM3003', `an optimizer is written \`adam(lr: 1e-3)\` or \`sgd(lr: 0.01)\`; found \`${formatExpr(v)}\``, v.span);
        if (!c || !kind) break;
        train.optimizer = { kind, lr: kind === 'adam' ? 1e-3 : 0.01 };
        const args = namedArgs(ctx, c, ['lr', 'clip']);
        const lr = args?.get('lr');
        if (lr) train.optimizer.lr = limitedValue(ctx, lr.value, 'lr') ?? train.optimizer.lr;
        const clip = args?.get('clip');
        const clipped = clip && limitedValue(ctx, clip.value, 'clip');
        if (clipped !== undefined) train.optimizer.clip = clipped;
        break;
      }
      case 'batch':
      case 'steps': {
        const n = limitedValue(ctx, v, key);
        if (n !== undefined) train[key] = n;
        break;
      }
      case 'episodes': {
        const c = asCall(v);
        if (!c || c.callee.name !== 'episodes') {
          ctx.error('VMM3003', `episodes are written \`episodes(classes: 4, shots: 2, distractors: 0)\`; found \`${formatExpr(v)}\``, v.span);
          break;
        }
        const args = namedArgs(ctx, c, ['classes', 'shots', 'distractors', 'min_shots']);
        if (!args) break;
        const get = (n: 'classes' | 'shots' | 'distractors') => {
          const a = args.get(n);
          if (!a) return;
          const x = limitedValue(ctx, a.value, n);
          if (x !== undefined) train.episodes[n] = x;
        };
        get('classes');
        get('shots');
        get('distractors');
        // `min_shots: 1`: every training batch draws its shots from 1 .. shots (src/data/source.ts).
        const minArg = args.get('min_shots');
        const min = minArg && limitedValue(ctx, minArg.value, 'minShots');
        if (minArg && min !== undefined) {
          if (min > train.episodes.shots) {
            ctx.error('VMM3005', `\`min_shots\` (${min}) exceeds \`shots\` (${train.episodes.shots}): each batch draws its shots from min_shots .. shots`, minArg.value.span);
          } else if (min < train.episodes.shots) train.episodes.minShots = min;
        }
        break;
      }
      case 'dataset': {
        const d = choice(ctx, v, datasetNames(), 'dataset', 'VMM3003');
        if (d) train.dataset = d;
        break;
      }
      case 'address': {
        addressExpr = v;
        const c = asCall(v);
        const kind = c && choice(ctx, c.callee, ['topk', 'full'] as const, 'address proposal', 'VMM3003');
        if (!c) ctx.error('VMM3003', `the address proposal is written \`topk(k: 32, tail: 8)\` or \`full\`; found \`${formatExpr(v)}\``, v.span);
        if (!c || !kind) break;
        const args = namedArgs(ctx, c, kind === 'topk' ? ['k', 'tail', 'refresh', 'probe'] : []);
        if (!args || kind === 'full') break;
        const kArg = args.get('k');
        if (!kArg) {
          ctx.error('VMM3004', '`topk` needs the number of top entries: `topk(k: 32, tail: 8)`', c.span);
          break;
        }
        const k = limitedValue(ctx, kArg.value, 'topk');
        const tailArg = args.get('tail');
        const tail = tailArg ? limitedValue(ctx, tailArg.value, 'tail') : 8;
        const refreshArg = args.get('refresh');
        const refresh = refreshArg ? limitedValue(ctx, refreshArg.value, 'refresh') : undefined;
        const probeArg = args.get('probe');
        const probe = probeArg ? limitedValue(ctx, probeArg.value, 'probe') : undefined;
        if (k !== undefined && tail !== undefined && (!refreshArg || refresh !== undefined) && (!probeArg || probe !== undefined)) {
          train.address = { kind: 'topk', k, tail, ...(refresh !== undefined ? { refresh } : {}), ...(probe !== undefined ? { probe } : {}) };
        }
        break;
      }
    }
  }
  return {
    train,
    explicit,
    ...(estimatorExpr ? { estimatorSpan: estimatorExpr.span } : {}),
    ...(kExpr ? { kSpan: kExpr.span } : {}),
    ...(addressExpr ? { addressSpan: addressExpr.span } : {}),
  };
}

/**
 * Why the program cannot propose its addresses from a truncated posterior (`address = topk(k, tail)`,
 * src/lower/truncated.ts), or undefined when it can: the proposal replaces the guide's draw of an
 * address, so the model needs an address site and an estimator that samples addresses and scores
 * them by their proposal's density (vimco, reinforce, rloo, rws); enumeration sums over every entry
 * (nothing to truncate), soft attention and the relaxation read every entry by weights, not by a draw.
 */
export function truncationProblem(ir: IrProgram): string | undefined {
  const t = ir.train.address;
  if (!t) return undefined;
  const what = `\`address = topk(k: ${t.k}, tail: ${t.tail})\``;
  if (!ir.model.some((s) => s.stmt === 'site' && s.role === 'address')) return `${what} proposes addresses, but the model has no \`discrete address\` site`;
  const spec = estimatorSpec(ir.train.estimator.kind);
  if (!spec) return undefined;
  const reads = spec.handlers.filter((h) => h === 'enumerate' || h === 'soft' || h === 'relaxed');
  if (spec.terms !== 'sampled' || reads.length) {
    const how = reads.includes('enumerate') || spec.terms !== 'sampled' ? 'sums over every entry' : 'reads every entry by its weight';
    return `${what} needs an estimator that samples addresses (vimco, reinforce, rloo, rws); \`${spec.kind}\` ${how}, so there is no draw to truncate`;
  }
  if (ir.softAttention?.length) return `${what} needs hard addressing; the soft-attention variant reads every entry`;
  return undefined;
}
