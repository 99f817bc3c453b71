/**
 * The guide q: one site for every latent and address of the model, with the same type. The guide
 * may use data, memories, params, nets, consts, its own lets and the sites it sampled before, but
 * not the model's lets (they may depend on model-only values) nor sites it has not sampled yet.
 */
import type { GuideBlock, GuideSite, Span } from '../ast/types.ts';
import type { ValueType } from '../ir/types.ts';
import type { Ctx, GuideScope, Scope, Sym } from './context.ts';
import { checkDist, matchGuideSupport, matchSupport } from './dists.ts';
import { checkLet } from './sites.ts';
import { formatType } from '../ir/size.ts';
import { didYouMean } from './suggest.ts';
import type { CheckedSite, CheckedStmt } from './types.ts';

export interface GuideResult {
  stmts: CheckedStmt[];
  /** The guide's own names (lets and sites), for unused-let warnings. */
  symbols: Sym[];
}

/** Checks a guide block against the model's latent sites (their symbols carry the model's types). */
export function checkGuide(ctx: Ctx, block: GuideBlock, derived: boolean): GuideResult {
  const modelSites = [...ctx.symbols.values()].filter((s) => s.kind === 'site');
  const all = new Map<string, Span>();
  for (const s of block.body) {
    // Names the guide will define: its lets, and its sites for latents of the model.
    const defines = s.kind === 'Let' || ctx.symbols.get(s.name.name)?.kind === 'site';
    if (defines && !all.has(s.name.name)) all.set(s.name.name, s.name.span);
  }
  const gscope: GuideScope = { defined: new Map(), all };
  const scope: Scope = { where: 'guide', order: Number.MAX_SAFE_INTEGER, guide: gscope, recordReads: false };
  const stmts: CheckedStmt[] = [];
  const symbols: Sym[] = [];
  const sampled = new Map<string, GuideSite>();

  for (const st of block.body) {
    const name = st.name.name;
    const mk = (kind: 'let' | 'site'): Sym => ({ kind, name, span: st.name.span, order: 0, scope: 'guide', used: kind === 'site' });
    if (st.kind === 'Let') {
      const top = ctx.symbols.get(name);
      const prior = gscope.defined.get(name);
      if (prior || (top && top.kind !== 'let')) {
        const first = prior?.span ?? top!.span;
        ctx.error('VMM2003', `\`${name}\` is already declared`, st.name.span, [{ message: `\`${name}\` is first declared here`, span: first }]);
        checkLet(ctx, st, scope, undefined);
        continue;
      }
      gscope.all.delete(name);
      const sym = mk('let');
      const c = checkLet(ctx, st, scope, sym);
      gscope.defined.set(name, sym);
      symbols.push(sym);
      if (c) stmts.push(c);
      continue;
    }
    const site = checkGuideSite(ctx, st, scope, sampled);
    gscope.all.delete(name);
    if (site !== 'skip') {
      const sym = mk('site');
      const top = ctx.symbols.get(name);
      sym.type = top?.type ?? (site ? site.type : undefined);
      gscope.defined.set(name, sym);
      symbols.push(sym);
      if (site) stmts.push(site);
    }
  }

  for (const m of modelSites) {
    if (sampled.has(m.name)) continue;
    ctx.error('VMM2060', `\`${m.name}\` is a latent of the model, but the guide has no site for it`, m.span, [
      {
        message: derived ? 'the derived guide misses it' : `add \`${m.name} ~ ...\` to the guide, with the same type${m.type ? ` (${formatType(m.type)})` : ''}`,
        span: block.span,
      },
    ]);
  }
  return { stmts, symbols };
}

/** One guide site; 'skip' when it names no latent of the model (it then defines nothing). */
function checkGuideSite(ctx: Ctx, st: GuideSite, scope: Scope, sampled: Map<string, GuideSite>): CheckedSite | undefined | 'skip' {
  const name = st.name.name;
  const top = ctx.symbols.get(name);
  const prev = sampled.get(name);
  if (prev) {
    ctx.error('VMM2062', `the guide samples \`${name}\` twice: it needs exactly one site per latent`, st.name.span, [
      { message: `\`${name}\` is first sampled here`, span: prev.name.span },
    ]);
    checkDist(ctx, st.dist, scope);
    return 'skip';
  }
  if (!top || top.kind !== 'site') {
    if (top?.kind === 'data') {
      const what = ctx.observed.has(name) ? `observed by the model (\`observe ${name}\`)` : 'data, given with each example';
      ctx.error('VMM2064', `the guide cannot sample \`${name}\`: it is ${what}, not a latent; the guide samples only latents and addresses`, st.name.span, [
        { message: `\`${name}\` is declared here`, span: top.span },
      ]);
    } else {
      const latents = [...ctx.symbols.values()].filter((s) => s.kind === 'site').map((s) => s.name);
      ctx.error(
        'VMM2061',
        `the guide samples \`${name}\`, but the model has no latent \`${name}\`${didYouMean(name, latents)}`,
        st.name.span,
        top ? [{ message: `\`${name}\` is declared here as something else`, span: top.span }] : [],
      );
    }
    checkDist(ctx, st.dist, scope);
    return 'skip';
  }
  sampled.set(name, st);
  const r = checkDist(ctx, st.dist, scope);
  if (!r || !top.type || !top.role) return undefined;
  const modelType: ValueType = top.type;
  if (!matchSupport(ctx, r, st.dist, modelType, `the guide's \`${name}\` (the model's \`${name}\` is ${formatType(modelType)})`, 'VMM2063', [
    { message: `the model's \`${name}\` is here, with type ${formatType(modelType)}`, span: top.span },
  ])) return undefined;
  if (!matchGuideSupport(ctx, r.dist, top.support, st.dist, name, top.span)) return undefined;
  return { stmt: 'site', name, role: top.role, keywords: [], discrete: r.discrete, dist: r.dist, type: modelType, ast: st };
}
