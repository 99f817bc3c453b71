/**
 * `check`: the semantic checker. Runs over the AST in declaration order (every name is declared
 * before it is used): names and scopes (context.ts), consts and symbolic sizes (consts.ts), nets
 * (nets.ts), expressions (exprs.ts), distributions (dists.ts), model sites (sites.ts), the guide
 * and its agreement with the model (guide.ts) or the derived default guide (derive.ts), the train
 * block (train.ts) and unused declarations (unused.ts). Reports every independent error; returns
 * the checked program only when there are none.
 */
import type { Expr, GuideBlock, Ident, Item, ParamDecl, Program, SiteStmt, Span, TrainBlock } from '../ast/types.ts';
import { InternalError, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type { IrParam, ValueType } from '../ir/types.ts';
import { BUILTINS, Ctx, DISTRIBUTIONS, KIND_WORD, LAYERS, type Scope, type SymKind } from './context.ts';
import { evalConst, evalType } from './consts.ts';
import { deriveGuide } from './derive.ts';
import { formatExpr } from './format.ts';
import { checkGuide, type GuideResult } from './guide.ts';
import { checkNet } from './nets.ts';
import { checkNeural } from './neural.ts';
import { checkLet, checkSite } from './sites.ts';
import { concreteShape } from '../ir/size.ts';
import { estimatorMisfits } from '../estimators/registry.ts';
import type { IrProgram } from '../ir/types.ts';
import { bindingProblems } from './inputs.ts';
import { toIr } from './to_ir.ts';
import { checkTrain, truncationProblem } from './train.ts';
import type { CheckedNet, CheckedNeural, CheckedProgram, CheckedStmt } from './types.ts';
import { warnUnused } from './unused.ts';

const RESERVED = new Set<string>([...BUILTINS, ...DISTRIBUTIONS, ...LAYERS]);
const TOP = Number.MAX_SAFE_INTEGER;

/**
 * VMM2056: the model reads data it observes (`observe x ~ ...` and `x` in a model expression), so
 * its density is not a density of that data, and its bound not a bound on log p(x): the model sees
 * its target. (The soft read of the benchmark's spec, `softmax(h(mem) @ h(x)) @ g(mem)` in the
 * model, is one; vmm's own soft attention puts a latent query there instead, src/ir/addressing.ts.)
 */
function warnSeenTargets(ctx: Ctx, observed: ReadonlyMap<string, SiteStmt>): void {
  const warned = new Set<string>();
  for (const { name, span, order } of ctx.modelDataReads) {
    const site = observed.get(name);
    if (!site || warned.has(name)) continue;
    // A read in a let nothing uses reaches no density (VMM2080 says so).
    const item = ctx.program.items[order];
    if (item?.kind === 'Let' && ctx.symbols.get(item.name.name)?.used === false) continue;
    warned.add(name);
    ctx.warn('VMM2056', `the model reads \`${name}\`, which it observes: its bound is then not a bound on log p(${name}) (the model sees its target)`, span, [
      { message: `\`${name}\` is observed here`, span: site.name.span },
      { message: `read \`${name}\` in the guide only; the model may condition on memories and on inputs it does not observe` },
    ]);
  }
}

function declare(ctx: Ctx, kind: SymKind, name: Ident, order: number): void {
  if (RESERVED.has(name.name)) {
    const what = (DISTRIBUTIONS as readonly string[]).includes(name.name)
      ? 'a distribution'
      : (BUILTINS as readonly string[]).includes(name.name)
        ? 'a builtin function'
        : 'a layer';
    ctx.error('VMM2004', `\`${name.name}\` is ${what} and cannot be redeclared; choose another name`, name.span);
    return;
  }
  const prev = ctx.symbols.get(name.name);
  if (prev) {
    ctx.error('VMM2003', `\`${name.name}\` is already declared`, name.span, [
      { message: `\`${name.name}\` is first declared here, as ${KIND_WORD[prev.kind]}`, span: prev.span },
    ]);
    return;
  }
  ctx.symbols.set(name.name, { kind, name: name.name, span: name.span, order, scope: 'top', used: false });
}

/** The symbol an item declared, if it was the first declaration of its name. */
function ownSym(ctx: Ctx, name: Ident, kind: SymKind) {
  const s = ctx.symbols.get(name.name);
  return s && s.span === name.span && s.kind === kind ? s : undefined;
}

export function check(program: Program): { checked?: CheckedProgram; ir?: IrProgram; diagnostics: Diagnostic[] } {
  const { checked, ir, diagnostics } = checkWithContext(program);
  return checked && ir ? { checked, ir, diagnostics } : { diagnostics };
}

/**
 * `check`, also returning the checker's state: the symbols with their types and the type of every
 * checked expression. Editor tooling (src/check/positions.ts) indexes them by source position.
 */
export function checkWithContext(program: Program): { checked?: CheckedProgram; ir?: IrProgram; diagnostics: Diagnostic[]; ctx: Ctx } {
  const ctx = new Ctx(program);
  let modelName: string | undefined;
  let guideBlock: GuideBlock | undefined;
  let trainBlock: TrainBlock | undefined;

  // Pass 1: every declared name, so that uses before the declaration get a precise message.
  program.items.forEach((it, i) => {
    switch (it.kind) {
      case 'ModelHeader':
        modelName ??= it.name.name;
        break;
      case 'Const':
        return declare(ctx, 'const', it.name, i);
      case 'Size':
        for (const n of it.names) declare(ctx, 'size', n, i);
        return;
      case 'Data':
        return declare(ctx, 'data', it.name, i);
      case 'Memory':
        return declare(ctx, 'memory', it.name, i);
      case 'Param':
        return declare(ctx, 'param', it.name, i);
      case 'Net':
        return declare(ctx, 'net', it.name, i);
      case 'Neural':
        return declare(ctx, 'neural', it.name, i);
      case 'Let':
        return declare(ctx, 'let', it.name, i);
      case 'Site':
        if (!it.keywords.includes('observe')) declare(ctx, 'site', it.name, i);
        return;
      case 'Guide':
      case 'Train': {
        const prev = it.kind === 'Guide' ? guideBlock : trainBlock;
        if (prev) {
          const word = it.kind === 'Guide' ? 'guide' : 'train';
          ctx.error('VMM2003', `a second \`${word}\` block: a model has at most one`, headSpan(it.span, word), [
            { message: `the first \`${word}\` block is here`, span: headSpan(prev.span, word) },
          ]);
        } else if (it.kind === 'Guide') guideBlock = it;
        else trainBlock = it;
        return;
      }
    }
  });

  // Pass 2: declarations and model statements, in order.
  const model: CheckedStmt[] = [];
  const nets: CheckedNet[] = [];
  const neural: CheckedNeural[] = [];
  const params: IrParam[] = [];
  const observed = new Map<string, SiteStmt>();
  program.items.forEach((it, i) => {
    const scope: Scope = { where: it.kind === 'Let' || it.kind === 'Site' ? 'model' : 'top', order: i, recordReads: true };
    checkItem(ctx, it, scope, { model, nets, neural, params, observed });
  });

  // The guide: written, or derived when the model checks.
  let guide: GuideResult = { stmts: [], symbols: [] };
  let derived: ReturnType<typeof deriveGuide>;
  if (guideBlock) guide = checkGuide(ctx, guideBlock, false);
  else if (ctx.errorCount() === 0) {
    derived = deriveGuide(ctx, model, { start: program.span.end, end: program.span.end });
    if (derived) {
      const before = ctx.diags.length;
      for (const decl of derived.nets) {
        ctx.symbols.set(decl.name.name, { kind: 'net', name: decl.name.name, span: decl.name.span, order: TOP, scope: 'top', used: true });
        const net = checkNet(ctx, decl, { where: 'top', order: TOP, recordReads: false });
        if (net) {
          net.derived = true;
          ctx.symbols.get(decl.name.name)!.net = net;
          nets.push(net);
        }
      }
      guide = checkGuide(ctx, derived.block, true);
      if (ctx.diags.length > before) {
        throw new InternalError('check', `the derived guide does not check: ${ctx.diags.slice(before).map((d) => `${d.code} ${d.message}`).join('; ')}`);
      }
    }
  }

  const train = checkTrain(ctx, trainBlock, model);
  if (ctx.errorCount() === 0) {
    warnSeenTargets(ctx, observed);
    warnUnused(ctx, guide.symbols);
  }
  if (ctx.errorCount() > 0) return { diagnostics: ctx.diags, ctx };

  const sym = (name: string) => ctx.symbols.get(name)!;
  const byKind = (k: SymKind) => [...ctx.symbols.values()].filter((s) => s.kind === k);
  const checked: CheckedProgram = {
    program,
    name: modelName ?? 'model',
    consts: byKind('const').map((s) => ({ name: s.name, value: s.value! })),
    sizeSymbols: byKind('size').map((s) => s.name),
    data: byKind('data').map((s) => ({ name: s.name, type: s.type!, observed: ctx.observed.has(s.name) })),
    memories: byKind('memory').map((s) => ({ name: s.name, type: sym(s.name).type! })),
    params,
    nets,
    neural,
    model,
    guide: {
      derived: !guideBlock,
      stmts: guide.stmts,
      block: guideBlock ?? derived?.block ?? { kind: 'Guide', body: [], span: { start: 0, end: 0 } },
      derivedNets: derived?.nets ?? [],
      notes: derived?.notes ?? [],
    },
    train: train.train,
    trainExplicit: train.explicit,
  };
  const ir = toIr(checked);
  for (const d of bindingProblems(ir, (name) => ctx.symbols.get(name)?.span, trainBlock?.span ?? program.span, 'warning')) ctx.warn(d.code, d.message, d.span, d.notes);
  reportMisfits(ctx, ir, model, train.estimatorSpan ?? trainBlock?.span ?? program.span, train.kSpan);
  const truncation = truncationProblem(ir);
  if (truncation) {
    const hasAddress = ir.model.some((s) => s.stmt === 'site' && s.role === 'address');
    const est = hasAddress && train.estimatorSpan ? [{ message: 'the estimator is set here', span: train.estimatorSpan }] : [];
    ctx.error('VMM3016', truncation, train.addressSpan ?? trainBlock?.span ?? program.span, est);
  }
  if (ctx.errorCount() > 0) return { diagnostics: ctx.diags, ctx };
  return { checked, ir, diagnostics: ctx.diags, ctx };
}

/** The span of a block's leading keyword (a block's span covers all its lines). */
function headSpan(span: Span, word: string): Span {
  return { start: span.start, end: span.start + word.length };
}

interface Acc {
  model: CheckedStmt[];
  nets: CheckedNet[];
  neural: CheckedNeural[];
  params: IrParam[];
  observed: Map<string, SiteStmt>;
}

function checkItem(ctx: Ctx, it: Item, scope: Scope, acc: Acc): void {
  switch (it.kind) {
    case 'Const': {
      const sym = ownSym(ctx, it.name, 'const');
      const v = evalConst(ctx, it.value, scope, `const \`${it.name.name}\``);
      if (sym && v !== undefined) sym.value = v;
      return;
    }
    case 'Data':
    case 'Memory': {
      const kind = it.kind === 'Data' ? 'data' : 'memory';
      const sym = ownSym(ctx, it.name, kind);
      const t = evalType(ctx, it.type, scope, { allowSymbols: true, what: `\`${it.name.name}\`` });
      if (!t) return;
      if (kind === 'memory' && t.shape.length === 0) {
        ctx.error('VMM2071', `a memory is a table of entries: give \`${it.name.name}\` at least one axis, e.g. \`binary[M, D]\``, it.type.span);
        return;
      }
      if (sym) sym.type = t;
      return;
    }
    case 'Param': {
      const sym = ownSym(ctx, it.name, 'param');
      const p = checkParam(ctx, it, scope);
      if (p && sym) {
        sym.type = p.type;
        acc.params.push(p);
      }
      return;
    }
    case 'Net': {
      const sym = ownSym(ctx, it.name, 'net');
      const net = checkNet(ctx, it, scope);
      if (net && sym) {
        sym.net = net;
        acc.nets.push(net);
      }
      return;
    }
    case 'Neural': {
      const sym = ownSym(ctx, it.name, 'neural');
      const n = checkNeural(ctx, it, scope, acc.params);
      if (n && sym) {
        sym.neural = n;
        acc.neural.push(n);
      }
      return;
    }
    case 'Let': {
      const c = checkLet(ctx, it, scope, ownSym(ctx, it.name, 'let'));
      if (c) acc.model.push(c);
      return;
    }
    case 'Site': {
      const sym = it.keywords.includes('observe') ? undefined : ownSym(ctx, it.name, 'site');
      const c = checkSite(ctx, it, scope, sym, acc.observed);
      if (c) acc.model.push(c);
      return;
    }
    default:
  }
}

function checkParam(ctx: Ctx, p: ParamDecl, scope: Scope): IrParam | undefined {
  const name = p.name.name;
  const t: ValueType | undefined = evalType(ctx, p.type, scope, { allowSymbols: false, what: `the learned param \`${name}\`` });
  let ok = t !== undefined;
  if (t && t.elem !== 'real') {
    ctx.error('VMM2070', `a param is a learned real tensor: declare \`${name}\` as \`real${p.type.dims.length ? `[${p.type.dims.map(formatExpr).join(', ')}]` : ''}\`, not \`${t.elem}\``, p.type.elemSpan);
    ok = false;
  }
  let init: IrParam['init'] = { kind: 'normal', std: 0.01 };
  if (p.init) {
    const r = paramInit(ctx, p.init, scope);
    if (r) init = r;
    else ok = false;
  }
  if (!ok || !t || !concreteShape(t.shape)) return undefined;
  return { name, type: t, init };
}

function paramInit(ctx: Ctx, e: Expr, scope: Scope): IrParam['init'] | undefined {
  const name = e.kind === 'Ident' ? e.name : e.kind === 'Call' ? e.callee.name : undefined;
  const args = e.kind === 'Call' ? e.args : [];
  if (name === 'zeros' && args.length === 0) return { kind: 'zeros' };
  if (name === 'normal' && args.length === 1 && (!args[0]!.name || args[0]!.name.name === 'std')) {
    const std = evalConst(ctx, args[0]!.value, scope, 'the standard deviation');
    if (std === undefined) return undefined;
    if (!(std > 0)) {
      ctx.error('VMM2070', `the standard deviation of \`normal(...)\` must be positive, found ${formatExpr(args[0]!.value)}`, args[0]!.value.span);
      return undefined;
    }
    return { kind: 'normal', std };
  }
  ctx.error('VMM2070', `unknown initializer \`${formatExpr(e)}\`: a param starts as \`normal(0.01)\` (random, with that standard deviation) or \`zeros\``, e.span);
  return undefined;
}

/**
 * The estimator's fit to the model (src/estimators/registry.ts, the one rule the CLI and the
 * library also apply to their overrides), reported at the estimator in `train { }` with notes
 * at the sites it names.
 */
function reportMisfits(ctx: Ctx, ir: IrProgram, model: CheckedStmt[], estimatorAt: Span, kAt: Span | undefined): void {
  const siteSpan = (name: string) => model.find((s) => s.stmt === 'site' && s.name === name)?.ast.name.span;
  for (const m of estimatorMisfits(ir)) {
    const at = m.atK && kAt ? kAt : estimatorAt;
    const notes = m.notes.map((n) => {
      const span = n.site ? siteSpan(n.site) : undefined;
      return span ? { message: n.message, span } : { message: n.message };
    });
    if (m.severity === 'error') ctx.error(m.code, m.message, at, notes);
    else ctx.warn(m.code, m.message, at, notes);
  }
}
