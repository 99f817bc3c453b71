/**
 * Neural long-term memory: Behrouz, Zhong & Mirrokni 2025, "Titans: Learning to Memorize at Test
 * Time", arXiv:2501.00663, Sec. 3.1-3.2.
 *
 * The memory is a small MLP `Mem` whose weights are state of the episode. Writing item t with key
 * `k_t` and value `v_t` takes one gradient step on the associative loss
 *
 *     l(Mem; k_t, v_t) = ||Mem(k_t) - v_t||^2
 *     S_t   = eta_t S_{t-1} - theta_t grad l(Mem_{t-1}; k_t, v_t)      (surprise with momentum)
 *     Mem_t = (1 - alpha_t) Mem_{t-1} + S_t                           (forgetting gate)
 *
 * and reading is a forward pass `Mem(q)` without an update. Everything here is a pure function of
 * tensors: the weights carry a leading batch axis (one memory per episode), and the gradient of
 * `l` is backprop through the MLP written out in tensor ops (`assocGrads`), so the outer training
 * differentiates through the inner updates with ordinary first-order autodiff.
 *
 * Chunked (parallel) form, Titans Sec. 3.2: within a chunk of C items all gradients are taken at
 * the chunk's starting weights `Mem_0`; momentum and forgetting are then linear recurrences, and
 * with `beta_i = prod_{j<=i}(1 - alpha_j)`, `E_i = prod_{j<=i} eta_j` they unroll to
 *
 *     S_C   = E_C S_0 - sum_j (E_C / E_j) theta_j g_j
 *     Mem_C = beta_C Mem_0 + sum_i (beta_C / beta_i) S_i
 *           = beta_C Mem_0 + c_S S_0 - sum_j w_j g_j,
 *       c_S = sum_i (beta_C / beta_i) E_i,
 *       w_j = theta_j sum_{i>=j} (beta_C / beta_i)(E_i / E_j),
 *
 * where every `g_j` of a weight matrix is an outer product `h_j^T delta_j`, so `sum_j w_j g_j` is
 * one batched matmul `H^T diag(w) Delta`. Ratios are computed in log space (exponents <= 0).
 * Chunk size 1 is exactly the sequential rule above.
 *
 * Keys and queries are L2-normalized before they reach the memory (as in Titans' implementation
 * notes, where q and k are normalized), which keeps the inner step size `theta <= lr` stable.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import type { IrNeural } from '../ir/types.ts';
import { alignTo, plateSizesOf, unionPlates, type Value } from './plates.ts';

/** Activations a neural memory's MLP may use between its layers (none after the last). */
export type MemoryActivation = 'relu' | 'tanh' | 'sigmoid' | 'softplus' | 'identity';

/** Weights of an MLP memory; with a batch axis `w[l]: [B, in, out]`, `b[l]: [B, out]`. */
export interface MlpWeights {
  w: tf.Tensor[];
  b: tf.Tensor[];
}

/** The state written so far: the memory's weights and the momentum ("past surprise") S. */
export interface MemoryState {
  mem: MlpWeights;
  surprise: MlpWeights;
}

/** Per-item gates in (0, 1) (theta already scaled by the maximal inner learning rate), each [B, T]. */
export interface Gates {
  theta: tf.Tensor;
  eta: tf.Tensor;
  alpha: tf.Tensor;
}

function act(fn: MemoryActivation, a: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'relu':
      return tf.relu(a);
    case 'tanh':
      return tf.tanh(a);
    case 'sigmoid':
      return tf.sigmoid(a);
    case 'softplus':
      return tf.softplus(a);
    case 'identity':
      return a;
  }
}

/** d act(a) / da, elementwise, written with differentiable ops (relu's is a step: zero gradient). */
function actGrad(fn: MemoryActivation, a: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'relu':
      return tf.step(a);
    case 'tanh': {
      const t = tf.tanh(a);
      return tf.sub(1, tf.mul(t, t));
    }
    case 'sigmoid': {
      const s = tf.sigmoid(a);
      return tf.mul(s, tf.sub(1, s));
    }
    case 'softplus':
      return tf.sigmoid(a);
    case 'identity':
      return tf.onesLike(a);
  }
}

function checkWeights(where: string, m: MlpWeights): void {
  if (m.w.length === 0 || m.w.length !== m.b.length) throw new InternalError('lower', `${where}: an MLP memory needs one bias per weight matrix`);
  for (let l = 0; l < m.w.length; l++) {
    if (m.w[l]!.rank !== 3 || m.b[l]!.rank !== 2) throw new InternalError('lower', `${where}: layer ${l} weights must be [B, in, out] and [B, out], got [${m.w[l]!.shape}] and [${m.b[l]!.shape}]`);
  }
}

/** `x / sqrt(||x||^2 + 1e-12)` over the last axis (smooth at 0: a zero key has a finite gradient). */
export function l2Normalize(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-12)));
}

/**
 * The forward pass `Mem(x)` for `x: [B, N, in]`: `[B, N, out]`, with the pre-activations `a[l]`
 * and the layer inputs `h[l]` (h[0] = x) that the gradient needs.
 */
export function mlpForward(m: MlpWeights, x: tf.Tensor, fn: MemoryActivation): { out: tf.Tensor; pre: tf.Tensor[]; inputs: tf.Tensor[] } {
  checkWeights('mlpForward', m);
  if (x.rank !== 3) throw new InternalError('lower', `mlpForward: input must be [B, N, in], got [${x.shape}]`);
  const pre: tf.Tensor[] = [];
  const inputs: tf.Tensor[] = [];
  let h = x;
  const last = m.w.length - 1;
  for (let l = 0; l <= last; l++) {
    inputs.push(h);
    const a = tf.add(tf.matMul(h, m.w[l]!), tf.expandDims(m.b[l]!, 1));
    pre.push(a);
    h = l === last ? a : act(fn, a);
  }
  return { out: h, pre, inputs };
}

/** Reads the memory: `Mem(normalize(q))` for `q: [B, N, in]`, no update. */
export function readMemory(m: MlpWeights, q: tf.Tensor, fn: MemoryActivation): tf.Tensor {
  return mlpForward(m, l2Normalize(q), fn).out;
}

/**
 * Per-item backprop of `l_j = ||Mem(k_j) - v_j||^2` for `k: [B, C, in]`, `v: [B, C, out]`, all at
 * the weights `m`: for layer l its inputs `h[l]: [B, C, in_l]` and output deltas `delta[l]: [B, C,
 * out_l]`, so that `grad_W[l] l_j = h[l]_j^T delta[l]_j` and `grad_b[l] l_j = delta[l]_j`.
 */
export function assocGrads(m: MlpWeights, k: tf.Tensor, v: tf.Tensor, fn: MemoryActivation): { h: tf.Tensor[]; delta: tf.Tensor[] } {
  const { out, pre, inputs } = mlpForward(m, k, fn);
  const L = m.w.length;
  const delta: tf.Tensor[] = new Array<tf.Tensor>(L);
  let d = tf.mul(2, tf.sub(out, v));
  for (let l = L - 1; l >= 0; l--) {
    delta[l] = d;
    if (l > 0) {
      const back = tf.matMul(d, m.w[l]!, false, true); // [B, C, in_l]
      d = tf.mul(back, actGrad(fn, pre[l - 1]!));
    }
  }
  return { h: inputs, delta };
}

/** `log` of values in (0, 1], clipped away from 0. */
function safeLog(x: tf.Tensor): tf.Tensor {
  return tf.log(tf.maximum(x, 1e-12));
}

/**
 * Writes one chunk of C items (`k: [B, C, in]`, `v: [B, C, out]`, gates [B, C]) with every
 * gradient at the chunk's starting weights (the unrolled form in the header). C = 1 is one
 * sequential step. With `bias` false the biases are not written (they stay as they are: zeros for
 * a memory declared with `bias: 0`), so a linear memory is `Mem(k) = W k` and its write the delta
 * rule on W alone.
 */
export function writeChunk(state: MemoryState, k: tf.Tensor, v: tf.Tensor, gates: Gates, fn: MemoryActivation, bias = true): MemoryState {
  const [B, C] = k.shape as [number, number, number];
  const { h, delta } = assocGrads(state.mem, k, v, fn);
  const logBeta = tf.cumsum(safeLog(tf.sub(1, gates.alpha)), 1); // [B, C]
  const logE = tf.cumsum(safeLog(gates.eta), 1); // [B, C]
  const logBetaC = tf.slice(logBeta, [0, C - 1], [B, 1]); // [B, 1]
  const logEC = tf.slice(logE, [0, C - 1], [B, 1]);
  const r = tf.exp(tf.sub(logBetaC, logBeta)); // beta_C / beta_i  [B, C]
  // A[i, j] = E_i / E_j for i >= j, else 0: [B, C(i), C(j)].
  const diff = tf.sub(tf.expandDims(logE, 2), tf.expandDims(logE, 1));
  const lower = tf.cast(tf.linalg.bandPart(tf.ones([C, C]), -1, 0), 'bool');
  const A = tf.exp(tf.where(tf.broadcastTo(lower, [B, C, C]), diff, tf.fill([B, C, C], -1e9)));
  const w = tf.mul(gates.theta, tf.squeeze(tf.matMul(tf.expandDims(r, 1), A), [1])); // [B, C]
  const cS = tf.sum(tf.mul(r, tf.exp(logE)), 1); // [B]
  const u = tf.mul(gates.theta, tf.exp(tf.sub(logEC, logE))); // theta_j E_C / E_j  [B, C]
  const betaC = tf.exp(tf.squeeze(logBetaC, [1])); // [B]
  const eC = tf.exp(tf.squeeze(logEC, [1]));
  const mem: MlpWeights = { w: [], b: [] };
  const surprise: MlpWeights = { w: [], b: [] };
  const per3 = (x: tf.Tensor) => tf.reshape(x, [B, 1, 1]);
  const per2 = (x: tf.Tensor) => tf.reshape(x, [B, 1]);
  for (let l = 0; l < state.mem.w.length; l++) {
    const hl = h[l]!;
    const dl = delta[l]!;
    // sum_j c_j h_j^T delta_j = H^T diag(c) Delta ; sum_j c_j delta_j.
    const gW = (c: tf.Tensor) => tf.matMul(hl, tf.mul(dl, tf.expandDims(c, 2)), true, false);
    const gB = (c: tf.Tensor) => tf.squeeze(tf.matMul(tf.expandDims(c, 1), dl), [1]);
    const w0 = state.mem.w[l]!;
    const b0 = state.mem.b[l]!;
    const sw = state.surprise.w[l]!;
    const sb = state.surprise.b[l]!;
    mem.w.push(tf.sub(tf.add(tf.mul(per3(betaC), w0), tf.mul(per3(cS), sw)), gW(w)));
    mem.b.push(bias ? tf.sub(tf.add(tf.mul(per2(betaC), b0), tf.mul(per2(cS), sb)), gB(w)) : b0);
    surprise.w.push(tf.sub(tf.mul(per3(eC), sw), gW(u)));
    surprise.b.push(bias ? tf.sub(tf.mul(per2(eC), sb), gB(u)) : sb);
  }
  return { mem, surprise };
}

/** The initial state of B episodes: the learned weights `Mem_0` (no batch axis) and zero surprise. */
export function initialState(w0: readonly tf.Tensor[], b0: readonly tf.Tensor[], B: number): MemoryState {
  const tileW = (t: tf.Tensor) => tf.tile(tf.expandDims(t, 0), [B, ...t.shape.map(() => 1)]);
  const mem: MlpWeights = { w: w0.map(tileW), b: b0.map(tileW) };
  return { mem, surprise: { w: mem.w.map((t) => tf.zerosLike(t)), b: mem.b.map((t) => tf.zerosLike(t)) } };
}

/**
 * Writes T items (`k: [B, T, in]`, `v: [B, T, out]`, gates [B, T]) in chunks of `chunk` items
 * (the last chunk may be shorter); `chunk = 1` is the sequential rule. Keys are L2-normalized.
 * `bias` false: the biases are not written (writeChunk).
 */
export function writeMemory(state: MemoryState, k: tf.Tensor, v: tf.Tensor, gates: Gates, fn: MemoryActivation, chunk: number, bias = true): MemoryState {
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new InternalError('lower', `writeMemory: chunk must be a positive integer, got ${chunk}`);
  if (k.rank !== 3 || v.rank !== 3 || k.shape[0] !== v.shape[0] || k.shape[1] !== v.shape[1]) {
    throw new InternalError('lower', `writeMemory: keys [${k.shape}] and values [${v.shape}] must be [B, T, in] and [B, T, out]`);
  }
  const T = k.shape[1]!;
  const kn = l2Normalize(k);
  // Without a gradient tape (evaluation) each chunk's intermediates are freed as it ends, so a
  // long stream needs memory for the state only; under a tape they are the backward pass's inputs.
  const free = !tf.engine().isTapeOn();
  // Split the stream into its chunks once (one op), rather than slicing it at every step.
  const sizes: number[] = [];
  for (let t0 = 0; t0 < T; t0 += chunk) sizes.push(Math.min(chunk, T - t0));
  const parts = (x: tf.Tensor) => (sizes.length === 1 ? [x] : tf.split(x, sizes, 1));
  const ks = parts(kn);
  const vs = parts(v);
  const thetas = parts(gates.theta);
  const etas = parts(gates.eta);
  const alphas = parts(gates.alpha);
  let s = state;
  for (let i = 0; i < sizes.length; i++) {
    const step = (prev: MemoryState) => writeChunk(prev, ks[i]!, vs[i]!, { theta: thetas[i]!, eta: etas[i]!, alpha: alphas[i]! }, fn, bias);
    if (!free) {
      s = step(s);
      continue;
    }
    const prev = s;
    const next = tf.tidy(() => {
      const n = step(prev);
      return [...n.mem.w, ...n.mem.b, ...n.surprise.w, ...n.surprise.b];
    });
    // Unwritten biases pass from one state to the next: free only what the new state dropped.
    const kept = new Set(next);
    if (prev !== state) for (const t of [...prev.mem.w, ...prev.mem.b, ...prev.surprise.w, ...prev.surprise.b]) if (!kept.has(t)) t.dispose();
    const L = state.mem.w.length;
    s = { mem: { w: next.slice(0, L), b: next.slice(L, 2 * L) }, surprise: { w: next.slice(2 * L, 3 * L), b: next.slice(3 * L) } };
  }
  return s;
}

/**
 * The forgetting gate's offset: `alpha = sigmoid(g2 + ALPHA_OFFSET)`, so a gate net that starts
 * near zero forgets little (alpha ~ 0.018) rather than half the memory per item, which would
 * erase a stream of N items after a few dozen writes before training could learn to keep them.
 */
export const ALPHA_OFFSET = -4;

/**
 * Gates from a gate net's 3 outputs `[..., 3]`: theta = lr * sigmoid(g0), eta = momentum *
 * sigmoid(g1), alpha = forget * sigmoid(g2 + ALPHA_OFFSET). momentum = 0 and forget = 0 give
 * zero gates (no momentum, no forgetting): with a linear memory the write is the delta rule.
 */
export function gatesFromLogits(g: tf.Tensor, lr: number, momentum = 1, forget = 1): Gates {
  const last0 = g.rank - 1;
  const offset = tf.tensor([0, 0, ALPHA_OFFSET], [...new Array<number>(last0).fill(1), 3]);
  const s = tf.sigmoid(tf.add(g, offset));
  const last = g.rank - 1;
  const part = (i: number) => tf.squeeze(tf.slice(s, [...new Array<number>(last).fill(0), i], [...g.shape.slice(0, last), 1]), [last]);
  const scaled = (x: number, i: number) => (x === 1 ? part(i) : x === 0 ? tf.zeros(g.shape.slice(0, last)) : tf.mul(x, part(i)));
  return { theta: tf.mul(lr, part(0)), eta: scaled(momentum, 1), alpha: scaled(forget, 2) };
}

// ---------------------------------------------------------------- the IR's `nm(q)` on plated values

/** What a read needs from the evaluation context (src/lower/evaluate.ts `EvalContext`). */
export interface NeuralEvalContext {
  env: ReadonlyMap<string, unknown>;
  /** `many`: several nets on one input sharing a common leading call (CompiledModel.applyNet). */
  applyNet: ((name: string, flat: tf.Tensor) => tf.Tensor) & { many?: (names: readonly string[], flat: tf.Tensor) => tf.Tensor[] };
  /** The trace's shared cache (one per trace): the written state is kept alongside it. */
  cache: object;
}

/** Written memories per trace, keyed by the trace's cache, then by the neural memory's name. */
const written = new WeakMap<object, Map<string, { state: MemoryState; batched: boolean }>>();

function plated(x: unknown, what: string): Value {
  if (!x || typeof x !== 'object' || !('t' in x) || !('plates' in x)) throw new InternalError('lower', `${what} is not bound to a tensor`);
  return x as Value;
}

/**
 * The state of neural memory `n` after writing the entries of its memory: computed once per
 * trace (the guide and the model read the same written memory). A memory with the batch plate
 * gives one written memory per episode; a shared memory one for all.
 */
export function writtenMemory(n: IrNeural, ctx: NeuralEvalContext): { state: MemoryState; batched: boolean } {
  let perTrace = written.get(ctx.cache);
  if (!perTrace) written.set(ctx.cache, (perTrace = new Map()));
  const hit = perTrace.get(n.name);
  if (hit) return hit;
  const mem = plated(ctx.env.get(n.memory), `memory '${n.memory}'`);
  const extra = mem.plates.filter((p) => p !== 'batch');
  if (extra.length) throw new InternalError('lower', `neural memory ${n.name}: its memory depends on '${extra[0]}'`);
  const batched = mem.plates.includes('batch');
  const entries = batched ? mem.t : tf.expandDims(mem.t, 0); // [B, T, ...entry]
  const B = entries.shape[0]!;
  const [k, v, g] = ctx.applyNet.many ? ctx.applyNet.many([n.key, n.value, n.gates], entries) : [n.key, n.value, n.gates].map((net) => ctx.applyNet(net, entries));
  if (!k || !v || !g) throw new InternalError('lower', `neural memory ${n.name}: key, value and gate nets gave no result`);
  const w0 = n.weights.map((w) => plated(ctx.env.get(w), `param '${w}'`).t);
  const b0 = n.biases.map((b) => plated(ctx.env.get(b), `param '${b}'`).t);
  const state = writeMemory(initialState(w0, b0, B), k, v, gatesFromLogits(g, n.lr, n.momentum, n.forget ?? 1), n.activation, n.chunk, n.writeBias ?? true);
  const out = { state, batched };
  perTrace.set(n.name, out);
  return out;
}

/** `nm(q)` for a plated `q` with event shape [..., In]: [..., Out] with q's plates (and batch). */
export function neuralRead(n: IrNeural, q: Value, ctx: NeuralEvalContext): Value {
  const { state, batched } = writtenMemory(n, ctx);
  const inW = n.widths[0]!;
  const outW = n.widths[n.widths.length - 1]!;
  if (!batched) {
    const out = readMemory(state.mem, tf.reshape(q.t, [1, -1, inW]), n.activation);
    return { t: tf.reshape(out, [...q.t.shape.slice(0, -1), outW]), plates: q.plates };
  }
  const B = state.mem.w[0]!.shape[0]!;
  const plates = unionPlates(q.plates, ['batch']);
  const t = alignTo(q, plates, undefined, { ...plateSizesOf(q), batch: B }); // [...plates, ...ev, In]
  const bi = plates.indexOf('batch');
  const perm = [bi, ...t.shape.map((_, i) => i).filter((i) => i !== bi)];
  const moved = tf.transpose(t, perm);
  const out = readMemory(state.mem, tf.reshape(moved, [B, -1, inW]), n.activation);
  const outMoved = tf.reshape(out, [...moved.shape.slice(0, -1), outW]);
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return { t: tf.transpose(outMoved, inverse), plates };
}
