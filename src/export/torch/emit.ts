/**
 * `model.py` of `vmm export pytorch`: the checked IR (after the addressing transform) written as a
 * PyTorch module, the way stanc3 writes a Stan program as a C++ class over a fixed runtime
 * (vmm_runtime.py). The generator walks the IR once, as src/lower/trace.ts does on tfjs tensors,
 * and reads the registries for everything it emits: a family's class (`FamilySpec.torch`), an
 * estimator's surrogate (`EstimatorSpec.torch`), a built-in (./builtins.ts) and a net layer
 * (./layers.ts). What has no emission is a problem (VMM3040) naming the construct, never code.
 *
 * Values in the generated trace carry vmm's plates as leading axes: `L = 2` ([K, B], sample then
 * batch) or 3 with an enumerated site ([E, K, B]); data and memories start as [1, ..., B, ...]
 * (size 1 where a value does not depend on a plate); params and constants carry none and
 * broadcast from the right. Which values are "lifted" is known statically, so the code says it.
 */
import { estimatorSpec } from '../../estimators/registry.ts';
import { argValue } from '../../estimators/spec.ts';
import { family } from '../../families/registry.ts';
import { cacheKey } from '../../lower/evaluate.ts';
import { layerParamShapes } from '../../lower/nets.ts';
import { distParams, familyName, type IrDist, type IrExpr, type IrNet, type IrNeural, type IrProgram, type IrStmt, type Size } from '../../ir/types.ts';
import { aligned, TORCH_BUILTINS, type PyValue } from './builtins.ts';
import { emitLayer } from './layers.ts';

/** A construct the exporter cannot emit: what it is and where (a site, net or the train block). */
export interface ExportProblem {
  construct: string;
  /** The name of the site, net, param or `estimator` it belongs to. */
  at: string;
}

/**
 * What each estimator handler (src/lower/handlers.ts' names) asks of the generated trace: an
 * option of rt.Trace, or reads of the address sites with weights: their attention weights
 * (`soft`), or relaxed one-hot draws scored by the family's relaxation (`relaxed`).
 */
const HANDLER_OPTIONS: Record<string, string | undefined> = { enumerate: 'enum', wake: 'wake', soft: 'soft', relaxed: 'relaxed' };

const pyBool = (b: boolean): string => (b ? 'True' : 'False');

const py = (n: number): string => (Number.isInteger(n) ? `${n}.0` : String(n));

class Emitter {
  readonly problems: ExportProblem[] = [];
  private lines: string[] = [];
  private temps = 0;
  /** Net and index results shared by guide and model (vmm's trace cache), by cache key. */
  private cache = new Map<string, PyValue>();
  /** Reads of nets with taps or skip inputs, by the cache key of the read without its tap: the final output and the dict of taps. */
  private portedReads = new Map<string, { out: PyValue; taps: string; lifted: boolean }>();
  /** The `soft` handler: address sites hold attention weights, reads blend every entry (src/lower/evaluate.ts). */
  private softReads = false;
  /** The `relaxed` handler's temperature; the relaxed draw y of each address site, by name. */
  private relaxed: number | undefined;
  private readonly relaxedDraws = new Map<string, string>();
  /** The train block's truncated address proposal (`address = topk(k, tail)`), for the guide's address draws. */
  private truncation: { k: number; tail: number } | undefined;
  /** The written state of each neural memory, by name (Python variable). */
  private neural = new Map<string, string>();
  private readonly addresses: Set<string>;
  private at = '';
  readonly L: number;
  readonly enumSite: string | undefined;

  /** `handlers`: the trace handlers (src/lower/handlers.ts' names) of the trace to write. */
  constructor(
    readonly ir: IrProgram,
    readonly handlers: readonly string[],
  ) {
    const enumerated = handlers.includes('enumerate');
    this.enumSite = enumerated ? ir.model.find((s) => s.stmt === 'site' && s.discrete && family(familyName(s.dist))?.enumerable)?.name : undefined;
    this.L = this.enumSite ? 3 : 2;
    this.addresses = new Set(ir.model.filter((s) => s.stmt === 'site' && s.role === 'address').map((s) => s.name));
  }

  /** An index that is a soft address (its binding: weights [L plates..., M]). */
  private isSoft(e: IrExpr): boolean {
    return this.softReads && e.op === 'ref' && e.ref === 'site' && this.addresses.has(e.name);
  }

  /** `sum_i w_i entries_i` (vmm's blend): w the weights of a soft address, entries [M, ...] after their plates. */
  private blend(w: PyValue, entries: PyValue): string {
    return `rt.blend(${w.code}, ${pyBool(w.lifted)}, ${entries.code}, ${pyBool(entries.lifted)}, ${this.L})`;
  }

  problem(construct: string): void {
    if (!this.problems.some((p) => p.construct === construct && p.at === this.at)) this.problems.push({ construct, at: this.at });
  }

  private temp(hint: string, v: PyValue): PyValue {
    const name = `${hint.replace(/[^A-Za-z0-9_]/g, '_')}_${++this.temps}`;
    this.lines.push(`${name} = ${v.code}`);
    return { ...v, code: name };
  }

  size(s: Size): string {
    const parts = [String(s.c), ...Object.entries(s.terms).filter(([, k]) => k !== 0).map(([sym, k]) => (k === 1 ? sym : `${k} * ${sym}`))];
    const nonzero = parts.filter((p, i) => i > 0 || p !== '0');
    return nonzero.length ? nonzero.join(' + ') : '0';
  }

  expr(e: IrExpr, env: Map<string, PyValue>, lets: Map<string, string>): PyValue {
    const ev = e.type.shape.length;
    const shared = (hint: string, compute: () => PyValue): PyValue => {
      const key = cacheKey(e, lets);
      const hit = key === undefined ? undefined : this.cache.get(key);
      if (hit) return hit;
      const v = this.temp(hint, compute());
      if (key !== undefined) this.cache.set(key, v);
      return v;
    };
    switch (e.op) {
      case 'const':
        return { code: py(e.value), lifted: false, ev: 0 };
      case 'ref': {
        if (e.ref === 'param') return { code: `P['param/${e.name}']`, lifted: false, ev };
        const v = env.get(e.name);
        if (!v) {
          this.problem(`the name '${e.name}' (not bound in the exported trace)`);
          return { code: 'None', lifted: false, ev };
        }
        return v;
      }
      case 'net': {
        const net = this.ir.nets.find((n) => n.name === e.net);
        if (e.tap !== undefined || e.skips?.length || net?.taps?.length) return this.ported(e, env, lets, net?.outShape.length ?? ev);
        return shared(e.net, () => {
          if (e.arg.op === 'index' && this.isSoft(e.arg.index)) {
            // Soft read of g(mem[a]): g on every entry, then the entries blended.
            const table = this.expr(e.arg.target, env, lets);
            const w = this.expr(e.arg.index, env, lets);
            return { code: this.blend(w, { ...table, code: `self.net_${e.net}(${table.code})` }), lifted: true, ev };
          }
          const a = this.expr(e.arg, env, lets);
          return { code: `self.net_${e.net}(${a.code})`, lifted: a.lifted, ev };
        });
      }
      case 'index':
        return shared('read', () => {
          const t = this.expr(e.target, env, lets);
          const i = this.expr(e.index, env, lets);
          if (this.isSoft(e.index)) return { code: this.blend(i, t), lifted: true, ev };
          if (!i.lifted) return { code: `${t.code}[${t.lifted ? `(slice(None),) * ${this.L} + ` : ''}(int(${i.code}),)]`, lifted: t.lifted, ev };
          return { code: `rt.take(${t.code}, ${i.code}, ${this.L}, ${t.lifted ? 'True' : 'False'})`, lifted: true, ev };
        });
      case 'matmul': {
        const l = this.expr(e.left, env, lets);
        const r = this.expr(e.right, env, lets);
        return { code: `rt.matmul(${l.code}, ${l.ev}, ${r.code}, ${r.ev})`, lifted: l.lifted || r.lifted, ev };
      }
      case 'unary': {
        const a = this.expr(e.arg, env, lets);
        return { code: `(-${a.code})`, lifted: a.lifted, ev };
      }
      case 'binary': {
        const l = this.expr(e.left, env, lets);
        const r = this.expr(e.right, env, lets);
        const [x, y] = aligned(l, r, this.L);
        const op = { add: '+', sub: '-', mul: '*', div: '/' }[e.fn];
        return { code: `(${x} ${op} ${y})`, lifted: l.lifted || r.lifted, ev };
      }
      case 'slice': {
        const a = this.expr(e.arg, env, lets);
        return { code: `${a.code}[..., ${e.from}:${e.to}]`, lifted: a.lifted, ev };
      }
      case 'builtin': {
        const emit = TORCH_BUILTINS[e.fn as keyof typeof TORCH_BUILTINS];
        const args = e.args.map((a) => this.expr(a, env, lets));
        if (!emit) {
          this.problem(`the built-in '${e.fn}' (it has no PyTorch emission)`);
          return { code: 'None', lifted: false, ev };
        }
        return { code: emit(args, this.L), lifted: args.some((a) => a.lifted), ev };
      }
      case 'neural_read': {
        const n = e.neural;
        const state = this.neuralState(n, env);
        const q = this.expr(e.arg, env, lets);
        return { code: `rt.neural_read(${state}, ${q.code}, ${pyBool(q.lifted)}, ${this.L}, '${n.activation}')`, lifted: true, ev };
      }
    }
  }

  /**
   * A read of a net with taps or skip inputs (vmm's evalNetOutputs): one call of the net method
   * fills a dict with its taps; the final output and every tap are shared by the reads of the same
   * application (`f(full[a])`, `f(full[a]).s7`). A soft read without skips runs the net on every
   * entry and blends each output.
   */
  private ported(e: IrExpr & { op: 'net' }, env: Map<string, PyValue>, lets: Map<string, string>, outEv: number): PyValue {
    const { tap, ...base } = e;
    const key = cacheKey(base, lets);
    let hit = key === undefined ? undefined : this.portedReads.get(key);
    if (!hit) {
      const taps = `taps_${++this.temps}`;
      this.lines.push(`${taps} = {}`);
      if (!e.skips?.length && e.arg.op === 'index' && this.isSoft(e.arg.index)) {
        const table = this.expr(e.arg.target, env, lets);
        const w = this.expr(e.arg.index, env, lets);
        const all = this.temp(e.net, { code: `self.net_${e.net}(${table.code}, None, ${taps})`, lifted: table.lifted, ev: outEv });
        this.lines.push(`${taps} = {n: ${this.blend(w, { ...table, code: 'v' })} for n, v in ${taps}.items()}`);
        hit = { out: this.temp(e.net, { code: this.blend(w, all), lifted: true, ev: outEv }), taps, lifted: true };
      } else {
        const a = this.expr(e.arg, env, lets);
        const skips = (e.skips ?? []).map((s) => [s.name, this.expr(s.arg, env, lets)] as const);
        const lifted = a.lifted || skips.some(([, v]) => v.lifted);
        const dict = `{${skips.map(([n, v]) => `'${n}': ${v.code}`).join(', ')}}`;
        hit = { out: this.temp(e.net, { code: `self.net_${e.net}(${a.code}, ${dict}, ${taps})`, lifted, ev: outEv }), taps, lifted };
      }
      if (key !== undefined) this.portedReads.set(key, hit);
    }
    return tap === undefined ? hit.out : { code: `${hit.taps}['${tap}']`, lifted: hit.lifted, ev: e.type.shape.length };
  }

  /**
   * The written state of a neural memory (src/lower/neural_memory.ts' writtenMemory), once per
   * trace: the guide and the model read the same written memory.
   */
  private neuralState(n: IrNeural, env: Map<string, PyValue>): string {
    const hit = this.neural.get(n.name);
    if (hit) return hit;
    const mem = env.get(n.memory);
    if (!mem) this.problem(`the memory '${n.memory}' of the neural memory '${n.name}' (not bound)`);
    const entries = this.temp(`${n.name}_entries`, { code: `${mem?.code}.flatten(0, ${this.L - 1})`, lifted: false, ev: 0 });
    const list = (names: string[]) => `[${names.map((w) => `P['param/${w}']`).join(', ')}]`;
    const nets = [n.key, n.value, n.gates].map((net) => `self.net_${net}(${entries.code})`);
    const args = [list(n.weights), list(n.biases), ...nets, py(n.lr), py(n.momentum), py(n.forget ?? 1), `'${n.activation}'`, String(n.chunk), pyBool(n.writeBias ?? true)];
    const state = this.temp(`${n.name}_state`, { code: `rt.neural_write(${args.join(', ')})`, lifted: false, ev: 0 }).code;
    this.neural.set(n.name, state);
    return state;
  }

  /** A distribution as a constructor call of its family's emitted class; lifted when a parameter is. */
  dist(d: IrDist, env: Map<string, PyValue>, lets: Map<string, string>): { code: string; lifted: boolean } {
    const name = familyName(d);
    const spec = family(name);
    if (!spec?.torch) this.problem(`the family ${name} (it has no PyTorch emission)`);
    if (d.kind === 'Categorical' && !d.logits) return { code: `Categorical.uniform(${this.size(d.n)}, dev)`, lifted: false };
    const params = distParams(d).map((p) => this.expr(p, env, lets));
    return { code: `${name}(${params.map((p) => p.code).join(', ')})`, lifted: params.some((p) => p.lifted) };
  }

  private event(shape: Size[]): string {
    return shape.length ? `(${shape.map((s) => this.size(s)).join(', ')},)` : '()';
  }

  private stmts(stmts: IrStmt[], phase: 'guide' | 'model', env: Map<string, PyValue>): void {
    const lets = new Map<string, string>();
    const sites = new Map(this.ir.model.filter((s) => s.stmt === 'site').map((s) => [s.name, s]));
    for (const st of stmts) {
      this.at = st.name;
      if (st.stmt === 'let') {
        this.lines.push(`# let ${st.name}`);
        const v = this.expr(st.value, env, lets);
        const named = v.code.match(/^[A-Za-z_][A-Za-z0-9_]*$/) ? v : this.temp(st.name, v);
        env.set(st.name, named);
        const key = cacheKey(st.value, lets);
        if (key !== undefined) lets.set(st.name, key);
        continue;
      }
      const site = sites.get(st.name)!;
      const { code: d, lifted } = this.dist(st.dist, env, lets);
      const event = this.event(site.type.shape);
      const v = `v_${st.name}`;
      if (this.relaxed !== undefined && site.role === 'address') {
        // The relaxed handler (Gumbel-softmax): the guide draws y = log of a relaxed one-hot, reads
        // are weighted by exp(y), and y is scored by the family's relaxation in guide and model.
        const relax = `Relaxed${familyName(st.dist)}`;
        if (!family(familyName(st.dist))?.relaxation?.torch) this.problem(`the relaxation of ${familyName(st.dist)} (it has no PyTorch emission)`);
        const y = `y_${st.name}`;
        if (phase === 'guide') {
          this.lines.push(`${y} = t.relaxed_guide('${st.name}', ${d}, ${relax}, ${py(this.relaxed)})`);
          this.lines.push(`${v} = torch.exp(${y})`);
          this.relaxedDraws.set(st.name, y);
        } else {
          this.lines.push(`t.relaxed_model('${st.name}', ${d}, ${relax}, ${this.relaxedDraws.get(st.name) ?? 'None'}, ${py(this.relaxed)})`);
        }
        env.set(st.name, { code: v, lifted: true, ev: 1 });
      } else if (this.softReads && site.role === 'address') {
        // The soft handler: the address holds its distribution's weights (in the model, the
        // model's own), no density and no draw.
        this.lines.push(`${v} = rt.soft_weights(${d})`);
        env.set(st.name, { code: v, lifted, ev: 1 });
      } else if (phase === 'guide' && this.truncation && site.role === 'address') {
        // vmm's `truncated` handler (src/lower/handlers.ts): the draw and its density from r(a), not q(a | x).
        this.lines.push(`${v} = t.truncated_guide('${st.name}', ${d}, ${this.truncation.k}, ${this.truncation.tail})`);
        env.set(st.name, { code: v, lifted: true, ev: 0 });
      } else if (phase === 'guide') {
        this.lines.push(`${v} = t.guide('${st.name}', ${d}, ${event})`);
        env.set(st.name, { code: v, lifted: true, ev: site.type.shape.length });
      } else {
        const value = site.role === 'observe' ? env.get(st.name)?.code : `v_${st.name}`;
        this.lines.push(`t.model('${st.name}', ${d}, ${value}, ${event})`);
        if (site.role !== 'observe') env.set(st.name, { code: v, lifted: true, ev: site.type.shape.length });
      }
    }
  }

  /** The body of `trace(self, inputs, K, noise)`. */
  trace(): string[] {
    const ir = this.ir;
    const L = this.L;
    const spec = estimatorSpec(ir.train.estimator.kind);
    this.at = 'estimator';
    // The truncated proposal applies to sampled addresses, in training and in the validation bound
    // alike (src/lower/objective.ts addressHandlers); the checker refuses it with any other estimator.
    if (ir.train.address && !ir.softAttention?.length && this.addresses.size) this.truncation = { k: ir.train.address.k, tail: ir.train.address.tail };
    const options: string[] = [];
    for (const h of this.handlers) {
      const o = HANDLER_OPTIONS[h];
      if (!o) this.problem(`the trace handler '${h}' of estimator ${ir.train.estimator.kind}`);
      else if (o === 'soft') this.softReads = true;
      else if (o === 'relaxed') {
        this.softReads = true;
        this.relaxed = argValue(ir.train.estimator, 'temperature') as number;
      }
      else if (o === 'enum') options.push(`enum_sites=(${this.enumSite ? `'${this.enumSite}',` : ''})`);
      else options.push(`${o}=True`);
    }
    const env = new Map<string, PyValue>();
    const out = this.lines;
    const first = [...ir.data, ...ir.memories][0];
    out.push(`P = self.P`);
    out.push(`B = inputs['${first?.name}'].shape[0]`);
    out.push(`dev = inputs['${first?.name}'].device`);
    const lift = `[${new Array(L - 1).fill('None').join(', ')}]`;
    for (const i of [...ir.data, ...ir.memories]) {
      out.push(`${i.name} = inputs['${i.name}']${lift}  # [${new Array(L - 1).fill('1').join(', ')}, B, ...]`);
      env.set(i.name, { code: i.name, lifted: true, ev: i.type.shape.length });
    }
    // The no-memory control (src/ir/addressing.ts, CompiledModel.inputs): every entry one learned entry.
    for (const { memory, param } of ir.noMemory ?? []) out.push(`${memory} = (torch.zeros_like(inputs['${memory}']) + P['param/${param}'])${lift}  # the no-memory control`);
    // Size symbols bound by the memories' shapes, as sizeBindings does.
    const bound = new Set<string>();
    for (const m of ir.memories) {
      m.type.shape.forEach((s, axis) => {
        const syms = Object.entries(s.terms).filter(([, c]) => c !== 0);
        if (syms.length === 1 && syms[0]![1] === 1 && !bound.has(syms[0]![0])) {
          bound.add(syms[0]![0]);
          out.push(`${syms[0]![0]} = ${m.name}.shape[${L + axis}] - ${s.c}`);
        }
      });
    }
    for (const s of ir.sizeSymbols) if (!bound.has(s)) this.problem(`the size symbol ${s} (no memory binds it)`);
    out.push(`t = rt.Trace(K, B, ${L}, noise${options.length ? `, ${options.join(', ')}` : ''})`);
    out.push('# ---- guide: draw every latent');
    this.stmts(ir.guide.stmts, 'guide', env);
    out.push('# ---- model: score the draws and the observations');
    this.stmts(ir.model, 'model', env);
    if (spec?.make(ir.train.estimator).needsBaselineNet) {
      const data = ir.data[0]!;
      out.push(`t.baseline = self.net___baseline(inputs['${data.name}']).reshape(-1)`);
    }
    out.push('return t');
    return out;
  }
}

/** The Python of one net: a method `net_<name>(self, x)` over leading axes. */
function emitNet(net: IrNet, problems: ExportProblem[]): string[] {
  const ports = [...(net.skips ?? []).map((p) => `skips['${p.name}']: [..., ${p.shape.join(', ')}]`), ...(net.taps ?? []).map((p) => `taps['${p.name}']: [..., ${p.shape.join(', ')}]`)];
  const out = [
    `def net_${net.name}(self, x, skips=None, taps=None):`,
    `    """${net.name}: [..., ${net.inShape.join(', ')}] -> [..., ${net.outShape.join(', ')}]${ports.length ? `; ${ports.join(', ')}` : ''}"""`,
    '    P = self.P',
  ];
  let shape: number[] = [...net.inShape];
  net.layers.forEach((layer, index) => {
    const line = emitLayer(layer, { net: net.name, index, inShape: shape });
    if (line.startsWith('!')) problems.push({ construct: line.slice(1), at: net.name });
    else out.push(`    ${line}`);
    shape = nextShape(layer, shape);
  });
  out.push('    return x');
  return out;
}

function nextShape(layer: IrNet['layers'][number], s: number[]): number[] {
  switch (layer.kind) {
    case 'linear':
      return [...s.slice(0, -1), layer.out];
    case 'slice':
      return [...s.slice(0, -1), layer.to - layer.from];
    case 'reshape':
      return [...layer.shape];
    case 'flatten':
      return [s.reduce((a, n) => a * n, 1)];
    case 'skip':
      return [s[0]! + layer.channels, ...s.slice(1)];
    case 'conv2d':
    case 'deconv2d': {
      const k = layer.kernel;
      const st = layer.stride;
      const f = (n: number) =>
        layer.kind === 'conv2d' ? (layer.padding === 'same' ? Math.ceil(n / st) : Math.floor((n - k) / st) + 1) : layer.padding === 'same' ? n * st : (n - 1) * st + k;
      return [layer.outChannels, f(s[1]!), f(s[2]!)];
    }
    default:
      return s;
  }
}

/** Every variable vmm's CompiledModel makes, with its shape and initialization. */
function variables(ir: IrProgram, nets: IrNet[], problems: ExportProblem[]): string[] {
  const out: string[] = [];
  for (const net of nets) {
    net.layers.forEach((layer, i) => {
      const shapes = layerParamShapes(layer);
      if (!shapes) return;
      const fan =
        layer.kind === 'linear'
          ? [layer.in, layer.out]
          : layer.kind === 'conv2d' || layer.kind === 'deconv2d'
            ? [layer.kernel * layer.kernel * layer.inChannels, layer.kernel * layer.kernel * layer.outChannels]
            : [1, 1];
      const next = net.layers[i + 1];
      const he = next?.kind === 'act' && (next.fn === 'relu' || next.fn === 'elu');
      const limit = he ? Math.sqrt(6 / fan[0]!) : Math.sqrt(6 / (fan[0]! + fan[1]!));
      out.push(`    'net/${net.name}/${i}/w': ((${shapes.w.join(', ')},), ('uniform', ${limit})),`);
      const bias = layer.kind === 'linear' ? (layer.bias ?? 0) : 0;
      out.push(`    'net/${net.name}/${i}/b': ((${shapes.b.join(', ')},), ${bias ? `('constant', ${bias})` : `('zeros', 0)`}),`);
    });
  }
  for (const p of ir.params) {
    if (p.type.shape.some((s) => Object.values(s.terms).some((c) => c !== 0))) {
      problems.push({ construct: `the param '${p.name}' with a symbolic size`, at: p.name });
      continue;
    }
    const shape = p.type.shape.map((s) => s.c);
    const init = p.init.kind === 'normal' ? `('normal', ${p.init.std})` : `('zeros', 0)`;
    out.push(`    'param/${p.name}': ((${shape.join(', ')}${shape.length ? ',' : ''}), ${init}),`);
  }
  return out;
}

export interface EmittedModel {
  /** The text of model.py. */
  source: string;
  problems: ExportProblem[];
}

/** model.py for a program (already through `withAddressing`). */
export function emitModel(ir: IrProgram, opts: { baselineNet?: IrNet } = {}): EmittedModel {
  const settings = ir.train.estimator;
  const spec = estimatorSpec(settings.kind);
  const handlers = spec?.handlers ?? [];
  const e = new Emitter(ir, handlers);
  const traceBody = e.trace();
  const problems = e.problems;
  // vmm's validation bound (src/jobs/train_loop.ts validate) reads addresses softly where the
  // estimator does (soft), else draws every latent and address from the guide (no handler).
  const boundHandlers = spec?.make(settings).discrete === 'soft' ? ['soft'] : [];
  const sameTrace = boundHandlers.join() === handlers.join();
  const bound = sameTrace ? undefined : new Emitter(ir, boundHandlers);
  const boundBody = bound?.trace() ?? [];
  for (const p of bound?.problems ?? []) if (!problems.some((q) => q.construct === p.construct && q.at === p.at)) problems.push(p);
  // The address whose KL from uniform vmm's validation records (src/jobs/summaries.ts addressKl).
  const address = ir.softAttention?.length ? undefined : ir.model.find((st) => st.stmt === 'site' && st.role === 'address')?.name;
  const nets = [...ir.nets, ...(opts.baselineNet ? [opts.baselineNet] : [])];
  const netLines = nets.flatMap((n) => emitNet(n, problems));
  const vars = variables(ir, nets, problems);
  const used = new Set<string>();
  for (const s of [...ir.model, ...ir.guide.stmts]) if (s.stmt === 'site') used.add(familyName(s.dist));
  const familyCode = [...used].map((n) => family(n)?.torch ?? '').filter((c) => c);
  if (spec?.handlers.includes('relaxed')) familyCode.push(...[...used].map((n) => family(n)?.relaxation?.torch ?? '').filter((c) => c));
  if (!spec?.torch) problems.push({ construct: `the estimator ${settings.kind} (it has no PyTorch emission)`, at: 'estimator' });
  const ind = (lines: string[], n: number) => lines.map((l) => (l ? ' '.repeat(n) + l : l));
  const src = [
    `"""${ir.name}, exported from vmm by \`vmm export pytorch\` (generated: do not edit; export again).`,
    '',
    'Model and guide of the .vmm file as one nn.Module whose parameters keep vmm\'s names and layouts',
    '(dense weights [in, out]), so a vmm checkpoint loads as it is; `trace` is one pass of guide then',
    'model with leading axes [K, B] (sample, batch), and `estimate` the surrogate of the file\'s',
    `estimator (${settings.kind}). The runtime is vmm_runtime.py.`,
    '"""',
    'import json',
    'import math',
    '',
    'import torch',
    'import torch.nn.functional as F',
    'from torch import nn',
    '',
    'import vmm_runtime as rt',
    '',
    `NAME = '${ir.name}'`,
    // As JSON read by Python (a JSON `true` is not a Python literal).
    `ESTIMATOR = json.loads(${JSON.stringify(JSON.stringify({ kind: settings.kind, k: settings.k, args: settings.args }))})`,
    `TRAIN = json.loads(${JSON.stringify(JSON.stringify(ir.train))})`,
    `INPUTS = json.loads(${JSON.stringify(JSON.stringify({ data: ir.data.map((d) => d.name), memories: ir.memories.map((m) => m.name) }))})`,
    `# The address whose KL from uniform validation records (None: no hard address).`,
    `ADDRESS = ${address ? `'${address}'` : 'None'}`,
    '',
    '# vmm variable name: (shape, initialization), in the order vmm creates them.',
    'VARIABLES = {',
    ...vars,
    '}',
    '',
    '',
    '# ---- families (from vmm\'s registry, src/families/)',
    '',
    ...familyCode.flatMap((c) => [c, '']),
    '',
    '# ---- the estimator (from vmm\'s registry, src/estimators/)',
    '',
    ...(spec?.torch ? [spec.torch] : []),
    '',
    'class Model(nn.Module):',
    '    def __init__(self, seed=0):',
    '        super().__init__()',
    '        g = torch.Generator().manual_seed(seed)',
    '        # Registered under names torch allows (a neural memory\'s params are `nm.w0`: no dots there).',
    "        self.weights = nn.ParameterDict({n.replace('.', ':'): nn.Parameter(rt.init_param(s, i, g)) for n, (s, i) in VARIABLES.items()})",
    '',
    '    @property',
    '    def P(self):',
    "        # vmm's names -> the parameters, looked up each time (.to(device) may replace them)",
    "        return {n: self.weights[n.replace('.', ':')] for n in VARIABLES}",
    '',
    '    def vmm_parameters(self):',
    '        """The parameters under vmm\'s names (net/<net>/<layer>/w, param/<name>)."""',
    '        return dict(self.P.items())',
    '',
    '    @torch.no_grad()',
    '    def load_vmm(self, tensors):',
    '        """Loads weights saved by vmm (or by train.py) under vmm\'s names and layouts."""',
    '        for n, p in self.P.items():',
    '            if n not in tensors:',
    '                raise KeyError(f"the weights lack {n}")',
    '            t = tensors[n]',
    '            if tuple(t.shape) != tuple(p.shape):',
    '                raise ValueError(f"{n}: shape {tuple(t.shape)} where the model has {tuple(p.shape)}")',
    '            p.copy_(t.to(p.device))',
    '',
    ...ind(netLines, 4),
    '',
    '    def trace(self, inputs, K, noise):',
    '        """One pass of guide then model (vmm\'s runTrace): inputs by name, data [B, ...],',
    '        memories [B, M, ...]; returns the rt.Trace with its log-density terms."""',
    ...ind(traceBody, 8),
    '',
    ...(bound
      ? [
          '    def trace_bound(self, inputs, K, noise):',
          '        """The trace of vmm\'s validation bound: every latent and address drawn from the guide',
          `        (the estimator's ${handlers.map((h) => `'${h}'`).join(', ')} handling is for training only)."""`,
          ...ind(boundBody, 8),
          '',
        ]
      : ['    def trace_bound(self, inputs, K, noise):', '        """The trace of vmm\'s validation bound: the training trace."""', '        return self.trace(inputs, K, noise)', '']),
    '',
    'def forward_estimate(model, inputs, K, noise, state):',
    '    """The estimator\'s result on one batch: surrogate (maximized), bound [B], state."""',
    '    return estimate(model.trace(inputs, K, noise), state, ESTIMATOR[\'args\'])',
    '',
  ].join('\n');
  return { source: src, problems };
}
