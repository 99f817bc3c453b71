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
import { family } from '../../families/registry.ts';
import { cacheKey } from '../../lower/evaluate.ts';
import { layerParamShapes } from '../../lower/nets.ts';
import { distParams, familyName, type IrDist, type IrExpr, type IrNet, type IrProgram, type IrStmt, type Size } from '../../ir/types.ts';
import { aligned, TORCH_BUILTINS, type PyValue } from './builtins.ts';
import { emitLayer } from './layers.ts';

/** A construct the exporter cannot emit: what it is and where (a site, net or the train block). */
export interface ExportProblem {
  construct: string;
  /** The name of the site, net, param or `estimator` it belongs to. */
  at: string;
}

/** The trace options each estimator handler asks for (src/lower/handlers.ts' names). */
const HANDLER_OPTIONS: Record<string, string | undefined> = { enumerate: 'enum', wake: 'wake' };

const py = (n: number): string => (Number.isInteger(n) ? `${n}.0` : String(n));

class Emitter {
  readonly problems: ExportProblem[] = [];
  private lines: string[] = [];
  private temps = 0;
  /** Net and index results shared by guide and model (vmm's trace cache), by cache key. */
  private cache = new Map<string, PyValue>();
  private at = '';
  readonly L: number;
  readonly enumSite: string | undefined;

  constructor(readonly ir: IrProgram) {
    const spec = estimatorSpec(ir.train.estimator.kind);
    const enumerated = spec?.handlers.includes('enumerate') ?? false;
    this.enumSite = enumerated ? ir.model.find((s) => s.stmt === 'site' && s.discrete && family(familyName(s.dist))?.enumerable)?.name : undefined;
    this.L = this.enumSite ? 3 : 2;
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
        if (e.tap !== undefined || e.skips?.length) this.problem(`a read of net '${e.net}' with taps or skip inputs`);
        return shared(e.net, () => {
          const a = this.expr(e.arg, env, lets);
          return { code: `self.net_${e.net}(${a.code})`, lifted: a.lifted, ev };
        });
      }
      case 'index':
        return shared('read', () => {
          const t = this.expr(e.target, env, lets);
          const i = this.expr(e.index, env, lets);
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
      case 'neural_read':
        this.problem(`the neural memory '${e.neural.name}' (the Titans write is not exported yet)`);
        return { code: 'None', lifted: true, ev };
    }
  }

  /** A distribution as a constructor call of its family's emitted class. */
  dist(d: IrDist, env: Map<string, PyValue>, lets: Map<string, string>): string {
    const name = familyName(d);
    const spec = family(name);
    if (!spec?.torch) this.problem(`the family ${name} (it has no PyTorch emission)`);
    if (d.kind === 'Categorical' && !d.logits) return `Categorical.uniform(${this.size(d.n)}, dev)`;
    const params = distParams(d).map((p) => this.expr(p, env, lets).code);
    return `${name}(${params.join(', ')})`;
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
      const d = this.dist(st.dist, env, lets);
      const event = this.event(site.type.shape);
      const v = `v_${st.name}`;
      if (phase === 'guide') {
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
    if (ir.softAttention?.length) this.problem('soft addressing (the soft-attention transform)');
    if (ir.noMemory?.length) this.problem('the no-memory control');
    const options: string[] = [];
    for (const h of spec?.handlers ?? []) {
      const o = HANDLER_OPTIONS[h];
      if (!o) this.problem(`the trace handler '${h}' of estimator ${ir.train.estimator.kind}`);
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
  const out = [`def net_${net.name}(self, x):`, `    """${net.name}: [..., ${net.inShape.join(', ')}] -> [..., ${net.outShape.join(', ')}]"""`, '    P = self.P'];
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
    case 'reshape':
      return [...layer.shape];
    case 'flatten':
      return [s.reduce((a, n) => a * n, 1)];
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
      out.push(`    'net/${net.name}/${i}/b': ((${shapes.b.join(', ')},), ('zeros', 0)),`);
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
  const e = new Emitter(ir);
  const traceBody = e.trace();
  const problems = e.problems;
  const nets = [...ir.nets, ...(opts.baselineNet ? [opts.baselineNet] : [])];
  const netLines = nets.flatMap((n) => emitNet(n, problems));
  const vars = variables(ir, nets, problems);
  const used = new Set<string>();
  for (const s of [...ir.model, ...ir.guide.stmts]) if (s.stmt === 'site') used.add(familyName(s.dist));
  const familyCode = [...used].map((n) => family(n)?.torch ?? '').filter((c) => c);
  const settings = ir.train.estimator;
  const spec = estimatorSpec(settings.kind);
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
    'import math',
    '',
    'import torch',
    'import torch.nn.functional as F',
    'from torch import nn',
    '',
    'import vmm_runtime as rt',
    '',
    `NAME = '${ir.name}'`,
    `ESTIMATOR = ${JSON.stringify({ kind: settings.kind, k: settings.k, args: settings.args })}`,
    `TRAIN = ${JSON.stringify(ir.train)}`,
    `INPUTS = ${JSON.stringify({ data: ir.data.map((d) => d.name), memories: ir.memories.map((m) => m.name) })}`,
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
    '        self.P = nn.ParameterDict({n: nn.Parameter(rt.init_param(s, i, g)) for n, (s, i) in VARIABLES.items()})',
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
    '',
    'def forward_estimate(model, inputs, K, noise, state):',
    '    """The estimator\'s result on one batch: surrogate (maximized), bound [B], state."""',
    '    return estimate(model.trace(inputs, K, noise), state, ESTIMATOR[\'args\'])',
    '',
  ].join('\n');
  return { source: src, problems };
}
