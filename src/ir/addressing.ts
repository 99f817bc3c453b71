/**
 * The addressing variants of one program (issue #20): soft attention as a generative model of its
 * own, and the no-memory control; `withAddressing` applies the one a program's settings name.
 *
 * Soft attention (background.md §2).
 *
 * The classic soft baseline reads `r = sum_i q(a = i | x, mem) g(m_i)` inside the generative model.
 * The weights come from the guide, which sees the target x, so the "likelihood" of that model is
 * not a likelihood at all: on targets independent of the memory it scores above the data's
 * entropy. A soft read in a generative model needs weights that do not depend on x.
 *
 * The construction here makes the attention query a latent of the model:
 *
 *     u ~ Normal(0, I_H)                                 (the query, a model latent)
 *     w = softmax(k(mem) @ u),  k(mem) = the guide's address keys (e.g. h(mem))
 *     every read g(mem[a]) becomes sum_i w_i g(m_i)      (a deterministic function of u and mem)
 *
 * and the guide's address statement `a ~ Categorical(logits: k(mem) @ q(x))` becomes the guide
 * of the query, `u ~ Normal(q(x), softplus(s) + 1e-4)` with a learned scale `s`, the address read
 * with the same weights softmax(k(mem) @ u). The model is p(x, u | mem) = N(u; 0, I) p(x | w(u, mem));
 * the importance-weighted bound over (u, z) samples from the guide is a bound on its log p(x | mem),
 * with KL(q(u | x) || p(u)) inside it: what the read learns of x is paid for. The hard and soft
 * variants share every network of the file; the soft one has H more parameters (the query scale).
 *
 * The transform needs the guide's address logits in the form `keys @ query` (keys: [N, H], one row
 * per addressed entry, not depending on the target; query: [H]); `softAttentionProblem` says why
 * a program does not fit, for a located diagnostic.
 */
import { mapChildren, mentions } from './traverse.ts';
import type { IrDist, IrExpr, IrProgram, IrSite, IrStmt, Size, SoftQuery, ValueType } from './types.ts';

export interface SoftAttentionMisfit {
  message: string;
  /** The site the diagnostic points at. */
  site: string;
}

/**
 * Soft attention's query is Gaussian by construction (its prior N(0, 1), its guide centred on the
 * guide's query): the one family the transform names. The IR reads no registry, so the name is
 * written here; it is the registry's `Normal` (GAUSSIAN, src/families/normal.ts).
 */
function gaussian(loc: IrExpr, scale: IrExpr): IrDist {
  return { kind: 'family', family: 'Normal', params: [loc, scale], paramNames: ['loc', 'scale'] };
}

type GuideSite = IrSite & { dist: { kind: 'Categorical'; logits: IrExpr & { op: 'matmul' } } };

function guideSiteOf(ir: IrProgram, name: string): IrSite | undefined {
  return ir.guide.stmts.find((s): s is IrSite => s.stmt === 'site' && s.name === name);
}

/** The guide's lets, to inline into the model's copy of the keys. */
function guideLets(ir: IrProgram): Map<string, IrExpr> {
  const out = new Map<string, IrExpr>();
  for (const s of ir.guide.stmts) if (s.stmt === 'let') out.set(s.name, s.value);
  return out;
}

function inline(e: IrExpr, lets: Map<string, IrExpr>): IrExpr {
  if (e.op === 'ref' && e.ref === 'let' && lets.has(e.name)) return inline(lets.get(e.name)!, lets);
  return mapChildren(e, (c) => inline(c, lets));
}

const observedNames = (ir: IrProgram) => new Set(ir.model.filter((s): s is IrSite => s.stmt === 'site' && s.role === 'observe').map((s) => s.name));

/** Why the address `site` cannot be read with a latent soft-attention query, or undefined. */
export function softAttentionProblem(ir: IrProgram, address: string): SoftAttentionMisfit | undefined {
  const g = guideSiteOf(ir, address);
  const form = 'soft attention makes the query of the address a latent of the model: it needs the guide to give the address as `Categorical(logits: keys @ query)`, keys one row per entry (e.g. `h(mem) @ h(x)`)';
  if (!g || g.dist.kind !== 'Categorical' || !g.dist.logits || g.dist.logits.op !== 'matmul') return { message: form, site: address };
  const { left, right } = g.dist.logits;
  if (left.type.shape.length !== 2 || right.type.shape.length !== 1) return { message: `${form}; here the operands have ranks ${left.type.shape.length} and ${right.type.shape.length}`, site: address };
  const keys = inline(left, guideLets(ir));
  const observed = observedNames(ir);
  const guideOnly = new Set(ir.guide.stmts.filter((s) => s.stmt === 'site').map((s) => s.name).filter((n) => !ir.model.some((m) => m.stmt === 'site' && m.name === n)));
  if (mentions(keys, (r) => (r.ref === 'data' && observed.has(r.name)) || (r.ref === 'site' && (observed.has(r.name) || guideOnly.has(r.name) || r.name === address)))) {
    return { message: `soft attention reads memory in the generative model with keys \`${describe(left)}\`, which must not depend on the target (the leak this construction removes)`, site: address };
  }
  return undefined;
}

function describe(e: IrExpr): string {
  if (e.op === 'ref') return e.name;
  if (e.op === 'net') return `${e.net}(${describe(e.arg)})`;
  return e.op;
}

/** The soft-attention model of a program (idempotent); throws when an address does not fit (check first). */
export function toSoftAttention(ir: IrProgram): IrProgram {
  if (ir.softAttention) return ir;
  const taken = new Set<string>([
    ...Object.keys(ir.consts),
    ...ir.sizeSymbols,
    ...ir.data.map((d) => d.name),
    ...ir.memories.map((m) => m.name),
    ...ir.params.map((p) => p.name),
    ...ir.nets.map((n) => n.name),
    ...[...ir.model, ...ir.guide.stmts].map((s) => s.name),
  ]);
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}${i}`;
    taken.add(name);
    return name;
  };
  const lets = guideLets(ir);
  let model: IrStmt[] = [...ir.model];
  let guide: IrStmt[] = [...ir.guide.stmts];
  const params = [...ir.params];
  const added: SoftQuery[] = [];
  for (const site of ir.model) {
    if (site.stmt !== 'site' || site.role !== 'address') continue;
    const problem = softAttentionProblem(ir, site.name);
    if (problem) throw new Error(problem.message);
    const g = guideSiteOf(ir, site.name) as GuideSite;
    const { left, right } = g.dist.logits;
    const h = right.type.shape[0]!;
    const qType: ValueType = { elem: 'real', shape: [h] };
    const query = fresh(`${site.name}_query`);
    const scale = fresh(`${site.name}_query_scale`);
    const u: IrExpr = { op: 'ref', name: query, ref: 'site', type: qType };
    const logitsType = g.dist.logits.type;
    const keysModel = inline(left, lets);
    const prior: IrSite = { stmt: 'site', name: query, role: 'latent', discrete: false, type: qType, dist: gaussian(scalar(0), scalar(1)) };
    const d = site.dist as IrDist & { kind: 'Categorical' };
    const attention: IrExpr = { op: 'matmul', left: keysModel, right: u, type: logitsType };
    const modelAddress: IrSite = { ...site, dist: { ...d, logits: d.logits ? { op: 'binary', fn: 'add', left: d.logits, right: attention, type: logitsType } : attention } };
    model = model.flatMap((s) => (s === site ? [prior, modelAddress] : [s]));
    const scaleRef: IrExpr = { op: 'ref', name: scale, ref: 'param', type: qType };
    const guideQuery: IrSite = {
      stmt: 'site',
      name: query,
      role: 'latent',
      discrete: false,
      type: qType,
      dist: gaussian(right, { op: 'binary', fn: 'add', left: { op: 'builtin', fn: 'softplus', args: [scaleRef], type: qType }, right: scalar(1e-4), type: qType }),
    };
    const guideAddress: IrSite = { ...g, dist: { ...g.dist, logits: { op: 'matmul', left, right: u, type: logitsType } } };
    guide = guide.flatMap((s) => (s === g ? [guideQuery, guideAddress] : [s]));
    params.push({ name: scale, type: qType, init: { kind: 'zeros' } });
    added.push({ address: site.name, query, scale });
  }
  return { ...ir, model, guide: { ...ir.guide, stmts: guide }, params, softAttention: added };
}

function scalar(value: number): IrExpr {
  return { op: 'const', value, type: { elem: 'real', shape: [] as Size[] } };
}


/**
 * The program its estimator trains: with soft attention (`soft`), the soft-attention model above;
 * otherwise the program as checked. Every path from a checked program to a trainer or an
 * evaluation (src/check/settings.ts, a run folder's program) goes through here.
 */
export function withAddressing(ir: IrProgram): IrProgram {
  if (ir.train.control) return toNoMemory(ir);
  return readsSoft(ir) ? toSoftAttention(ir) : ir;
}

/**
 * Whether the program's addresses are read softly (`--addressing soft`, the `soft` setting): the
 * soft-attention model, whose reads, samples and bounds the lowering computes with soft reads.
 * The one place the setting's name is read.
 */
export function readsSoft(ir: IrProgram): boolean {
  return ir.train.estimator.kind === 'soft';
}

/**
 * The no-memory control of a program (issue #20: "memory helps" measured, not assumed): the same
 * networks, sites and estimator, but every memory's entries are replaced, when the inputs are
 * bound (src/lower/compile.ts), by copies of one learned entry. Nothing of the episode reaches the
 * model or the guide; the memory size and the episodes stay as they are, so the control is scored
 * on the same targets as the memory variants (paired differences). Idempotent.
 */
export function toNoMemory(ir: IrProgram): IrProgram {
  if (ir.noMemory) return ir;
  const taken = new Set<string>([...ir.params.map((p) => p.name), ...ir.data.map((d) => d.name), ...ir.memories.map((m) => m.name), ...ir.nets.map((n) => n.name)]);
  const params = [...ir.params];
  const noMemory: Array<{ memory: string; param: string }> = [];
  for (const m of ir.memories) {
    let param = `${m.name}_control`;
    for (let i = 2; taken.has(param); i++) param = `${m.name}_control${i}`;
    taken.add(param);
    params.push({ name: param, type: { elem: 'real', shape: m.type.shape.slice(1) }, init: { kind: 'zeros' } });
    noMemory.push({ memory: m.name, param });
  }
  return { ...ir, params, noMemory };
}
