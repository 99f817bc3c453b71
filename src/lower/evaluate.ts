/**
 * Evaluates IR expressions on plated tfjs values (see plates.ts).
 *
 * Addresses are read in one of three ways, chosen per run by the estimator, never by the model:
 *   sampled     `a` holds K sampled indices; `mem[a]` gathers the K entries, so `g(mem[a])` runs g
 *               on K entries only (the hard variant of Bornschein et al. 2017).
 *   enumerated  `a` holds every index 0..|M|-1 on the `enum` plate (exact summation).
 *   soft        `a` holds attention weights w = q(a | x); `g(mem[a])` becomes `sum_i w_i g(mem[i])`
 *               and a bare `mem[a]` becomes `sum_i w_i mem[i]` (soft attention, background.md §2).
 *               A net with several outputs blends each one: `g(mem[a]).s14` is
 *               `sum_i w_i g(mem[i]).s14`, from the one pass of g over the entries that `g(mem[a])`
 *               uses. A net with skip inputs (`dec(h, s7: ...)`) is not pushed inside the blend:
 *               its arguments are read (and blended) as they are.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { BuiltinName } from '../ir/builtins.ts';
import type { IrExpr } from '../ir/types.ts';
import { thinProductsAsMatMul } from '../kernels/registry.ts';
import { BUILTIN_LOWERING } from './builtins.ts';
import { gatherRows } from './gather.ts';
import { bodyKey, foldsBlend, foldsKeys } from './fold.ts';
import type { LinearTail, NetOutputs } from './nets.ts';
import { neuralRead } from './neural_memory.ts';
import {
  alignTo,
  broadcastValues,
  eventRank,
  eventShape,
  mapEvents,
  plateSizesOf,
  reshape,
  sortPlates,
  unionPlates,
  type Plate,
  type PlateSizes,
  type Value,
} from './plates.ts';

/** A soft address: attention weights over the entries (event shape [M]). */
export interface SoftAddress {
  soft: Value;
  /** A relaxed draw (Gumbel-softmax): the log of the weights, which its densities score. */
  logY?: Value;
}

export type Binding = Value | SoftAddress;

export function isSoft(b: Binding | undefined): b is SoftAddress {
  return b !== undefined && 'soft' in b;
}

export interface EvalContext {
  /** Names in scope: data, memories, params, site values, lets. */
  env: Map<string, Binding>;
  /**
   * Applies a net to a tensor [...lead, ...inShape] and returns [...lead, ...outShape]. Its
   * `outputs` also gives the net's tapped outputs and takes its skip inputs (each
   * [...lead, ...shape]); needed only by models whose nets have `tap` or `skip` stages.
   * `hasTaps(name)`: the net has taps, so even a read of its final output runs `outputs` (and
   * caches the taps for the reads that follow).
   */
  applyNet: ((name: string, flat: tf.Tensor) => tf.Tensor) & {
    outputs?: (name: string, x: tf.Tensor, skips: Readonly<Record<string, tf.Tensor>>) => NetOutputs;
    hasTaps?: (name: string) => boolean;
    /**
     * The net as a body and a linear last layer (nets.ts `linearTail`), where the lowering may
     * fold that layer through a product (fold.ts); absent, or undefined for a net: never folded.
     */
    linearTail?: (name: string) => LinearTail | undefined;
    /** Forward multiply-adds a fold must save (fold.ts `FOLD_MIN_SAVING` when absent). */
    foldMinSaving?: number;
  };
  /**
   * Results of net applications keyed by the printed expression, shared between the guide and
   * the model within one evaluation: `g(mem[a])` in the guide and in the model runs once.
   * A `let` name stands for the key of its defining expression (`letKeys`), so the guide's
   * `g(entries[a])` and the model's `g(full[a])` share one result when both lets are
   * `stack(mem, dummies)`.
   */
  cache: Map<string, Value>;
  /** Cache keys of the `let`s bound so far in this context (guide and model have their own). */
  letKeys?: Map<string, string>;
}

export function evaluate(e: IrExpr, ctx: EvalContext): Value {
  switch (e.op) {
    case 'const':
      return { t: tf.scalar(e.value), plates: [] };
    case 'ref': {
      const b = ctx.env.get(e.name);
      if (b === undefined) throw new InternalError('lower', `'${e.name}' is not bound`);
      if (isSoft(b)) {
        throw new InternalError('lower', `soft address '${e.name}' used outside a memory read`);
      }
      return b;
    }
    case 'net':
      if (e.tap !== undefined || e.skips?.length || ctx.applyNet.hasTaps?.(e.net)) return cached(e, ctx, () => evalNetOutputs(e, ctx));
      return cached(e, ctx, (key) => fromBody(e.net, key, ctx) ?? evalNet(e.net, e.arg, ctx));
    case 'index':
      return cached(e, ctx, () => evalIndex(e.target, e.index, ctx));
    case 'builtin': {
      const lower = BUILTIN_LOWERING[e.fn as BuiltinName];
      if (!lower) throw new InternalError('lower', `no lowering of the built-in '${e.fn}'`);
      return lower(e.args.map((a) => evaluate(a, ctx)));
    }
    case 'matmul':
      // Cached: the guide and the model that both write `softmax(h(mem) @ h(x)) @ g(mem)` share one product.
      // The side a fold may skip (the net's output over the entries) is evaluated last, if at all.
      return cached(e, ctx, () => {
        const constant = { left: isConstant(e.left), right: isConstant(e.right) };
        if (e.left.op === 'net') {
          const right = evaluate(e.right, ctx);
          return foldedKeys(e, right, ctx) ?? matmul(evaluate(e.left, ctx), right, constant);
        }
        const left = evaluate(e.left, ctx);
        return foldedWeights(e, left, ctx) ?? matmul(left, evaluate(e.right, ctx), constant);
      });
    case 'unary': {
      const v = evaluate(e.arg, ctx);
      return { t: tf.neg(v.t), plates: v.plates };
    }
    case 'binary': {
      const op = (l: tf.Tensor, r: tf.Tensor) =>
        e.fn === 'add' ? tf.add(l, r) : e.fn === 'sub' ? tf.sub(l, r) : e.fn === 'mul' ? tf.mul(l, r) : tf.div(l, r);
      const left = evaluate(e.left, ctx);
      const right = evaluate(e.right, ctx);
      // A rank-0 operand (a constant such as the scale floor of `Normal(E)`) broadcasts as it is,
      // without a reshape to [1, 1, ...] first.
      if (right.t.rank === 0) return { t: op(left.t, right.t), plates: left.plates };
      if (left.t.rank === 0) return { t: op(left.t, right.t), plates: right.plates };
      const { tensors, plates } = broadcastValues([left, right]);
      return { t: op(tensors[0]!, tensors[1]!), plates };
    }
    case 'slice': {
      const v = evaluate(e.arg, ctx);
      const last = v.t.rank - 1;
      const halves = splitHalves(e, v, ctx);
      if (halves) return halves;
      const begin = new Array<number>(v.t.rank).fill(0);
      const size = [...v.t.shape];
      begin[last] = e.from;
      size[last] = e.to - e.from;
      return { t: tf.slice(v.t, begin, size), plates: v.plates };
    }
    case 'neural_read':
      return cached(e, ctx, () => neuralRead(e.neural, evaluate(e.arg, ctx), ctx));
  }
}

/**
 * A slice that is one half of its argument's last axis (`Normal(E)`'s mean and scale halves):
 * both halves from one split, the other kept in the cache for its own slice. One `SplitV`
 * forward and one `Concat` backward, where two slices took two kernels forward and three back
 * (two pads and their sum). Undefined for any other slice, or an argument the cache cannot key.
 */
function splitHalves(e: IrExpr & { op: 'slice' }, v: Value, ctx: EvalContext): Value | undefined {
  const last = v.t.rank - 1;
  const n = e.to - e.from;
  if (last < 0 || 2 * n !== v.t.shape[last] || (e.from !== 0 && e.from !== n)) return undefined;
  const argKey = cacheKey(e.arg, ctx.letKeys);
  if (argKey === undefined) return undefined;
  const keys = [`halves0(${argKey})`, `halves1(${argKey})`] as const;
  const mine = keys[e.from === 0 ? 0 : 1];
  const hit = ctx.cache.get(mine);
  if (hit) return hit;
  const parts = tf.split(v.t, 2, last);
  for (const [i, key] of keys.entries()) ctx.cache.set(key, { t: parts[i]!, plates: v.plates });
  return ctx.cache.get(mine)!;
}

/** `compute()` once per cache key of `e` (its key handed to it: undefined when it has none). */
function cached(e: IrExpr, ctx: EvalContext, compute: (key: string | undefined) => Value): Value {
  const key = cacheKey(e, ctx.letKeys);
  if (key === undefined) return compute(key);
  const hit = ctx.cache.get(key);
  if (hit) return hit;
  const v = compute(key);
  ctx.cache.set(key, v);
  return v;
}

/**
 * True when the value of `e` cannot depend on a trainable parameter (data, memories, constants,
 * and expressions of them only): no gradient is ever needed w.r.t. it. Conservative: sites and
 * `let`s count as non-constant.
 */
export function isConstant(e: IrExpr): boolean {
  switch (e.op) {
    case 'const':
      return true;
    case 'ref':
      return e.ref === 'data' || e.ref === 'memory';
    case 'net':
    case 'neural_read':
      return false;
    case 'index':
      return isConstant(e.target) && isConstant(e.index);
    case 'builtin':
      return e.args.every(isConstant);
    case 'matmul':
    case 'binary':
      return isConstant(e.left) && isConstant(e.right);
    case 'unary':
    case 'slice':
      return isConstant(e.arg);
  }
}

/** A structural key, or undefined when the expression mentions a `let` of unknown key. */
export function cacheKey(e: IrExpr, lets?: ReadonlyMap<string, string>): string | undefined {
  const key = (x: IrExpr) => cacheKey(x, lets);
  switch (e.op) {
    case 'const':
      return String(e.value);
    case 'ref':
      return e.ref === 'let' ? lets?.get(e.name) : e.name;
    case 'net': {
      const a = key(e.arg);
      const skips = (e.skips ?? []).map((s) => [s.name, key(s.arg)] as const);
      if (a === undefined || skips.some(([, k]) => k === undefined)) return undefined;
      return `${e.net}(${a}${skips.map(([n, k]) => `,${n}:${k}`).join('')})${e.tap !== undefined ? `.${e.tap}` : ''}`;
    }
    case 'index': {
      const t = key(e.target);
      const i = key(e.index);
      return t === undefined || i === undefined ? undefined : `${t}[${i}]`;
    }
    case 'builtin': {
      const parts = e.args.map(key);
      return parts.some((p) => p === undefined) ? undefined : `${e.fn}(${parts.join(',')})`;
    }
    case 'matmul':
    case 'binary': {
      const l = key(e.left);
      const r = key(e.right);
      const name = e.op === 'binary' ? e.fn : e.op;
      return l === undefined || r === undefined ? undefined : `${name}(${l},${r})`;
    }
    case 'unary': {
      const a = key(e.arg);
      return a === undefined ? undefined : `neg(${a})`;
    }
    case 'slice': {
      const a = key(e.arg);
      return a === undefined ? undefined : `${a}[${e.from}:${e.to}]`;
    }
    case 'neural_read': {
      const a = key(e.arg);
      return a === undefined ? undefined : `${e.neural.name}(${a})`;
    }
  }
}

/** The cache key of `net(arg)` (no taps, no skip inputs) for the key of its argument: as `cacheKey`. */
function netKey(net: string, argKey: string): string {
  return `${net}(${argKey})`;
}

/**
 * `f(E)` from the hidden value `body(E)` that a folded product left in the cache (fold.ts): only
 * the last layer runs. Undefined when there is none.
 */
function fromBody(net: string, key: string | undefined, ctx: EvalContext): Value | undefined {
  const hidden = key === undefined ? undefined : ctx.cache.get(bodyKey(key));
  const tail = hidden && ctx.applyNet.linearTail?.(net);
  return hidden && tail ? { t: tail.last(hidden.t), plates: hidden.plates } : undefined;
}

/** A net application `f(E)` of a product, ready to be folded (fold.ts). */
interface FoldSite {
  tail: LinearTail;
  /** M: the entries of `E`. */
  entries: number;
  /** The rows f would run on: all plates and entries. */
  entryRows: number;
  /** `body(E)`: from the cache, or computed and cached (for a later whole read, `fromBody`). */
  hidden: () => Value;
}

/**
 * `f`, a side of a product whose other side has event rank `otherRank`, as a fold site: f an MLP
 * ending in a linear layer (its output a table [M, out], the other side a vector), not a soft
 * read, and not computed already (then the product reads it as it is). Undefined otherwise.
 */
function foldSite(f: IrExpr, otherRank: number, ctx: EvalContext): FoldSite | undefined {
  const tailOf = ctx.applyNet.linearTail;
  if (!tailOf || f.op !== 'net' || f.tap !== undefined || f.skips?.length || ctx.applyNet.hasTaps?.(f.net)) return undefined;
  if (f.type.shape.length !== 2 || otherRank !== 1) return undefined;
  if (f.arg.op === 'index' && f.arg.index.op === 'ref' && isSoft(ctx.env.get(f.arg.index.name))) return undefined;
  const key = cacheKey(f, ctx.letKeys);
  if (key === undefined || ctx.cache.has(key)) return undefined;
  const tail = tailOf(f.net);
  if (!tail) return undefined;
  const known = ctx.cache.get(bodyKey(key));
  const input = known ? undefined : evaluate(f.arg, ctx);
  return {
    tail,
    entries: eventShape(known ?? input!)[0]!,
    entryRows: known ? known.t.size / tail.width : input!.t.size / tail.inWidth,
    hidden: () => known ?? hiddenOf(tail, key, input!, ctx),
  };
}

/** `body(E)` for the input `E` of a net application with cache key `key` (if any): computed, and cached. */
function hiddenOf(tail: LinearTail, key: string | undefined, input: Value, ctx: EvalContext): Value {
  const hidden = { t: tail.body(input.t), plates: input.plates };
  if (key !== undefined) ctx.cache.set(bodyKey(key), hidden);
  return hidden;
}

/**
 * `f(E) @ u` folded through f's linear last layer (fold.ts): `body(E) @ (W u) + b . u`, where
 * that is less arithmetic than running the last layer on every entry. Undefined otherwise.
 */
function foldedKeys(e: Extract<IrExpr, { op: 'matmul' }>, right: Value, ctx: EvalContext): Value | undefined {
  const site = foldSite(e.left, e.right.type.shape.length, ctx);
  if (!site || !foldsKeys(site.tail, site.entryRows, right.t.size / site.tail.outWidth, site.entries, ctx.applyNet.foldMinSaving)) return undefined;
  const { w, b, outWidth } = site.tail;
  const query = mapEvents(right, (flat) => tf.matMul(flat, w, false, true)); // W u: [..., width]
  const shift = mapEvents(right, (flat) => tf.matMul(flat, reshape(b, [outWidth, 1]))); // b . u: [..., 1]
  const scores = matmul(site.hidden(), query);
  const { tensors, plates } = broadcastValues([scores, shift]);
  return { t: tf.add(tensors[0]!, tensors[1]!), plates };
}

/**
 * `w @ f(E)`, weights over the entries of a net's output (attention written out,
 * `softmax(...) @ g(mem)`), folded through f's linear last layer (fold.ts):
 * `(w @ body(E)) W + (sum_i w_i) b`, the sum being 1 for a softmax. Undefined otherwise.
 */
function foldedWeights(e: Extract<IrExpr, { op: 'matmul' }>, left: Value, ctx: EvalContext): Value | undefined {
  const site = foldSite(e.right, e.left.type.shape.length, ctx);
  if (!site || !foldsBlend(site.tail, site.entryRows, left.t.size / site.entries, site.entries, ctx.applyNet.foldMinSaving)) return undefined;
  const { tail } = site;
  const mixed = matmul(left, site.hidden(), { left: isConstant(e.left) });
  if (e.left.op === 'builtin' && e.left.fn === 'softmax') return { t: tail.last(mixed.t), plates: mixed.plates };
  // Weights of any sum: the bias counts sum_i w_i times.
  const total = mapEvents(left, (flat) => tf.sum(flat, -1, true)); // [..., 1]
  const y = reshape(tf.matMul(reshape(mixed.t, [-1, tail.width]), tail.w), [...mixed.t.shape.slice(0, -1), tail.outWidth]);
  const { tensors, plates } = broadcastValues([{ t: y, plates: mixed.plates }, total]);
  return { t: tf.add(tensors[0]!, tf.mul(tensors[1]!, tail.b)), plates };
}

/**
 * The soft read `sum_i w_i f(e_i)` folded through f's linear last layer (fold.ts):
 * `(sum_i w_i body(e_i)) W + b`, where that is less arithmetic. Undefined otherwise.
 */
function foldedBlend(net: string, tableKey: string | undefined, table: Value, w: Value, ctx: EvalContext): Value | undefined {
  const tail = ctx.applyNet.linearTail?.(net);
  if (!tail || eventRank(table) !== 2) return undefined;
  const entries = eventShape(table)[0]!;
  if (!foldsBlend(tail, table.t.size / tail.inWidth, w.t.size / entries, entries, ctx.applyNet.foldMinSaving)) return undefined;
  const known = tableKey === undefined ? undefined : ctx.cache.get(bodyKey(tableKey));
  const mixed = blend(w, known ?? hiddenOf(tail, tableKey, table, ctx));
  return { t: tail.last(mixed.t), plates: mixed.plates };
}

/**
 * A net on the event part of `v` (its last `inRank` axes); the net maps over the leading (plate
 * and outer event) axes itself, so nothing is flattened here.
 */
function applyNetTo(name: string, v: Value, ctx: EvalContext, inRank: number): Value {
  if (v.t.rank < inRank) throw new InternalError('lower', `net ${name} applied to a value of rank ${v.t.rank}`);
  return { t: ctx.applyNet(name, v.t), plates: v.plates };
}

function evalNet(net: string, arg: IrExpr, ctx: EvalContext): Value {
  const inRank = netInRank(arg);
  if (arg.op === 'index' && arg.index.op === 'ref') {
    const addr = ctx.env.get(arg.index.name);
    if (isSoft(addr)) {
      // Soft read of g(mem[a]): g runs on every entry, then the entries are blended (or, folded,
      // all but g's last layer, which then runs on the blend).
      const table = evaluate(arg.target, ctx);
      const argKey = cacheKey(arg.target, ctx.letKeys);
      const tableKey = argKey === undefined ? undefined : netKey(net, argKey);
      const full = tableKey === undefined ? undefined : ctx.cache.get(tableKey);
      if (!full) {
        const folded = foldedBlend(net, tableKey, table, addr.soft, ctx);
        if (folded) return folded;
      }
      const encoded = full ?? fromBody(net, tableKey, ctx) ?? applyNetTo(net, table, ctx, inRank);
      if (tableKey !== undefined) ctx.cache.set(tableKey, encoded);
      return blend(addr.soft, encoded);
    }
  }
  return applyNetTo(net, evaluate(arg, ctx), ctx, inRank);
}

type NetExpr = Extract<IrExpr, { op: 'net' }>;

/**
 * A net with taps or skip inputs: one forward pass gives its final output and every tap; all of
 * them go into the cache (`g(x)`, `g(x).s14`, ...), so the other reads of the same application
 * reuse the pass. Skip inputs are aligned to the plates of the net's input.
 */
function evalNetOutputs(e: NetExpr, ctx: EvalContext): Value {
  const run = ctx.applyNet.outputs;
  if (!run) throw new InternalError('lower', `net ${e.net} has taps or skip inputs, but this evaluation cannot apply such nets`);
  const inRank = netInRank(e.arg);
  const base: NetExpr = { op: 'net', net: e.net, arg: e.arg, type: e.type, ...(e.skips ? { skips: e.skips } : {}) };
  const store = (outs: { out: Value; taps: Record<string, Value> }): Value => {
    const key = (tap?: string) => cacheKey(tap === undefined ? base : { ...base, tap }, ctx.letKeys);
    const k0 = key();
    if (k0 !== undefined) ctx.cache.set(k0, outs.out);
    for (const [name, v] of Object.entries(outs.taps)) {
      const k = key(name);
      if (k !== undefined) ctx.cache.set(k, v);
    }
    return e.tap === undefined ? outs.out : outs.taps[e.tap]!;
  };
  if (!e.skips?.length && e.arg.op === 'index' && e.arg.index.op === 'ref') {
    const addr = ctx.env.get(e.arg.index.name);
    if (isSoft(addr)) {
      // Soft read: every entry through the net once, then each output blended with the weights.
      const table = evaluate(e.arg.target, ctx);
      if (table.t.rank < inRank) throw new InternalError('lower', `net ${e.net} applied to a value of rank ${table.t.rank}`);
      const o = run(e.net, table.t, {});
      const blended = (t: tf.Tensor) => blend(addr.soft, { t, plates: table.plates });
      return store({ out: blended(o.out), taps: Object.fromEntries(Object.entries(o.taps).map(([n, t]) => [n, blended(t)])) });
    }
  }
  const x = evaluate(e.arg, ctx);
  if (x.t.rank < inRank) throw new InternalError('lower', `net ${e.net} applied to a value of rank ${x.t.rank}`);
  const skipVals = (e.skips ?? []).map((s) => [s.name, evaluate(s.arg, ctx)] as const);
  const all = [x, ...skipVals.map(([, v]) => v)];
  const plates = unionPlates(...all.map((v) => v.plates));
  const sizes = plateSizesOf(...all);
  const xt = skipVals.length ? alignEvents(x, plates, sizes) : x.t;
  const outPlates = skipVals.length ? plates : x.plates;
  const skips = Object.fromEntries(skipVals.map(([n, v]) => [n, alignEvents(v, plates, sizes)]));
  const o = run(e.net, xt, skips);
  const wrap = (t: tf.Tensor): Value => ({ t, plates: outPlates });
  return store({ out: wrap(o.out), taps: Object.fromEntries(Object.entries(o.taps).map(([n, t]) => [n, wrap(t)])) });
}

/**
 * `alignTo` with the plates broadcast to full size, the event axes flattened meanwhile: tfjs
 * implements the gradient of the broadcast (Tile) up to rank 4 only, and a feature map has 3
 * event axes.
 */
function alignEvents(v: Value, plates: readonly string[], sizes: ReturnType<typeof plateSizesOf>): tf.Tensor {
  const ev = eventShape(v);
  const flat: Value = { t: reshape(v.t, [...v.t.shape.slice(0, v.plates.length), ev.reduce((a, b) => a * b, 1)]), plates: v.plates };
  const t = alignTo(flat, plates as Value['plates'], undefined, sizes);
  return reshape(t, [...t.shape.slice(0, plates.length), ...ev]);
}

/** The event rank a net consumes: the rank of its argument's IR type. */
function netInRank(arg: IrExpr): number {
  return arg.type.shape.length;
}

function evalIndex(target: IrExpr, index: IrExpr, ctx: EvalContext): Value {
  const table = evaluate(target, ctx);
  if (index.op === 'ref') {
    const addr = ctx.env.get(index.name);
    if (isSoft(addr)) return blend(addr.soft, table, isConstant(target));
  }
  return gatherValue(table, evaluate(index, ctx));
}

/**
 * `sum_i w_i e_i`: w has event [M] (attention weights), e has event [M, ...rest].
 * When the entries carry no plates (a memory shared by the batch) this is one matMul.
 * `entriesConstant`: the entries need no gradient (a memory read as is, `mem[a]`).
 */
export function blend(w: Value, entries: Value, entriesConstant = false): Value {
  const rest = eventShape(entries).slice(1);
  if (entries.plates.length === 0) {
    const m = entries.t.shape[0]!;
    const flatEntries = reshape(entries.t, [m, -1]);
    const out = mapEvents(w, (flatW) => tf.matMul(flatW, flatEntries));
    return { t: reshape(out.t, [...out.t.shape.slice(0, w.plates.length), ...rest]), plates: w.plates };
  }
  const plates = unionPlates(w.plates, entries.plates);
  const sizes = plateSizesOf(w, entries);
  const wt = alignTo(w, plates, undefined, sizes); // [...plates, M]
  // [...plates, M, prod(rest)]: flat first, so that a broadcast of image entries stays within
  // the ranks whose gradient tfjs implements (Tile: 4).
  const flatEntries: Value = { t: reshape(entries.t, [...entries.t.shape.slice(0, entries.plates.length + 1), -1]), plates: entries.plates };
  const g = grouping(plates, flatEntries, sizes);
  if (g) {
    // Entries on fewer plates than the weights (one memory per episode, weights per sample and
    // episode): batched over the entries' plates, the weights' other plates as rows.
    const m = wt.shape[plates.length]!;
    const out = groupedWeightedRows(reshape(g.toGrouped(wt), [g.nShared, g.nRest, m]), reshape(alignTo(flatEntries, g.shared), [g.nShared, m, -1]), { e: entriesConstant });
    return { t: reshape(g.fromGrouped(out), [...wt.shape.slice(0, plates.length), ...rest]), plates };
  }
  const et = alignTo(flatEntries, plates, undefined, sizes);
  const lead = wt.shape.slice(0, plates.length);
  const n = lead.reduce((a, b) => a * b, 1);
  const m = wt.shape[plates.length]!;
  const out = weightedRows(reshape(wt, [n, m]), reshape(et, [n, m, -1]), { e: entriesConstant });
  return { t: reshape(out, [...lead, ...rest]), plates };
}

/**
 * `table[index]` on the first event axis of `table`. The table may carry the batch plate
 * (one memory per episode) or none (shared); the index may carry any plates.
 */
export function gatherValue(table: Value, index: Value): Value {
  if (eventRank(index) !== 0) throw new InternalError('lower', 'memory index must be a scalar per example');
  const rest = eventShape(table).slice(1);
  if (table.plates.some((p) => p !== 'batch')) {
    // A table that depends on a sampled (or enumerated) value, e.g. latent slots or a memory
    // stacked with a latent: one table per (sample, example, ...), indexed row by row.
    const plates = unionPlates(table.plates, index.plates);
    const sizes = plateSizesOf(table, index);
    const t = alignTo(table, plates, undefined, sizes);
    const lead = t.shape.slice(0, plates.length);
    const n = lead.reduce((a, b) => a * b, 1);
    const m = eventShape(table)[0]!;
    const idxInt = index.t.dtype === 'int32' ? index.t : tf.cast(index.t, 'int32');
    const idx = reshape(alignTo({ t: idxInt, plates: index.plates }, plates, undefined, sizes), [n]);
    const out = gatherRows(reshape(t, [n, m, -1]), idx);
    return { t: reshape(out, [...lead, ...rest]), plates };
  }
  const m = eventShape(table)[0]!;
  const idxInt = index.t.dtype === 'int32' ? index.t : tf.cast(index.t, 'int32');
  if (table.plates.length === 0) {
    const flatTable = reshape(table.t, [m, -1]);
    const out = gatherRows(flatTable, idxInt);
    return { t: reshape(out, [...idxInt.shape, ...rest]), plates: index.plates };
  }
  // Per-episode memory [B, M, ...]: the index needs the batch plate too (as its last plate).
  const plates = sortPlates([...index.plates, 'batch']);
  const sizes = plateSizesOf(index, table);
  const idx = alignTo({ t: idxInt, plates: index.plates }, plates, undefined, sizes);
  const b = table.t.shape[0]!;
  const out = gatherRows(reshape(table.t, [b, m, -1]), idx);
  return { t: reshape(out, [...idx.shape, ...rest]), plates };
}

/**
 * `left @ right`: contracts the last axis of left with the first of right (event ranks <= 2);
 * `constant` marks operands that need no gradient (see `isConstant`).
 * A side without plates (a shared memory's embeddings, a param) becomes one 2-D matMul. With
 * plates on both sides, a matrix-vector product (the address logits `h(mem) @ h(x)` of one
 * memory per episode) runs as `rowDot` / `weightedRows` rather than as a batched matMul, which
 * wasm computes with a scalar loop (and, for the gradient, transposes first).
 */
export function matmul(left: Value, right: Value, constant: { left?: boolean; right?: boolean } = {}): Value {
  const lr = eventRank(left);
  const rr = eventRank(right);
  if (lr === 0 || rr === 0 || lr > 2 || rr > 2) throw new InternalError('lower', `matmul of event ranks ${lr} and ${rr}`);
  const lEv = eventShape(left);
  const rEv = eventShape(right);
  if (left.plates.length === 0 && rr === 1) {
    // right [..., k] @ left^T where left is [m, k] (or [k]): one 2-D product for all plates.
    const l2 = lr === 1 ? reshape(left.t, [1, lEv[0]!]) : left.t;
    const out = mapEvents(right, (flat) => tf.matMul(flat, l2, false, true));
    return lr === 1 ? { t: tf.squeeze(out.t, [out.t.rank - 1]), plates: out.plates } : out;
  }
  if (right.plates.length === 0 && lr === 1) {
    const r2 = rr === 1 ? reshape(right.t, [rEv[0]!, 1]) : right.t;
    const out = mapEvents(left, (flat) => tf.matMul(flat, r2));
    return rr === 1 ? { t: tf.squeeze(out.t, [out.t.rank - 1]), plates: out.plates } : out;
  }
  const plates = unionPlates(left.plates, right.plates);
  const sizes = plateSizesOf(left, right);
  const lead = plates.map((p) => sizes[p] ?? 1);
  const n = lead.reduce((a, b) => a * b, 1);
  const m = lr === 2 ? lEv[0]! : 1;
  const k = lEv[lr - 1]!;
  const nn = rr === 2 ? rEv[1]! : 1;
  const ev = [...(lr === 2 ? [m] : []), ...(rr === 2 ? [nn] : [])];
  let out: tf.Tensor;
  // One side on fewer plates than the other (a memory's keys per episode, queries per sample and
  // episode): batched over its plates, the other side's extra plates as rows, not repeated.
  const gl = rr === 1 ? grouping(plates, left, sizes) : undefined;
  const gr = lr === 1 && !gl ? grouping(plates, right, sizes) : undefined;
  if (gl) {
    // keys [e, m, k] . queries [e, x, k] -> [e, x, m]
    const q = reshape(gl.toGrouped(alignTo(right, plates, undefined, sizes)), [gl.nShared, gl.nRest, k]);
    out = gl.fromGrouped(groupedRowDot(reshape(alignTo(left, gl.shared), [gl.nShared, m, k]), q, { e: constant.left, v: constant.right }));
    return { t: reshape(out, [...lead, ...ev]), plates };
  }
  if (gr) {
    // weights [e, x, k] over the k rows of [e, k, nn] -> [e, x, nn]
    const wts = reshape(gr.toGrouped(alignTo(left, plates, undefined, sizes)), [gr.nShared, gr.nRest, k]);
    out = gr.fromGrouped(groupedWeightedRows(wts, reshape(alignTo(right, gr.shared), [gr.nShared, k, nn]), { w: constant.left, e: constant.right }));
    return { t: reshape(out, [...lead, ...ev]), plates };
  }
  const lt = alignTo(left, plates, undefined, sizes);
  const rt = alignTo(right, plates, undefined, sizes);
  if (rr === 1) {
    // [n, m, k] . [n, k] -> [n, m] (m = 1 for a vector on the left).
    out = rowDot(reshape(lt, [n, m, k]), reshape(rt, [n, k]), { e: constant.left, v: constant.right });
  } else if (lr === 1) {
    // [n, k] weights over the k rows of [n, k, nn] -> [n, nn].
    out = weightedRows(reshape(lt, [n, k]), reshape(rt, [n, k, nn]), { w: constant.left, e: constant.right });
  } else {
    out = tf.matMul(reshape(lt, [n, m, k]), reshape(rt, [n, k, nn]));
  }
  return { t: reshape(out, [...lead, ...ev]), plates };
}

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * A product of two tensors with a hand-written gradient for each operand, computed only for the
 * operands that are not `constant` (a custom gradient computes every input's part, so a constant
 * operand is saved for the backward pass but is not an input).
 */
function product(
  a: tf.Tensor,
  b: tf.Tensor,
  constA: boolean,
  constB: boolean,
  value: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  gradA: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  gradB: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  if (constA && constB) return value(a, b);
  const inputs = [...(constA ? [] : [a]), ...(constB ? [] : [b])];
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args[inputs.length] as tf.GradSaveFunc;
    save([a, b]);
    return {
      value: value(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
        return [...(constA ? [] : [gradA(dy, sa, sb)]), ...(constB ? [] : [gradB(dy, sa, sb)])];
      },
    };
  }) as unknown as CustomGradFn);
  return f(...inputs) as tf.Tensor;
}

/** How a product batches over the smaller operand's plates (`grouping`). */
interface Grouping {
  shared: Plate[];
  nShared: number;
  nRest: number;
  toGrouped(t: tf.Tensor): tf.Tensor;
  fromGrouped(t: tf.Tensor): tf.Tensor;
}

/**
 * How to multiply `small`, on a proper subset of `plates` (`shared`, each at its full size),
 * with one on all of `plates` without repeating it over the others: the other operand, aligned
 * to `plates` ([...plates, ...event]), is transposed so the shared plates lead (`toGrouped`),
 * viewed as [nShared, nRest, ...], multiplied batched over nShared, and the result
 * ([nShared, nRest, ...] or already [...shared, ...rest, ...]) put back in `plates`' order
 * (`fromGrouped`). Repeating a per-episode memory over K samples was a Tile of the whole
 * [K, B, M, H] embedding and, in the backward pass, a sum over the copies (bench/profile.ts, soft).
 * Undefined when `small` is on all of `plates` or on none of them, or broadcast on one.
 */
function grouping(plates: readonly Plate[], small: Value, sizes: PlateSizes): Grouping | undefined {
  if (small.plates.length === 0 || small.plates.length >= plates.length) return undefined;
  if (small.plates.some((p, i) => small.t.shape[i] !== sizes[p])) return undefined; // broadcast on a plate
  const shared = plates.filter((p) => small.plates.includes(p));
  const restPlates = plates.filter((p) => !small.plates.includes(p));
  const perm = [...shared, ...restPlates].map((p) => plates.indexOf(p));
  const identity = perm.every((p, i) => p === i);
  const inverse = perm.map((_, i) => perm.indexOf(i));
  const sizeOf = (ps: Plate[]) => ps.map((p) => sizes[p] ?? 1);
  const n = plates.length;
  const permute = (t: tf.Tensor, order: number[]) => (identity ? t : tf.transpose(t, [...order, ...t.shape.slice(n).map((_, i) => n + i)]));
  return {
    shared,
    nShared: sizeOf(shared).reduce((a, b) => a * b, 1),
    nRest: sizeOf(restPlates).reduce((a, b) => a * b, 1),
    toGrouped: (t) => permute(t, perm),
    fromGrouped: (t) => permute(reshape(t, [...sizeOf(shared), ...sizeOf(restPlates), ...t.shape.slice(2)]), inverse),
  };
}

/**
 * `out[e] = w[e] @ v[e]` for `w [E, X, M]`, `v [E, M, C]`: a batched product (a soft read of one
 * memory per episode by X weight rows each). Gradients: `dw = dy @ v^T`, `dv = w^T @ dy`, whose sum
 * over the X rows is the product's own.
 */
export function groupedWeightedRows(w: tf.Tensor, v: tf.Tensor, constant: { w?: boolean | undefined; e?: boolean | undefined } = {}): tf.Tensor {
  if (w.rank !== 3 || v.rank !== 3 || w.shape[0] !== v.shape[0] || w.shape[2] !== v.shape[1]) {
    throw new InternalError('lower', `groupedWeightedRows of [${w.shape}] and [${v.shape}]`);
  }
  return product(
    w,
    v,
    constant.w === true,
    constant.e === true,
    (wt, vt) => tf.matMul(wt, vt),
    (dy, _wt, vt) => tf.matMul(dy, vt, false, true),
    (dy, wt) => tf.matMul(wt, dy, true, false),
  );
}

/**
 * `out[e, x, j] = sum_c keys[e, j, c] q[e, x, c]` for `keys [E, M, C]`, `q [E, X, C]`: X queries
 * against one memory's keys per e, a batched product. Gradients: `dkeys = dy^T @ q`, `dq = dy @ keys`.
 */
export function groupedRowDot(keys: tf.Tensor, q: tf.Tensor, constant: { e?: boolean | undefined; v?: boolean | undefined } = {}): tf.Tensor {
  if (keys.rank !== 3 || q.rank !== 3 || keys.shape[0] !== q.shape[0] || keys.shape[2] !== q.shape[2]) {
    throw new InternalError('lower', `groupedRowDot of [${keys.shape}] and [${q.shape}]`);
  }
  return product(
    keys,
    q,
    constant.e === true,
    constant.v === true,
    (kt, qt) => tf.matMul(qt, kt, false, true),
    (dy, _kt, qt) => tf.matMul(dy, qt, true, false),
    (dy, kt) => tf.matMul(dy, kt),
  );
}

/**
 * `out[i, j] = sum_c e[i, j, c] v[i, c]` for `e [n, m, c]`, `v [n, c]`: a batch of matrix-vector
 * products (one broadcast multiply and a sum over the last axis where that is faster:
 * `thinProductsAsMatMul`). Gradients: `de = dy[:, :, None] v[:, None, :]` (`outer`) and
 * `dv = weightedRows(dy, e)`.
 */
export function rowDot(e: tf.Tensor, v: tf.Tensor, constant: { e?: boolean | undefined; v?: boolean | undefined } = {}): tf.Tensor {
  const [n, m, c] = e.shape as [number, number, number];
  if (e.rank !== 3 || v.rank !== 2 || v.shape[0] !== n || v.shape[1] !== c) {
    throw new InternalError('lower', `rowDot of [${e.shape}] and [${v.shape}]`);
  }
  return product(
    e,
    v,
    constant.e === true,
    constant.v === true,
    (et, vt) => (thinProductsAsMatMul() ? tf.reshape(tf.matMul(et, tf.reshape(vt, [n, c, 1])), [n, m]) : tf.sum(tf.mul(et, tf.reshape(vt, [n, 1, c])), -1)),
    (dy, _et, vt) => outer(dy, vt),
    (dy, et) => weightedRows(dy, et),
  );
}

/** `out[i, j, k] = a[i, j] b[i, k]` for `a [n, m]`, `b [n, c]`: a batch of outer products. */
function outer(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const [n, m] = a.shape as [number, number];
  const c = b.shape[1]!;
  return thinProductsAsMatMul() ? tf.matMul(tf.reshape(a, [n, m, 1]), tf.reshape(b, [n, 1, c])) : tf.mul(tf.reshape(a, [n, m, 1]), tf.reshape(b, [n, 1, c]));
}

/**
 * `out[i, :] = sum_j w[i, j] e[i, j, :]` for `w [n, m]`, `e [n, m, c]` (a soft read of one memory
 * per example): an untransposed batched matMul. Gradients: `dw = rowDot(e, dy)` and
 * `de = w[:, :, None] dy[:, None, :]` (`outer`; tfjs's matMul gradient would run two transposed
 * batched products, each transposing a whole [n, m, c] operand on wasm first).
 */
export function weightedRows(w: tf.Tensor, e: tf.Tensor, constant: { w?: boolean | undefined; e?: boolean | undefined } = {}): tf.Tensor {
  const [n, m, c] = e.shape as [number, number, number];
  if (e.rank !== 3 || w.rank !== 2 || w.shape[0] !== n || w.shape[1] !== m) {
    throw new InternalError('lower', `weightedRows of [${w.shape}] and [${e.shape}]`);
  }
  return product(
    w,
    e,
    constant.w === true,
    constant.e === true,
    (wt, et) => tf.reshape(tf.matMul(tf.reshape(wt, [n, 1, m]), et), [n, c]),
    (dy, _wt, et) => rowDot(et, dy),
    (dy, wt) => outer(wt, dy),
  );
}
