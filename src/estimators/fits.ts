/**
 * The rules by which estimators fit models, shared by their registry entries: which latents need
 * a score-function estimator, soft and relaxed reads replacing addresses that only index memory,
 * the warning for a score-function estimator on a model without a discrete latent.
 */
import type { EstimatorSettings, IrExpr, IrProgram, IrSite, IrStmt } from '../ir/types.ts';
import { family } from '../families/registry.ts';
import { childrenOf, exprsOf } from '../ir/traverse.ts';
import { softAttentionProblem } from '../ir/addressing.ts';
import type { Misfit } from './spec.ts';

function sites(stmts: IrStmt[]): IrSite[] {
  return stmts.filter((s): s is IrSite => s.stmt === 'site');
}

export function latents(ir: IrProgram): IrSite[] {
  return sites(ir.model).filter((s) => s.role !== 'observe');
}

/** Latents whose guide draws have no pathwise gradient (discrete, or a non-reparameterized family). */
export function scoreFunctionSites(ir: IrProgram): IrSite[] {
  const guide = new Map(sites(ir.guide.stmts).map((s) => [s.name, s]));
  return latents(ir).filter((s) => {
    if (s.discrete) return true;
    const d = guide.get(s.name)?.dist;
    return d?.kind === 'family' && family(d.family)?.reparameterized === false;
  });
}

export const names = (xs: IrSite[]) => xs.map((s) => `\`${s.name}\``).join(', ');
export const err = (code: string, message: string, notes: Misfit['notes'] = []): Misfit => ({ code, severity: 'error', message, notes });

/** True if `name` appears other than as the index of a memory read `t[name]`. */
function usedOutsideReads(e: IrExpr, name: string): boolean {
  switch (e.op) {
    case 'ref':
      return e.name === name;
    case 'index':
      return usedOutsideReads(e.target, name) || (e.index.op === 'ref' && e.index.name === name ? false : usedOutsideReads(e.index, name));
    case 'const':
      return false;
    case 'net':
      return usedOutsideReads(e.arg, name) || (e.skips ?? []).some((s) => usedOutsideReads(s.arg, name));
    case 'unary':
    case 'slice':
    case 'neural_read':
      return usedOutsideReads(e.arg, name);
    case 'builtin':
      return e.args.some((a) => usedOutsideReads(a, name));
    case 'matmul':
    case 'binary':
      return usedOutsideReads(e.left, name) || usedOutsideReads(e.right, name);
  }
}


/** The guide sites that the guide's distribution of `name` depends on (through guide lets). */
export function guideSitesIn(ir: IrProgram, name: string): IrSite[] {
  const guideSites = new Map(sites(ir.guide.stmts).map((s) => [s.name, s]));
  const lets = new Map<string, IrExpr>();
  for (const st of ir.guide.stmts) if (st.stmt === 'let') lets.set(st.name, st.value);
  const found = new Set<string>();
  const visit = (e: IrExpr): void => {
    if (e.op === 'ref') {
      if (e.ref === 'site' && guideSites.has(e.name)) found.add(e.name);
      else if (e.ref === 'let' && lets.has(e.name)) visit(lets.get(e.name)!);
      return;
    }
    for (const c of childrenOf(e)) visit(c);
  };
  const site = guideSites.get(name);
  if (site) for (const e of exprsOf([site])) visit(e);
  return latents(ir).filter((s) => found.has(s.name) && s.name !== name);
}


/** Soft and relaxed reads replace addresses that only index memory; other discrete latents stay. */
export function readsOnly(ir: IrProgram, kind: 'soft' | 'relaxed'): Misfit[] {
  const what = kind === 'soft' ? '`soft` attention' : '`relaxed`';
  const lat = latents(ir);
  const addresses = lat.filter((s) => s.role === 'address');
  if (addresses.length === 0) {
    return [err('VMM3011', `${what} replaces the reads \`g(mem[a])\` of an address by a weighted average over entries, but the model has no \`discrete address\``)];
  }
  const others = scoreFunctionSites(ir).filter((s) => s.role !== 'address');
  if (others.length) {
    return [err('VMM3011', `${what} replaces addresses only; the latents ${names(others)} would still need a score-function estimator`, [{ message: 'declared here', site: others[0]!.name }])];
  }
  for (const a of addresses) {
    for (const e of exprsOf([...ir.model, ...ir.guide.stmts])) {
      if (usedOutsideReads(e, a.name)) {
        return [err('VMM3011', `${what} needs the address \`${a.name}\` to be used only to read entries (as \`mem[${a.name}]\`)`, [{ message: 'declared here', site: a.name }])];
      }
    }
    const p = kind === 'soft' && !ir.softAttention ? softAttentionProblem(ir, a.name) : undefined;
    if (p) return [err('VMM3011', p.message, [{ message: 'the address is declared here', site: p.site }])];
  }
  return [];
}

/** For score-function estimators on a model without any site that needs one. */
export function pointless(ir: IrProgram, s: EstimatorSettings): Misfit[] {
  if (scoreFunctionSites(ir).length) return [];
  return [
    {
      code: 'VMM3014',
      severity: 'warning',
      message: `\`${s.kind}\` is meant for discrete latents, but every latent of this model is continuous (reparameterized): \`iwae(k: ${Math.max(s.k, 1)})\` computes the same bound with less variance`,
      notes: [],
    },
  ];
}
