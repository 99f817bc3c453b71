/**
 * Model statements: `let`, and the random sites with their keywords. `discrete` promises a
 * Categorical or Bernoulli; `address` a Categorical over the entries of a memory or param (or a
 * `stack` of them); `observe` names a `data` input whose declared type the distribution must give.
 */
import type { LetStmt, SiteStmt } from '../ast/types.ts';
import type { SiteRole, ValueType } from '../ir/types.ts';
import { KIND_WORD, type Ctx, type Scope, type Sym } from './context.ts';
import { evalType } from './consts.ts';
import { ADDRESS_FAMILY, families } from '../families/registry.ts';
import { checkDist, matchSupport, supportOf } from './dists.ts';
import { checkExpr } from './exprs.ts';
import { formatCall } from './format.ts';
import { formatType } from '../ir/size.ts';
import type { CheckedLet, CheckedSite } from './types.ts';

export function checkLet(ctx: Ctx, s: LetStmt, scope: Scope, sym: Sym | undefined): CheckedLet | undefined {
  const t = checkExpr(ctx, s.value, scope);
  if (!t) return undefined;
  if (sym) {
    sym.type = t.type;
    if (t.table) sym.table = t.table;
  }
  return { stmt: 'let', name: s.name.name, value: t.ir, type: t.type, ast: s };
}

const FORMS = ['latent', 'discrete', 'discrete address', 'address', 'observe'];

/** Checks a model site. `sym` is the site's symbol (for latents) so later statements see its type. */
export function checkSite(ctx: Ctx, s: SiteStmt, scope: Scope, sym: Sym | undefined, observed: Map<string, SiteStmt>): CheckedSite | undefined {
  const kw = s.keywords;
  let ok = true;
  if (!FORMS.includes(kw.join(' '))) {
    ctx.error('VMM2050', `\`${kw.join(' ')}\` is not a kind of site: write \`latent\`, \`discrete\`, \`discrete address\` or \`observe\``, s.keywordSpan);
    ok = false;
  }
  const isObserve = kw.includes('observe');
  const isAddress = !isObserve && kw.includes('address');
  const isDiscrete = !isObserve && (isAddress || kw.includes('discrete'));
  const name = s.name.name;

  // The observed data, for `observe`.
  let dataSym: Sym | undefined;
  if (isObserve) {
    const d = ctx.resolve(name, s.name.span, scope, ['data']);
    if (!d) {
      ok = false;
    } else if (d.kind !== 'data') {
      ctx.error('VMM2053', `\`observe\` needs a \`data\` input, but \`${name}\` is ${KIND_WORD[d.kind]}`, s.name.span, [
        { message: `\`${name}\` is declared here; declare the observed value with \`data ${name} : ...\``, span: d.span },
      ]);
      ok = false;
    } else {
      d.used = true;
      dataSym = d;
      const prev = observed.get(name);
      if (prev) {
        ctx.error('VMM2055', `\`${name}\` is observed twice: each data input has one likelihood`, s.name.span, [
          { message: `\`${name}\` is first observed here`, span: prev.name.span },
        ]);
        ok = false;
      } else {
        observed.set(name, s);
        ctx.observed.add(name);
      }
    }
  }

  let declared: ValueType | undefined;
  if (s.type) {
    declared = evalType(ctx, s.type, scope, { allowSymbols: true, what: `\`${name}\`` });
    if (!declared) ok = false;
  }

  const r = checkDist(ctx, s.dist, scope);
  if (!r) return undefined;
  const dname = s.dist.callee.name;
  if (isDiscrete && !r.discrete) {
    ctx.error(
      'VMM2051',
      `\`${name}\` is declared \`discrete\`, but \`${dname}\` is continuous: a discrete site is of a discrete family (${families().filter((f) => f.discrete).map((f) => f.name).join(', ')})${isAddress ? '' : `; for a continuous latent write \`latent ${name} ~ ...\``}`,
      s.dist.callee.span,
      [{ message: '`discrete` written here', span: s.keywordSpan }],
    );
    return undefined;
  }
  if (isAddress) {
    // An address is a Categorical over the entries of a memory by the language's definition.
    if (dname !== ADDRESS_FAMILY) {
      ctx.error('VMM2052', `an address is a \`${ADDRESS_FAMILY}\` over the entries of a memory, e.g. \`${ADDRESS_FAMILY}(mem)\`, not a \`${dname}\``, s.dist.callee.span);
      return undefined;
    }
    if (!r.table) {
      ctx.error(
        'VMM3013',
        `address \`${name}\` must range over the entries of a memory or param (\`Categorical(mem)\` or \`Categorical(stack(mem, slots))\`), but \`${formatCall(s.dist)}\` names none`,
        s.dist.span,
        [{ message: `declare the memory (\`memory mem : binary[M, D]\`) or, for a plain categorical latent, write \`discrete ${name} ~ ${formatCall(s.dist)}\``, span: s.keywordSpan }],
      );
      return undefined;
    }
  }

  let type: ValueType = r.support;
  if (declared) {
    if (matchSupport(ctx, r, s.dist, declared, `\`${name}\`, declared ${formatType(declared)},`, 'VMM2044', [
      { message: `\`${name}\` is declared with type ${formatType(declared)} here`, span: s.type!.span },
    ])) type = declared;
    else ok = false;
  }
  if (isObserve && dataSym) {
    if (!dataSym.type) return undefined;
    if (!matchSupport(ctx, r, s.dist, dataSym.type, `\`${name} : ${formatType(dataSym.type)}\``, 'VMM2054', [
      { message: `\`${name}\` is declared here as ${formatType(dataSym.type)}`, span: dataSym.span },
    ])) return undefined;
    type = dataSym.type;
  }
  if (!ok) return undefined;
  const role: SiteRole = isObserve ? 'observe' : isAddress ? 'address' : 'latent';
  if (sym) {
    sym.type = type;
    sym.role = role;
    sym.support = supportOf(r.dist);
  }
  return { stmt: 'site', name, role, keywords: kw, discrete: r.discrete, dist: r.dist, type, ast: s };
}
