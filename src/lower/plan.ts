/**
 * The lowered plan in words: for each site how it is drawn (sampled, reparameterized,
 * enumerated, soft, relaxed), which estimator handles its gradient, and the objective. `vmm compile`
 * prints it. What an estimator does differently from the defaults here is its registry entry's
 * `plan` text (src/estimators/spec.ts), as is whether it applies to a model.
 */
import { estimatorSpec, filledSettings } from '../estimators/registry.ts';
import { printEstimator, printExpr } from '../ir/print.ts';
import { childrenOf, exprsOf } from '../ir/traverse.ts';
import { foldableLayer } from './nets.ts';
import type { IrExpr, IrProgram, IrSite, IrStmt, Size } from '../ir/types.ts';

export function formatSize(s: Size): string {
  const parts: string[] = [];
  for (const [sym, c] of Object.entries(s.terms)) {
    if (c === 0) continue;
    parts.push(c === 1 ? sym : `${c}*${sym}`);
  }
  if (s.c !== 0 || parts.length === 0) parts.push(String(s.c));
  return parts.join(' + ');
}

function formatType(site: { type: IrSite['type'] }): string {
  const t = site.type;
  if (t.elem === 'cat') return `cat(${t.card ? formatSize(t.card) : '?'})`;
  return t.shape.length ? `${t.elem}[${t.shape.map(formatSize).join(', ')}]` : t.elem;
}

function sites(stmts: IrStmt[]): IrSite[] {
  return stmts.filter((s): s is IrSite => s.stmt === 'site');
}

export function describePlan(ir: IrProgram): string {
  const est = filledSettings(ir.train.estimator);
  const plan = estimatorSpec(est.kind)?.plan ?? {};
  const K = est.k;
  const lines: string[] = [];
  lines.push(`${ir.name}: lowered for ${printEstimator(est)}, optimizer ${ir.train.optimizer.kind}(lr: ${ir.train.optimizer.lr}), batch ${ir.train.batch}`);
  lines.push('');
  lines.push('inputs (plates: batch = examples of a minibatch, sample = the K draws):');
  for (const d of ir.data) lines.push(`  ${d.name.padEnd(10)} data    ${formatType(d).padEnd(22)} [batch]`);
  for (const m of ir.memories) lines.push(`  ${m.name.padEnd(10)} memory  ${formatType(m).padEnd(22)} [batch] one memory per episode, or [] when shared by the batch`);
  for (const p of ir.params) lines.push(`  ${p.name.padEnd(10)} param   ${formatType(p).padEnd(22)} []  learned`);
  lines.push('');
  lines.push(`sites (the guide draws, the model scores):`);
  const guideByName = new Map(sites(ir.guide.stmts).map((s) => [s.name, s]));
  for (const s of sites(ir.model)) {
    let how: string;
    if (s.role === 'observe') how = 'observed: log p scored';
    else {
      const own = plan.site?.(est, s);
      if (own !== undefined) how = own;
      else if (s.discrete) how = `sampled K=${K} per example from q; ${plan.signal?.(est) ?? 'no gradient to q (iwae treats it as a constant)'}`;
      else how = `reparameterized K=${K}: loc + scale * eps; pathwise gradient`;
    }
    const g = guideByName.get(s.name);
    const src = s.role === 'observe' ? '' : g ? (ir.guide.derived ? ' (derived guide)' : '') : '';
    lines.push(`  ${s.name.padEnd(10)} ${s.role.padEnd(8)} ${formatType(s).padEnd(18)} ${how}${src}`);
  }
  const addresses = sites(ir.model).filter((s) => s.role === 'address');
  if (addresses.length) {
    lines.push('');
    lines.push('memory reads:');
    for (const read of collectReads(ir)) {
      const cost = plan.reads ?? `runs on the K=${K} sampled entries only`;
      lines.push(`  ${read.padEnd(24)} ${cost}`);
    }
  }
  const folds = collectFolds(ir);
  if (folds.length) {
    lines.push('');
    lines.push('folded where that saves work at the run\'s sizes (src/lower/fold.ts; VMM_FOLD=0 turns it off):');
    for (const [read, how] of folds) lines.push(`  ${read.padEnd(24)} ${how}`);
  }
  lines.push('');
  lines.push('objective:');
  if (plan.objective) lines.push(...plan.objective(est, ir.memories.length > 0).map((l) => `  ${l}`));
  else {
    lines.push(`  L = log (1/K) sum_k p(x, latents_k) / q(latents_k | x)    K=${K}; a lower bound on log p(x${ir.memories.length ? ' | memory' : ''})`);
    const surrogate = plan.surrogate?.(est);
    if (surrogate) lines.push(`  ${surrogate}`);
  }
  lines.push('');
  lines.push('parameters:');
  let total = 0;
  for (const n of ir.nets) {
    total += n.paramCount;
    lines.push(`  net ${n.name.padEnd(10)} [${n.inShape.join(', ')}] -> [${n.outShape.join(', ')}]  ${n.paramCount.toLocaleString('en-US')} parameters`);
  }
  for (const p of ir.params) {
    const count = p.type.shape.reduce((a, s) => a * (Object.keys(s.terms).length ? NaN : s.c), 1);
    total += count;
    lines.push(`  param ${p.name.padEnd(8)} ${count.toLocaleString('en-US')} parameters`);
  }
  lines.push(`  total ${total.toLocaleString('en-US')}`);
  return lines.join('\n') + '\n';
}

/**
 * The products the lowering may fold through a net's linear last layer (fold.ts): `f(E) @ u`,
 * `w @ f(E)` and, under soft attention, the reads `f(mem[a])`; each with what the fold does.
 */
function collectFolds(ir: IrProgram): [string, string][] {
  const nets = new Map(ir.nets.map((n) => [n.name, n]));
  const soft = new Set(ir.softAttention?.map((s) => s.address) ?? []);
  const out = new Map<string, string>();
  // An MLP has no taps or skips: foldableLayer is all a fold needs of the net.
  const fold = (e: IrExpr, where: string): string | undefined => {
    if (e.op !== 'net' || e.tap !== undefined || e.skips?.length) return undefined;
    const last = foldableLayer(nets.get(e.net)!);
    return last && `${e.net}'s last layer (${last.in} -> ${last.out}) on ${where}, not on every entry`;
  };
  const visit = (e: IrExpr): void => {
    if (e.op === 'matmul') {
      const [l, r] = [e.left.type.shape.length, e.right.type.shape.length];
      const how = l === 2 && r === 1 ? fold(e.left, 'the query') : l === 1 && r === 2 ? fold(e.right, 'the weighted sum') : undefined;
      if (how) out.set(`${printExpr(e.left)} @ ${printExpr(e.right)}`, how);
    }
    if (e.op === 'net' && e.arg.op === 'index' && e.arg.index.op === 'ref' && soft.has(e.arg.index.name)) {
      const how = fold(e, 'the blended row');
      if (how) out.set(printExpr(e), how);
    }
    childrenOf(e).forEach(visit);
  };
  for (const e of exprsOf([...ir.model, ...ir.guide.stmts])) visit(e);
  return [...out];
}

/** The distinct memory reads `f(mem[a])` / `mem[a]` of the program, printed. */
function collectReads(ir: IrProgram): string[] {
  const addr = new Set(sites(ir.model).filter((s) => s.role === 'address').map((s) => s.name));
  const out = new Set<string>();
  const visit = (e: IrExpr, parentNet?: string): void => {
    if (e.op === 'index' && e.index.op === 'ref' && addr.has(e.index.name)) {
      const t = e.target.op === 'ref' ? e.target.name : '(...)';
      out.add(parentNet ? `${parentNet}(${t}[${e.index.name}])` : `${t}[${e.index.name}]`);
      return;
    }
    switch (e.op) {
      case 'net':
        visit(e.arg, e.net); // a tap read `g(mem[a]).s14` is the same read as `g(mem[a])`
        for (const s of e.skips ?? []) visit(s.arg);
        return;
      case 'index':
        visit(e.target);
        visit(e.index);
        return;
      case 'unary':
      case 'slice':
      case 'neural_read':
        visit(e.arg);
        return;
      case 'builtin':
        e.args.forEach((a) => visit(a));
        return;
      case 'matmul':
      case 'binary':
        visit(e.left);
        visit(e.right);
        return;
      default:
        return;
    }
  };
  for (const e of exprsOf([...ir.model, ...ir.guide.stmts])) visit(e);
  return [...out];
}
