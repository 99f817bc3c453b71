/**
 * The PyTorch emission of each built-in function of the signature table (src/ir/builtins.ts),
 * keyed by its name like the tfjs lowering beside it (src/lower/builtins.ts): the exporter
 * (./emit.ts) reads a `builtin` node's row here and nothing else switches on a built-in's name.
 * `Record<BuiltinName, ...>` makes a row without its emission a compile error. Each emission
 * receives its arguments as Python expressions with what the generator knows statically: whether
 * the value carries the plate axes (`lifted`: [E?, K, B] first) and its event rank; the plate
 * count `L` of the trace (2, or 3 with an enumerated site).
 */
import type { BuiltinName } from '../../ir/builtins.ts';

/** A Python expression of a value, with its plate and event structure. */
export interface PyValue {
  code: string;
  /** Carries the L plate axes before its event axes (data, sites and what depends on them). */
  lifted: boolean;
  /** Its event rank (the IR type's). */
  ev: number;
}

/**
 * Two values as Python expressions that broadcast the way vmm's `broadcastValues` does: event
 * axes line up from the right, so a lifted operand of the lower event rank gets singleton event
 * axes after its plates (an unlifted one broadcasts from the right as it is).
 */
export function aligned(a: PyValue, b: PyValue, L: number): [string, string] {
  const pad = (v: PyValue, n: number) => (v.lifted && n > 0 ? `rt.pad_ev(${v.code}, ${L}, ${n})` : v.code);
  return [pad(a, b.ev - a.ev), pad(b, a.ev - b.ev)];
}

export type TorchBuiltin = (args: readonly PyValue[], L: number) => string;

const each =
  (f: (x: string) => string): TorchBuiltin =>
  ([a]) =>
    f(a!.code);

/** concat (the last event axis) and stack (the first): vmm's `join`, plates broadcast. */
const join =
  (first: boolean): TorchBuiltin =>
  (args, L) =>
    `rt.concat([${args.map((a) => a.code).join(', ')}], [${args.map((a) => (a.lifted ? 'True' : 'False')).join(', ')}], ${L}${first ? ', first=True' : ''})`;

export const TORCH_BUILTINS: Record<BuiltinName, TorchBuiltin> = {
  concat: join(false),
  stack: join(true),
  dot: ([a, b], L) => {
    const [x, y] = aligned(a!, b!, L);
    return `(${x} * ${y}).sum(-1)`;
  },
  sum: each((x) => `${x}.sum(-1)`),
  mean: each((x) => `${x}.mean(-1)`),
  max: each((x) => `${x}.amax(-1)`),
  logsumexp: each((x) => `torch.logsumexp(${x}, -1)`),
  // The entries are the first event axis, right after the plates.
  pool: ([a], L) => `${a!.code}.mean(${a!.lifted ? L : 0})`,
  attend: (args, L) => {
    const [q, k, v] = args as [PyValue, PyValue, PyValue];
    return `rt.attend(${q.code}, ${q.ev}, ${k.code}, ${v.code}, ${[q, k, v].some((a) => a.lifted) ? 'True' : 'False'}, ${L})`;
  },
  softplus: each((x) => `F.softplus(${x})`),
  sigmoid: each((x) => `torch.sigmoid(${x})`),
  tanh: each((x) => `torch.tanh(${x})`),
  relu: each((x) => `torch.relu(${x})`),
  exp: each((x) => `torch.exp(${x})`),
  log: each((x) => `torch.log(${x})`),
  softmax: each((x) => `torch.softmax(${x}, -1)`),
  transpose: each((x) => `${x}.transpose(-1, -2)`),
  // The conjugate Gaussian update of src/lower/builtins.ts's gaussPool: torch.matmul broadcasts the plates.
  gauss_pool: ([v, w, m0, p0, r], L) => `((${p0!.code} * ${m0!.code} + torch.matmul(${w!.code}.transpose(-1, -2), ${obsPrec(r!, L)} * ${v!.code})) / ${poolPrec(w!, p0!, r!, L)})`,
  gauss_pool_prec: ([w, p0, r], L) => poolPrec(w!, p0!, r!, L),
};

/** An observation precision [M, D], or a scalar given two singleton event axes after its plates. */
function obsPrec(r: PyValue, L: number): string {
  return r.ev === 0 && r.lifted ? `rt.pad_ev(${r.code}, ${L}, 2)` : r.code;
}

/** prior_prec + w^T obs_prec (with a scalar obs_prec: the weights' column sums times it). */
function poolPrec(w: PyValue, p0: PyValue, r: PyValue, L: number): string {
  return r.ev === 0
    ? `(${p0.code} + ${w.code}.sum(-2).unsqueeze(-1) * ${obsPrec(r, L)})`
    : `(${p0.code} + torch.matmul(${w.code}.transpose(-1, -2), ${r.code}))`;
}
