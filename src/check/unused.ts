/**
 * Warnings for declarations that do nothing: a const, net, param, let or data input never used
 * (VMM2080), and a memory the model never reads (VMM2081): a memory model that does not read its
 * memory learns to ignore it. Names starting with `_` are exempt.
 */
import type { Ctx, Sym } from './context.ts';

const WORD: Record<string, string> = { const: 'const', net: 'net', param: 'param', let: 'let', data: 'data input' };

export function warnUnused(ctx: Ctx, guideSymbols: Sym[]): void {
  for (const s of [...ctx.symbols.values(), ...guideSymbols]) {
    if (s.name.startsWith('_')) continue;
    if (s.kind === 'memory') {
      if (ctx.modelReads.has(s.name)) continue;
      const msg = s.used
        ? `memory \`${s.name}\` is never read by the model: no model expression reads an entry (\`${s.name}[a]\`) or applies a net to it, so the model ignores its memory`
        : `memory \`${s.name}\` is never used`;
      ctx.warn('VMM2081', msg, s.span);
      continue;
    }
    const word = WORD[s.kind];
    if (!word || s.used) continue;
    const where = s.scope === 'guide' ? ' in the guide' : '';
    ctx.warn('VMM2080', `${word} \`${s.name}\` is never used${where}`, s.span, [{ message: `remove it, or start its name with \`_\` to keep it` }]);
  }
}
