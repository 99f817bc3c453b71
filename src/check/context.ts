/**
 * The checker's shared state: diagnostics, the top-level namespace (one per file: consts, sizes,
 * data, memories, params, nets, model lets and sites) and name resolution with "did you mean"
 * suggestions and use-before-declaration checks.
 */
import type { Expr, Program, Span } from '../ast/types.ts';
import { error, warning, type Diagnostic, type DiagnosticNote } from '../diagnostics/diagnostic.ts';
import type { SiteRole, ValueType } from '../ir/types.ts';
import { didYouMean } from './suggest.ts';
import type { CheckedNet, CheckedNeural } from './types.ts';
import { familyNames, type Support } from '../families/registry.ts';
import { builtinNames } from '../ir/builtins.ts';

export type SymKind = 'const' | 'size' | 'data' | 'memory' | 'param' | 'net' | 'neural' | 'let' | 'site';

export interface Sym {
  kind: SymKind;
  name: string;
  /** The span of the name in its declaration. */
  span: Span;
  /** Index of the declaring item in the program (declaration order). */
  order: number;
  /** `guide` for the guide's own lets and sites. */
  scope: 'top' | 'guide';
  used: boolean;
  /** Results of checking the declaration; undefined after an error in it (uses stay silent). */
  value?: number;
  type?: ValueType;
  net?: CheckedNet;
  /** For a neural memory: its checked declaration (src/check/neural.ts). */
  neural?: CheckedNeural;
  /** For memories, params and lets bound to them (or to a `stack` of them): the memory whose entries they are. */
  table?: string;
  role?: SiteRole;
  /** For sites: where the model's distribution puts its values (a guide must agree). */
  support?: Support;
}

export const KIND_WORD: Record<SymKind, string> = {
  const: 'a const',
  size: 'a size symbol',
  data: 'data',
  memory: 'a memory',
  param: 'a param',
  net: 'a net',
  neural: 'a neural memory',
  let: 'a let binding',
  site: 'a random site',
};

/** Where an expression is checked: which names it may see. */
export interface Scope {
  where: 'top' | 'model' | 'guide' | 'train';
  /** Item index of the statement being checked: top-level names declared at or after it are not yet visible. */
  order: number;
  /** In the guide: its lets and sites sampled so far, and every site / let it has (for "used before" messages). */
  guide?: GuideScope;
  /** Record memory reads (false while checking the table argument of `Categorical(mem)`). */
  recordReads: boolean;
}

export interface GuideScope {
  defined: Map<string, Sym>;
  all: Map<string, Span>;
}

/** The built-in functions' names, from their signature table (src/ir/builtins.ts). */
export const BUILTINS: readonly string[] = builtinNames();
/** Distribution family names, from the registry (src/families/registry.ts). */
export const DISTRIBUTIONS: readonly string[] = familyNames();
export const LAYERS = ['linear', 'mlp', 'reshape', 'flatten', 'conv2d', 'deconv2d', 'relu', 'tanh', 'sigmoid', 'elu', 'softplus', 'tap', 'skip', 'slice'] as const;

export class Ctx {
  readonly diags: Diagnostic[] = [];
  /** The top-level namespace; the first declaration of a name wins. */
  readonly symbols = new Map<string, Sym>();
  /** Types of checked expressions, for the guide derivation (which reuses reads like `g(mem[a])`). */
  readonly exprTypes = new WeakMap<Expr, ValueType>();
  /** Memories read by model statements. */
  readonly modelReads = new Set<string>();
  /** Data inputs named by an `observe` site. */
  readonly observed = new Set<string>();
  /**
   * Data inputs read by model statements, each read with the index of its statement's item: one
   * that is also observed makes the model see its target (VMM2056).
   */
  readonly modelDataReads: { name: string; span: Span; order: number }[] = [];

  constructor(readonly program: Program) {}

  error(code: string, message: string, span: Span, notes: DiagnosticNote[] = []): void {
    this.diags.push(error(code, message, span, notes));
  }

  warn(code: string, message: string, span: Span, notes: DiagnosticNote[] = []): void {
    this.diags.push(warning(code, message, span, notes));
  }

  errorCount(): number {
    return this.diags.filter((d) => d.severity === 'error').length;
  }

  /** Names visible from a scope, optionally only some kinds (for suggestions). */
  visibleNames(scope: Scope, kinds?: SymKind[]): string[] {
    const out: string[] = [];
    for (const s of this.symbols.values()) {
      if (kinds && !kinds.includes(s.kind)) continue;
      if (scope.where === 'guide' && (s.kind === 'let' || s.kind === 'site')) continue;
      if ((scope.where === 'model' || scope.where === 'top') && s.order >= scope.order) continue;
      out.push(s.name);
    }
    if (scope.guide && (!kinds || kinds.includes('let') || kinds.includes('site'))) out.push(...scope.guide.defined.keys());
    return out;
  }

  /**
   * Resolves a name used in an expression, reporting unknown names (VMM2001), uses before the
   * declaration (VMM2002) and, in the guide, names it may not see (VMM2065). Undefined after an error.
   */
  resolve(name: string, span: Span, scope: Scope, kinds?: SymKind[], extraCandidates: readonly string[] = []): Sym | undefined {
    if (scope.guide) {
      const g = scope.guide.defined.get(name);
      if (g) {
        g.used = true;
        return g;
      }
      const later = scope.guide.all.get(name);
      if (later && later.start <= span.start) {
        this.error('VMM2065', `\`${name}\` is used in its own guide site: a site cannot depend on itself`, span);
        return undefined;
      }
      if (later) {
        this.error('VMM2065', `\`${name}\` is used before the guide samples it`, span, [
          { message: `the guide samples \`${name}\` here, later; the guide runs in order: move this site up`, span: later },
        ]);
        return undefined;
      }
    }
    const sym = this.symbols.get(name);
    if (!sym) {
      const candidates = [...this.visibleNames(scope, kinds), ...extraCandidates];
      this.error('VMM2001', `unknown name \`${name}\`${didYouMean(name, candidates)}`, span);
      return undefined;
    }
    sym.used = true;
    if (scope.where === 'guide' && (sym.kind === 'let' || sym.kind === 'site')) {
      if (sym.kind === 'let') {
        this.error('VMM2065', `the guide cannot use the model's let \`${name}\``, span, [
          { message: `\`${name}\` is defined in the model here; repeat the definition inside the guide (\`let ${name} = ...\`)`, span: sym.span },
        ]);
      } else {
        this.error('VMM2065', `the guide uses \`${name}\` but does not sample it`, span, [
          { message: `\`${name}\` is a latent of the model; add \`${name} ~ ...\` to the guide before this use`, span: sym.span },
        ]);
      }
      return undefined;
    }
    if ((scope.where === 'model' || scope.where === 'top') && sym.order >= scope.order) {
      const verb = sym.kind === 'site' ? 'sampled' : sym.kind === 'let' ? 'defined' : 'declared';
      this.error('VMM2002', `\`${name}\` is used before it is ${verb}`, span, [
        { message: `\`${name}\` is ${verb} here, later; names must be declared before they are used`, span: sym.span },
      ]);
      return undefined;
    }
    return sym;
  }
}
