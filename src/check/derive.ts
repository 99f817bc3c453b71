/**
 * The default guide, derived when the file has no `guide { }` (grammar/README.md, "Guide"):
 * - an address `a` over a table T (a memory, param or `stack` of them) gets
 *   `Categorical(logits: qa_h(T) @ qa_h(x))`, a learned similarity between an embedding of every
 *   entry and of the observed data (Bornschein et al. 2017, arXiv:1709.07116: q(a | x) = softmax_i h(x)·h(m_i));
 * - a continuous latent `z : real[n]` gets `Normal(q_z(concat(x, reads...)))` with an MLP to 2n,
 *   from the observed data and the reads `g(T[a])` of the addresses sampled before it (the read
 *   the model itself makes, else the raw entry `T[a]`);
 * - any other discrete latent gets Categorical / Bernoulli logits from an MLP of the data.
 * The guide is produced as AST (so `--explain` prints it as .vmm) and then checked like a written one.
 */
import type { Arg, Call, Expr, GuideBlock, GuideSite, Ident, NetDecl, NumberLit, Span } from '../ast/types.ts';
import type { ValueType } from '../ir/types.ts';
import { ADDRESS_FAMILY, family, GAUSSIAN } from '../families/registry.ts';
import type { Ctx } from './context.ts';
import { formatExpr } from './format.ts';
import { concreteShape, formatType } from '../ir/size.ts';
import { checkedFamily, type CheckedSite, type CheckedStmt, type DerivedSiteNote } from './types.ts';

const HIDDEN = 256;
const EMBED = 128;

export interface DerivedGuide {
  block: GuideBlock;
  nets: NetDecl[];
  notes: DerivedSiteNote[];
}

const ident = (name: string, span: Span): Ident => ({ kind: 'Ident', name, span });
const num = (value: number, span: Span, text = String(value)): NumberLit => ({ kind: 'Number', value, text, span });
const arg = (value: Expr, name?: string): Arg => (name ? { name: ident(name, value.span), value, span: value.span } : { value, span: value.span });
const call = (callee: string, args: Arg[], span: Span): Call => ({ kind: 'Call', callee: ident(callee, span), args, span });
const apply = (net: string, x: Expr): Call => call(net, [arg(x)], x.span);

/** Replaces references to model lets by their definitions (the guide cannot see model lets). */
function inlineLets(e: Expr, lets: Map<string, Expr>): Expr {
  switch (e.kind) {
    case 'Ident': {
      const v = lets.get(e.name);
      return v ? inlineLets(v, lets) : e;
    }
    case 'Number':
      return e;
    case 'Call':
      return { ...e, args: e.args.map((a) => ({ ...a, value: inlineLets(a.value, lets) })) };
    case 'Index':
      return { ...e, target: inlineLets(e.target, lets), index: inlineLets(e.index, lets) };
    case 'Member':
      return { ...e, target: inlineLets(e.target, lets) };
    case 'Binary':
      return { ...e, left: inlineLets(e.left, lets), right: inlineLets(e.right, lets) };
    case 'Unary':
      return { ...e, operand: inlineLets(e.operand, lets) };
  }
}

function* subExprs(e: Expr): Generator<Expr> {
  yield e;
  switch (e.kind) {
    case 'Call':
      for (const a of e.args) yield* subExprs(a.value);
      break;
    case 'Index':
      yield* subExprs(e.target);
      yield* subExprs(e.index);
      break;
    case 'Member':
      yield* subExprs(e.target);
      break;
    case 'Binary':
      yield* subExprs(e.left);
      yield* subExprs(e.right);
      break;
    case 'Unary':
      yield* subExprs(e.operand);
      break;
    default:
  }
}

/** Derives the guide, or reports VMM2066 and returns undefined. */
export function deriveGuide(ctx: Ctx, model: CheckedStmt[], blockSpan: Span): DerivedGuide | undefined {
  const sites = model.filter((s): s is CheckedSite => s.stmt === 'site');
  const latents = sites.filter((s) => s.role !== 'observe');
  const lets = new Map<string, Expr>();
  const modelExprs: Expr[] = [];
  for (const s of model) {
    if (s.stmt === 'let') {
      lets.set(s.name, s.ast.value);
      modelExprs.push(s.ast.value);
    } else if (s.ast.kind === 'Site') for (const a of s.ast.dist.args) modelExprs.push(a.value);
  }
  const nets: NetDecl[] = [];
  const notes: DerivedSiteNote[] = [];
  const body: GuideSite[] = [];
  const taken = new Set<string>();
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 2; ctx.symbols.has(name) || taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  const mlp = (sizes: number[], span: Span, base: string): string => {
    const name = fresh(base);
    nets.push({ kind: 'Net', name: ident(name, span), stages: [call('mlp', sizes.map((n) => arg(num(n, span))), span)], span });
    return name;
  };
  const fail = (site: CheckedSite, why: string): undefined => {
    ctx.error('VMM2066', `cannot derive a guide for \`${site.name}\`: ${why}; write a \`guide { }\` block`, site.ast.name.span);
    return undefined;
  };

  // The observed data the guide conditions on: vectors of known size.
  const inputs: { expr: Ident; size: number }[] = [];
  const skipped: string[] = [];
  for (const s of sites) {
    if (s.role !== 'observe') continue;
    const dims = concreteShape(s.type.shape);
    if (s.type.elem !== 'cat' && s.type.elem !== 'int' && dims && dims.length === 1) inputs.push({ expr: ident(s.name, s.ast.name.span), size: dims[0]! });
    else skipped.push(`\`${s.name} : ${formatType(s.type)}\``);
  }
  if (latents.length === 0) return { block: { kind: 'Guide', body: [], span: blockSpan }, nets, notes };
  if (inputs.length === 0) {
    const why = skipped.length
      ? `the derived guide conditions on observed vectors of constant size, and the model observes only ${skipped.join(', ')}`
      : 'the model observes no data to condition on';
    return fail(latents[0]!, why);
  }
  const dataSize = inputs.reduce((n, i) => n + i.size, 0);
  const dataExpr = (span: Span): Expr =>
    inputs.length === 1 ? ident(inputs[0]!.expr.name, span) : call('concat', inputs.map((i) => arg(ident(i.expr.name, span))), span);
  const dataText = formatExpr(dataExpr(blockSpan));
  const skippedText = skipped.length ? ` (${skipped.join(', ')} not used: not a vector of constant size)` : '';

  const addresses: { site: CheckedSite; table: Expr; read: Expr; readSize: number; readText: string }[] = [];
  for (const site of latents) {
    const span = site.ast.name.span;
    const d = site.dist;
    // What guide a latent gets is its family's entry's `guide`; an address (a concept of the
    // language) gets the embedding guide over the entries it ranges over.
    const spec = family(checkedFamily(d))!;
    let dist: Call;
    if (site.role === 'address' && d.kind === 'Categorical' && d.form === 'uniform' && d.table && site.ast.kind === 'Site') {
      const table = inlineLets(site.ast.dist.args[0]!.value, lets);
      const tableType = d.table.type;
      const entry = concreteShape(tableType.shape.slice(1));
      if (!entry || entry.length !== 1) {
        return fail(site, `the entries of \`${formatExpr(table)}\` : ${formatType(tableType)} are not vectors of constant size, which the derived embedding needs`);
      }
      const h = mlp([entry[0]!, HIDDEN, EMBED], span, `q${site.name}_h`);
      const hx = entry[0] === dataSize ? h : mlp([dataSize, HIDDEN, EMBED], span, `q${site.name}_hx`);
      const logits: Expr = { kind: 'Binary', op: '@', left: apply(h, table), right: apply(hx, dataExpr(span)), span };
      dist = call(ADDRESS_FAMILY, [arg(logits, 'logits')], span);
      notes.push({
        site: site.name,
        reason:
          hx === h
            ? `address over \`${formatExpr(table)}\`: q(${site.name} | ${dataText}) = softmax over the entries of ${h}(entry) · ${h}(${dataText}), one learned embedding (mlp ${entry[0]}-${HIDDEN}-${EMBED}) for entries and data`
            : `address over \`${formatExpr(table)}\`: q(${site.name} | ${dataText}) = softmax over the entries of ${h}(entry) · ${hx}(${dataText}); entries (${entry[0]}) and data (${dataSize}) differ in size, so each has its own embedding to ${EMBED}`,
      });
      // The read the model makes of this address: `g(T[a])` if some expression has that form, else `T[a]`.
      const tableText = formatExpr(table);
      let read: Expr = { kind: 'Index', target: table, index: ident(site.name, span), span };
      let readSize = entry[0]!;
      let readText = `the raw entry \`${formatExpr(read)}\` (the model applies no net to it)`;
      for (const e of modelExprs) {
        const found = [...subExprs(e)].find(
          (x): x is Call =>
            x.kind === 'Call' &&
            ctx.symbols.get(x.callee.name)?.kind === 'net' &&
            x.args.length === 1 &&
            x.args[0]!.value.kind === 'Index' &&
            x.args[0]!.value.index.kind === 'Ident' &&
            x.args[0]!.value.index.name === site.name &&
            formatExpr(inlineLets(x.args[0]!.value.target, lets)) === tableText,
        );
        const t: ValueType | undefined = found && ctx.exprTypes.get(found);
        const dims = t && concreteShape(t.shape);
        if (found && dims && dims.length === 1) {
          read = inlineLets(found, lets);
          readSize = dims[0]!;
          readText = `the model's read \`${formatExpr(read)}\``;
          break;
        }
      }
      addresses.push({ site, table, read, readSize, readText });
    } else if (spec.guide === 'own') {
      // A latent of a constrained family (Beta on (0, 1)): a guide of the same family, one MLP per
      // parameter, each mapped into its parameter's domain (softplus + 1e-4 for positive ones).
      const dims = concreteShape(site.type.shape);
      if (!dims || dims.length > 1) return fail(site, `its type ${formatType(site.type)} is not a vector of constant size`);
      const out = dims[0] ?? 1;
      const params: Arg[] = spec.params.map((p) => {
        const q = mlp([dataSize, HIDDEN, out], span, `q_${site.name}_${p.name}`);
        let e: Expr = dims.length ? apply(q, dataExpr(span)) : call('sum', [arg(apply(q, dataExpr(span)))], span);
        if (p.constraint === 'positive') e = { kind: 'Binary', op: '+', left: call('softplus', [arg(e)], span), right: num(1e-4, span, '1e-4'), span };
        else if (p.constraint === 'unit') e = call('sigmoid', [arg(e)], span);
        return arg(e, p.name);
      });
      dist = call(spec.name, params, span);
      notes.push({ site: site.name, reason: `${spec.name} latent: a ${spec.name} guide whose ${spec.params.map((p) => p.name).join(' and ')} come from MLPs (${dataSize}-${HIDDEN}-${out}) of the observed ${dataText}` });
    } else if (spec.guide === 'gaussian' && site.type.elem === 'real') {
      const dims = concreteShape(site.type.shape);
      if (!dims || dims.length > 1) return fail(site, `its type ${formatType(site.type)} is not a vector of constant size`);
      const parts: Expr[] = [...inputs.map((i) => ident(i.expr.name, span)), ...addresses.map((a) => a.read)];
      const inSize = dataSize + addresses.reduce((n, a) => n + a.readSize, 0);
      const input = parts.length === 1 ? parts[0]! : call('concat', parts.map((p) => arg(p)), span);
      const from = addresses.length ? ` and ${addresses.map((a) => a.readText).join(', ')} of address${addresses.length > 1 ? 'es' : ''} ${addresses.map((a) => `\`${a.site.name}\``).join(', ')}` : '';
      if (dims.length === 1) {
        const q = mlp([inSize, HIDDEN, 2 * dims[0]!], span, `q_${site.name}`);
        dist = call(GAUSSIAN, [arg(apply(q, input))], span);
        notes.push({ site: site.name, reason: `continuous latent: a Gaussian whose mean and scale come from ${q} (mlp ${inSize}-${HIDDEN}-${2 * dims[0]!}) of the observed ${dataText}${from}${skippedText}` });
      } else {
        const q = mlp([inSize, HIDDEN, 1], span, `q_${site.name}`);
        const qs = mlp([inSize, HIDDEN, 1], span, `q_${site.name}_scale`);
        const scale: Expr = { kind: 'Binary', op: '+', left: call('softplus', [arg(call('sum', [arg(apply(qs, input))], span))], span), right: num(1e-4, span, '1e-4'), span };
        dist = call(GAUSSIAN, [arg(call('sum', [arg(apply(q, input))], span)), arg(scale)], span);
        notes.push({ site: site.name, reason: `scalar continuous latent: a Gaussian with mean ${q} and scale softplus(${qs}) + 1e-4 (mlps ${inSize}-${HIDDEN}-1) of the observed ${dataText}${from}` });
      }
    } else if (spec.guide === 'logits' && spec.enumerable && site.type.elem === 'cat') {
      const card = site.type.card && concreteShape([site.type.card]);
      if (!card) {
        const hint = d.kind === 'Categorical' && d.form === 'uniform' && d.memory ? ` (if it addresses the entries of \`${d.memory}\`, declare it \`discrete address ${site.name}\`)` : '';
        return fail(site, `its number of categories ${site.type.card ? formatType(site.type) : ''} is not a constant${hint}`);
      }
      const q = mlp([dataSize, HIDDEN, card[0]!], span, `q_${site.name}`);
      dist = call(spec.name, [arg(apply(q, dataExpr(span)), spec.params[0]!.name)], span);
      notes.push({ site: site.name, reason: `discrete latent: ${spec.name} logits from ${q} (mlp ${dataSize}-${HIDDEN}-${card[0]}) of the observed ${dataText}` });
    } else if (spec.guide === 'logits') {
      const dims = concreteShape(site.type.shape);
      if (!dims || dims.length > 1) return fail(site, `its type ${formatType(site.type)} is not a vector of constant size`);
      const q = mlp([dataSize, HIDDEN, dims[0] ?? 1], span, `q_${site.name}`);
      const logits: Expr = dims.length ? apply(q, dataExpr(span)) : call('sum', [arg(apply(q, dataExpr(span)))], span);
      dist = call(spec.name, [arg(logits, spec.params[0]!.name)], span);
      notes.push({ site: site.name, reason: `${site.type.elem} latent: ${spec.name} logits from ${q} (mlp ${dataSize}-${HIDDEN}-${dims[0] ?? 1}) of the observed ${dataText}` });
    } else {
      return fail(site, `no default guide for values of type ${formatType(site.type)}`);
    }
    body.push({ kind: 'GuideSite', name: ident(site.name, span), dist, span });
  }
  return { block: { kind: 'Guide', body, span: blockSpan }, nets, notes };
}
