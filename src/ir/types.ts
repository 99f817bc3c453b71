/**
 * The IR: a checked model as a sequence of typed sites over declared inputs, nets and params.
 * Produced by `toIr` (src/check/to_ir.ts) from a checked program; consumed by `lower` (src/lower/).
 *
 * Everything here is resolved: consts are folded to numbers, nets are expanded to layers with
 * concrete sizes, every expression carries its per-example type (event shape), guide defaults are
 * filled in, the `Normal(params)` short form is split into loc/scale, and training settings have
 * defaults. Sizes may still mention free size symbols (e.g. the memory size `M`): those are bound
 * per episode at run time.
 *
 * Batch and sample axes are NOT part of these shapes: the lowering adds them (see src/lower/value.ts).
 */

/** A size linear in the free size symbols: `c + sum_s terms[s] * s` (e.g. `M + 2`). */
export interface Size {
  c: number;
  terms: Record<string, number>;
}

export type Shape = Size[];

export type ElemType = 'binary' | 'real' | 'int' | 'cat';

/** A per-example value type. For `cat`, `card` is the number of categories (an index into a memory). */
export interface ValueType {
  elem: ElemType;
  shape: Shape;
  card?: Size;
}

/** The one unary operator (`-e`); functions such as `softplus` are built-ins (`builtin`). */
export type UnaryFn = 'neg';
export type BinaryFn = 'add' | 'sub' | 'mul' | 'div';

export type IrExpr =
  | { op: 'const'; value: number; type: ValueType }
  /** A declared input or an earlier binding. `ref` says which kind of name it is. */
  | { op: 'ref'; name: string; ref: 'data' | 'memory' | 'param' | 'site' | 'let'; type: ValueType }
  /**
   * Apply net `net` to the trailing (event) axes of `arg`; leading axes are mapped over. `tap`:
   * the value is the net's output of that name (`g(x).s14`, a `tap` stage) instead of its final
   * output. `skips`: the net's extra inputs (its `skip` stages), each with the same leading axes
   * as `arg`.
   */
  | { op: 'net'; net: string; arg: IrExpr; type: ValueType; tap?: string; skips?: IrSkipArg[] }
  /** `target[index]`: entry `index` along the first event axis of `target`. */
  | { op: 'index'; target: IrExpr; index: IrExpr; type: ValueType }
  /** `l @ r`: contracts the last axis of `l` with the first axis of `r` (rank <= 2 each). */
  | { op: 'matmul'; left: IrExpr; right: IrExpr; type: ValueType }
  | { op: 'unary'; fn: UnaryFn; arg: IrExpr; type: ValueType }
  /** Elementwise with broadcasting of scalars / equal shapes. */
  | { op: 'binary'; fn: BinaryFn; left: IrExpr; right: IrExpr; type: ValueType }
  /** `arg[..., from:to]` on the last axis (used to split a net's output into loc and scale). */
  | { op: 'slice'; arg: IrExpr; from: number; to: number; type: ValueType }
  /**
   * `fn(args)`: a built-in function, a row of the signature table src/ir/builtins.ts (`concat`,
   * `stack`, `dot`, `sum`, `pool`, `attend`, `softmax`, ...), which says its arguments and result;
   * each target lowers it by name (tfjs: src/lower/builtins.ts).
   */
  | { op: 'builtin'; fn: string; args: IrExpr[]; type: ValueType }
  /**
   * `nm(arg)`: a forward pass of the neural memory `neural` as written by the episode's entries
   * (src/lower/neural_memory.ts); the write runs once per trace. The declaration is carried along
   * so that evaluation needs nothing else.
   */
  | { op: 'neural_read'; neural: IrNeural; arg: IrExpr; type: ValueType };

/** `dec(h, s7: e)`: the value `arg` given for the skip input `name` of a net. */
export interface IrSkipArg {
  name: string;
  arg: IrExpr;
}

/**
 * A neural long-term memory (Titans, Behrouz, Zhong & Mirrokni 2025, arXiv:2501.00663): an MLP
 * `Mem` with layers `widths[0] -> widths[1] -> ...` and `activation` between layers, whose initial
 * weights are the params `weights[l]` / `biases[l]`; per episode it is written with the entries
 * `e` of `memory` by gradient steps on `||Mem(key(e)) - value(e)||^2`, with gates
 * `theta = lr * sigmoid(g0)`, `eta = sigmoid(g1)`, `alpha = sigmoid(g2)` from `gates(e)`, in chunks
 * of `chunk` entries (1: one entry after another).
 */
export interface IrNeural {
  name: string;
  memory: string;
  widths: number[];
  activation: 'relu' | 'tanh' | 'sigmoid' | 'softplus' | 'identity';
  key: string;
  value: string;
  gates: string;
  chunk: number;
  lr: number;
  /** The largest momentum gate: eta = momentum * sigmoid(g1) (1: the paper's gate; 0: no momentum). */
  momentum: number;
  /** The largest forgetting gate: alpha = forget * sigmoid(g2 - 4); absent: 1 (0: nothing forgotten). */
  forget?: number;
  /** false: the write leaves the biases alone (`bias: 0`); absent: they are written like the weights. */
  writeBias?: boolean;
  weights: string[];
  biases: string[];
}

/**
 * A distribution with resolved parameters: a family of the registry (src/families/registry.ts) by
 * name, its parameters in the entry's order with their names (for the printer, which reads no
 * registry). Written forms are resolved: `Normal(e)` is `loc = e[:n]`, `scale = softplus(e[n:]) +
 * 1e-4`; `Bernoulli(probs: p)` is `logits = log p - log(1 - p)`.
 *
 * `Categorical` is the node of the language's categories forms (src/check/dists.ts, typing
 * 'categories'): `logits` [N], or uniform over `n` entries (`Categorical(mem)` / `Categorical(N)`),
 * `memory` naming the memory/param whose entries it addresses, if any. Addresses are a concept of
 * the language, so their node is too; the lowering binds it to the registry's `Categorical` entry.
 */
export type IrDist =
  /** `offset`: where the memory's own rows start in the addressed table (`stack(dummies, mem)` has 2). */
  | { kind: 'Categorical'; logits?: IrExpr; n: Size; memory?: string; offset?: Size }
  | IrFamilyDist;

export interface IrFamilyDist {
  kind: 'family';
  family: string;
  params: IrExpr[];
  paramNames: readonly string[];
}

/** The registry name of the family a distribution belongs to. */
export function familyName(d: IrDist): string {
  return d.kind === 'family' ? d.family : d.kind;
}

/** A distribution's parameter expressions, in its family's order (a uniform Categorical has none). */
export function distParams(d: IrDist): IrExpr[] {
  if (d.kind === 'family') return d.params;
  return d.logits ? [d.logits] : [];
}

export type SiteRole = 'address' | 'latent' | 'observe';

export interface IrSite {
  stmt: 'site';
  name: string;
  role: SiteRole;
  /** True for sites of a discrete family (the entry's `discrete`): gradients need a score-function estimator or enumeration. */
  discrete: boolean;
  dist: IrDist;
  type: ValueType;
}

export interface IrLet {
  stmt: 'let';
  name: string;
  value: IrExpr;
  type: ValueType;
}

export type IrStmt = IrSite | IrLet;

export type Activation = 'relu' | 'tanh' | 'sigmoid' | 'elu' | 'softplus' | 'identity';

/** Net layers with concrete sizes. Image layers use channels-last [H, W, C] internally; see lower/nets.ts. */
export type IrLayer =
  /** `bias`: the bias's initial value (`linear(IN, OUT, bias: -3)`), 0 when absent. */
  | { kind: 'linear'; in: number; out: number; bias?: number }
  /** `slice(FROM, TO)`: features FROM .. TO - 1 of a vector (the last axis). */
  | { kind: 'slice'; from: number; to: number }
  | { kind: 'act'; fn: Activation }
  | { kind: 'reshape'; shape: number[] }
  | { kind: 'flatten' }
  | { kind: 'conv2d'; inChannels: number; outChannels: number; kernel: number; stride: number; padding: 'same' | 'valid' }
  | { kind: 'deconv2d'; inChannels: number; outChannels: number; kernel: number; stride: number; padding: 'same' | 'valid' }
  /** Calls another net: its parameters are shared, not copied. */
  | { kind: 'call'; net: string }
  /** `tap(s14)`: exposes the value at this point of the chain as the net's output `s14` (identity). */
  | { kind: 'tap'; name: string }
  /**
   * `skip(s7, C)`: concatenates the net's extra input `s7` (C channels at the current resolution,
   * or C features after a vector) to the current value, channel-wise for images.
   */
  | { kind: 'skip'; name: string; channels: number };

/** A named tensor a net produces (`tap`) or takes besides its input (`skip`), channels-first. */
export interface IrNetPort {
  name: string;
  shape: number[];
}

export interface IrNet {
  name: string;
  layers: IrLayer[];
  /** Event shape consumed and produced (concrete). */
  inShape: number[];
  outShape: number[];
  /** Parameters owned by this net (excluding nets it calls). */
  paramCount: number;
  /** Its named outputs besides the final one, in chain order (absent: none). */
  taps?: IrNetPort[];
  /** Its extra inputs, in chain order (absent: none). */
  skips?: IrNetPort[];
}

export interface IrInput {
  name: string;
  type: ValueType;
}

export interface IrParam {
  name: string;
  type: ValueType;
  init: { kind: 'normal'; std: number } | { kind: 'zeros' };
}

/**
 * An estimator's name: an entry of the estimator registry (src/estimators/registry.ts), which the
 * checker and the settings accept and nothing else; the IR does not list them.
 */
export type EstimatorKind = string;

/** The value of an estimator argument: a number (`temperature: 0.5`) or a name (`baseline: nvil`). */
export type EstimatorArg = number | string;

export interface EstimatorSettings {
  kind: EstimatorKind;
  /** Samples per example (the K of the K-sample bound). */
  k: number;
  /**
   * The estimator's other arguments by name, as written in `train { estimator = vimco(k: 4,
   * baseline: geometric) }`, each filled in (its default when not written), in the order of its
   * registry entry. What an estimator takes, and each argument's default and limits, is its entry's.
   */
  args: Readonly<Record<string, EstimatorArg>>;
}

export interface TrainSettings {
  estimator: EstimatorSettings;
  /** `clip`: all gradients together clipped to this global L2 norm before the update. */
  optimizer: { kind: 'adam' | 'sgd'; lr: number; clip?: number };
  batch: number;
  steps: number;
  /**
   * Few-shot episodes for models with a memory: classes in memory, shots per class, distractor
   * entries; with `minShots`, each training batch draws its shots uniformly from minShots .. shots
   * (validation keeps `shots`), so a model meets small memories as well as full ones.
   */
  episodes: { classes: number; shots: number; distractors: number; minShots?: number };
  /**
   * A data set of the registry (src/data/registry.ts), checked there by name: `recall` (synthetic
   * associative recall) makes N = classes * shots pairs per episode.
   */
  dataset: string;
  /**
   * The no-memory control (`--addressing none`, src/ir/addressing.ts `toNoMemory`): every
   * memory's entries replaced by one learned entry, so nothing of the episode reaches the model.
   */
  control?: boolean;
  /**
   * `address = topk(k: K, tail: T)`: every address is drawn from a truncated proposal, the guide's K
   * most probable entries plus a uniform sample of T others, scored by the proposal's own density
   * (src/lower/truncated.ts); absent: from the guide's full q(a | x).
   */
  address?: AddressProposal;
}

/** Steps between refreshes of a shared memory's cached keys when `topk` says no `refresh` (src/lower/cached_keys.ts). */
export const KEY_REFRESH_STEPS = 100;

/** A truncated address proposal (issue #26): top-k of the guide's posterior plus `tail` uniform entries. */
export interface AddressProposal {
  kind: 'topk';
  k: number;
  tail: number;
  /**
   * Steps between recomputations of a shared memory's cached keys (src/lower/cached_keys.ts);
   * absent: KEY_REFRESH_STEPS. Staler keys give a worse proposal (a looser bound), never an invalid one.
   */
  refresh?: number;
  /**
   * Search the top among this many buckets of a shared memory's cached keys (of about sqrt(M),
   * src/lower/cached_keys.ts `bucketKeys`) instead of every key; absent: every key.
   */
  probe?: number;
}

export interface IrProgram {
  name: string;
  consts: Record<string, number>;
  sizeSymbols: string[];
  data: IrInput[];
  memories: IrInput[];
  params: IrParam[];
  nets: IrNet[];
  /** Neural long-term memories (absent or empty in models without one). */
  neural?: IrNeural[];
  model: IrStmt[];
  guide: { derived: boolean; stmts: IrStmt[] };
  train: TrainSettings;
  /** Set by the soft-attention transform (./addressing.ts): the query latent added per address. */
  softAttention?: SoftQuery[];
  /** Set by the no-memory transform: each memory whose entries are all the learned entry `param`. */
  noMemory?: Array<{ memory: string; param: string }>;
}

/** What the soft-attention transform added for one address: the query latent and its guide's scale param. */
export interface SoftQuery {
  address: string;
  query: string;
  scale: string;
}
