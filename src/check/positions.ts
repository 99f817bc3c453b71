/**
 * A position index over a checked (or partly checked) program, for editor tooling (src/lsp/):
 * every declared name with its declaration, its uses and what the checker learnt about it (type
 * and symbolic shape, a const's value, a net's signature), and every expression with its type.
 *
 * It is built from the AST and the checker's state (`checkWithContext`), never by re-parsing or
 * re-checking: names are resolved the way the checker resolves them (one top-level namespace, the
 * first declaration wins; the guide's own lets shadow nothing and are visible after they are
 * defined; a guide site `a ~ ...` is the model's latent `a`). A program with syntax errors is
 * indexed too, as far as the parser recovered it.
 */
import type { Call, Expr, GuideBlock, Ident, Item, Program, SiteStmt, Span, TypeExpr } from '../ast/types.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import type { ValueType } from '../ir/types.ts';
import { checkWithContext } from './check.ts';
import { BUILTINS, DISTRIBUTIONS, LAYERS, type Ctx, type SymKind } from './context.ts';
import type { CheckedNet, CheckedProgram } from './types.ts';

export type IndexedKind = SymKind | 'model';

/** A declared name: where it is declared, where it is used, and what the checker knows about it. */
export interface NameInfo {
  name: string;
  kind: IndexedKind;
  /** `guide` for the guide's own lets. */
  scope: 'top' | 'guide';
  /** The name in its declaration. */
  decl: Span;
  /** The declaring statement. */
  item: Span;
  /** The declaring statement (for sites: the model's site). */
  node?: Item | GuideBlock['body'][number];
  /** Uses of the name (not the declaration); for a model site, also its guide site's name. */
  refs: Span[];
  type?: ValueType;
  value?: number;
  net?: CheckedNet;
  /** For a model latent: its site in the guide (written or derived), if any. */
  guideSite?: GuideBlock['body'][number];
}

/** An expression with the type the checker gave it. */
export interface ExprInfo {
  expr: Expr;
  type?: ValueType;
  /** The enclosing expressions, innermost first. */
  parents: Expr[];
}

/** How a name at a position is used. */
export type IdentRole =
  | { role: 'decl' | 'ref'; info: NameInfo }
  | { role: 'builtin' | 'distribution' | 'layer' | 'argName' | 'settingKey' | 'unknown' };

export interface IdentAt {
  ident: Ident;
  role: IdentRole;
  /** The call this name is the callee of, if any. */
  call?: Call;
}

export interface PositionIndex {
  program: Program;
  names: NameInfo[];
  exprs: ExprInfo[];
  /** Every name in the source with its role, in source order. */
  idents: IdentAt[];
  /** The checked program when the file has no errors. */
  checked?: CheckedProgram;
  /** The checker's diagnostics on this program (empty if it could not be checked). */
  diagnostics: Diagnostic[];
  /** The name covering an offset (its end inclusive, so a cursor just after a name finds it). */
  identAt(offset: number): IdentAt | undefined;
  /** The innermost typed expression covering an offset. */
  exprAt(offset: number): ExprInfo | undefined;
  /** The names visible at an offset (top-level names declared before it, the guide's lets before it). */
  visibleAt(offset: number): NameInfo[];
}

const within = (s: Span, offset: number) => s.start <= offset && offset <= s.end;

/**
 * Checks `program` (which may come from a file with syntax errors) and indexes it. Never throws on
 * user input: if the checker fails on a recovered program, the index has names but no types.
 */
export function indexProgram(program: Program): PositionIndex {
  let ctx: Ctx | undefined;
  let checked: CheckedProgram | undefined;
  let diagnostics: Diagnostic[] = [];
  try {
    const r = checkWithContext(program);
    ctx = r.ctx;
    checked = r.checked;
    diagnostics = r.diagnostics;
  } catch {
    // An internal error of the checker: the editor still gets names and references.
  }
  return new Indexer(program, ctx, checked, diagnostics).build();
}

class Indexer {
  private readonly top = new Map<string, NameInfo>();
  private readonly names: NameInfo[] = [];
  private readonly exprs: ExprInfo[] = [];
  private readonly idents: IdentAt[] = [];

  constructor(
    private readonly program: Program,
    private readonly ctx: Ctx | undefined,
    private readonly checked: CheckedProgram | undefined,
    private readonly diagnostics: Diagnostic[],
  ) {}

  build(): PositionIndex {
    const p = this.program;
    // Declarations first (every name is declared before use, but a use before the declaration is
    // still a reference to it, as the checker's "used before" message says).
    for (const it of p.items) this.declareItem(it);
    for (const it of p.items) this.visitItem(it);
    this.idents.sort((a, b) => a.ident.span.start - b.ident.span.start);
    const { names, exprs, idents, checked, diagnostics } = this;
    return {
      program: p,
      names,
      exprs,
      idents,
      checked,
      diagnostics,
      identAt: (offset) => idents.find((i) => within(i.ident.span, offset)),
      exprAt: (offset) => {
        let best: ExprInfo | undefined;
        for (const e of exprs) {
          if (!within(e.expr.span, offset)) continue;
          if (!best || e.expr.span.end - e.expr.span.start < best.expr.span.end - best.expr.span.start) best = e;
        }
        return best;
      },
      visibleAt: (offset) => {
        const guide = guideOf(p, offset);
        const inTrain = p.items.some((i) => i.kind === 'Train' && within(i.span, offset));
        return names.filter((n) => {
          if (n.kind === 'model') return false;
          // The guide's own lets: in the same guide, defined before the offset.
          if (n.scope === 'guide') return guide !== undefined && within(guide.span, n.item.start) && n.item.end <= offset;
          // The guide sees the declarations and the model's latents (which it samples), not the model's lets.
          if (guide) return n.kind !== 'let';
          if (inTrain) return n.kind === 'const';
          // Elsewhere, names declared before the statement being written.
          return n.item.end <= offset;
        });
      },
    };
  }

  private declare(ident: Ident, kind: IndexedKind, item: Span, node?: NameInfo['node']): NameInfo {
    const sym = this.ctx?.symbols.get(ident.name);
    const own = sym && sym.span.start === ident.span.start && sym.span.end === ident.span.end ? sym : undefined;
    const info: NameInfo = {
      name: ident.name,
      kind,
      scope: 'top',
      decl: ident.span,
      item,
      node,
      refs: [],
      ...(own?.type ? { type: own.type } : {}),
      ...(own?.value !== undefined ? { value: own.value } : {}),
      ...(own?.net ? { net: own.net } : {}),
    };
    this.names.push(info);
    if (kind !== 'model' && !this.top.has(ident.name)) this.top.set(ident.name, info);
    this.idents.push({ ident, role: { role: 'decl', info } });
    return info;
  }

  private declareItem(it: Item): void {
    switch (it.kind) {
      case 'ModelHeader':
        this.declare(it.name, 'model', it.span, it);
        return;
      case 'Const':
        this.declare(it.name, 'const', it.span, it);
        return;
      case 'Size':
        for (const n of it.names) this.declare(n, 'size', it.span, it);
        return;
      case 'Data':
      case 'Memory':
      case 'Param':
      case 'Net':
      case 'Let':
        this.declare(it.name, it.kind.toLowerCase() as SymKind, it.span, it);
        return;
      case 'Site':
        // An observe site names a data input: it is a use of it.
        if (!it.keywords.includes('observe')) this.declare(it.name, 'site', it.span, it);
        return;
      default:
    }
  }

  private visitItem(it: Item): void {
    switch (it.kind) {
      case 'Const':
        this.expr(it.value, []);
        return;
      case 'Data':
      case 'Memory':
        this.typeExpr(it.type);
        return;
      case 'Param':
        this.typeExpr(it.type);
        if (it.init) this.setting(it.init);
        return;
      case 'Net':
        for (const s of it.stages) this.stage(s);
        return;
      case 'Let':
        this.expr(it.value, []);
        return;
      case 'Site':
        if (it.keywords.includes('observe')) this.ref(it.name);
        if (it.type) this.typeExpr(it.type);
        this.dist(it.dist);
        if (!it.keywords.includes('observe')) this.attachGuideSite(it);
        return;
      case 'Guide':
        this.guide(it);
        return;
      case 'Train':
        for (const s of it.settings) {
          this.idents.push({ ident: s.key, role: { role: 'settingKey' } });
          this.setting(s.value);
        }
        return;
      default:
    }
  }

  private attachGuideSite(site: SiteStmt): void {
    const info = this.top.get(site.name.name);
    if (!info || info.decl !== site.name.span) return;
    const block = this.checked?.guide.block ?? this.program.items.find((i): i is GuideBlock => i.kind === 'Guide');
    const g = block?.body.find((s) => s.kind === 'GuideSite' && s.name.name === site.name.name);
    if (g) info.guideSite = g;
  }

  private guide(block: GuideBlock): void {
    const own = new Map<string, NameInfo>();
    for (const st of block.body) {
      if (st.kind === 'Let') {
        this.expr(st.value, [], own);
        if (own.has(st.name.name) || (this.top.has(st.name.name) && this.top.get(st.name.name)!.kind !== 'let')) {
          this.idents.push({ ident: st.name, role: { role: 'unknown' } });
          continue;
        }
        const type = this.ctx?.exprTypes.get(st.value);
        const info: NameInfo = { name: st.name.name, kind: 'let', scope: 'guide', decl: st.name.span, item: st.span, node: st, refs: [], ...(type ? { type } : {}) };
        this.names.push(info);
        own.set(st.name.name, info);
        this.idents.push({ ident: st.name, role: { role: 'decl', info } });
      } else {
        this.dist(st.dist, own);
        this.ref(st.name, own);
      }
    }
  }

  private ref(ident: Ident, own?: Map<string, NameInfo>): void {
    const info = own?.get(ident.name) ?? this.top.get(ident.name);
    if (info) {
      info.refs.push(ident.span);
      this.idents.push({ ident, role: { role: 'ref', info } });
    } else this.idents.push({ ident, role: { role: 'unknown' } });
  }

  private typeExpr(t: TypeExpr): void {
    for (const d of t.dims) this.expr(d, []);
    if (t.card) this.expr(t.card, []);
  }

  private dist(c: Call, own?: Map<string, NameInfo>): void {
    this.callee(c, own);
    for (const a of c.args) {
      if (a.name) this.idents.push({ ident: a.name, role: { role: 'argName' } });
      this.expr(a.value, [], own);
    }
  }

  /** A net stage: a layer call, a bare layer or another net's name. */
  private stage(e: Expr): void {
    if (e.kind === 'Ident') {
      if (this.top.has(e.name)) this.ref(e);
      else this.idents.push({ ident: e, role: { role: (LAYERS as readonly string[]).includes(e.name) ? 'layer' : 'unknown' } });
      return;
    }
    if (e.kind === 'Call') {
      this.callee(e);
      for (const a of e.args) {
        if (a.name) this.idents.push({ ident: a.name, role: { role: 'argName' } });
        this.setting(a.value);
      }
      return;
    }
    this.expr(e, []);
  }

  /** A value in a setting, a layer argument or an initializer: names are consts or words (`same`, `vimco`). */
  private setting(e: Expr): void {
    if (e.kind === 'Ident') {
      if (this.top.has(e.name)) this.expr(e, []);
      else this.idents.push({ ident: e, role: { role: 'unknown' } });
      return;
    }
    if (e.kind === 'Call') {
      if (this.top.has(e.callee.name)) this.callee(e);
      else this.idents.push({ ident: e.callee, role: { role: 'unknown' }, call: e });
      for (const a of e.args) {
        if (a.name) this.idents.push({ ident: a.name, role: { role: 'argName' } });
        this.setting(a.value);
      }
      return;
    }
    this.expr(e, []);
  }

  private callee(c: Call, own?: Map<string, NameInfo>): void {
    const name = c.callee.name;
    const local = own?.get(name) ?? this.top.get(name);
    if (local) {
      local.refs.push(c.callee.span);
      this.idents.push({ ident: c.callee, role: { role: 'ref', info: local }, call: c });
      return;
    }
    const role = (DISTRIBUTIONS as readonly string[]).includes(name)
      ? 'distribution'
      : (BUILTINS as readonly string[]).includes(name)
        ? 'builtin'
        : (LAYERS as readonly string[]).includes(name)
          ? 'layer'
          : 'unknown';
    this.idents.push({ ident: c.callee, role: { role }, call: c });
  }

  private expr(e: Expr, parents: Expr[], own?: Map<string, NameInfo>): void {
    const type = this.ctx?.exprTypes.get(e);
    this.exprs.push({ expr: e, parents, ...(type ? { type } : {}) });
    const inner = [e, ...parents];
    switch (e.kind) {
      case 'Number':
        return;
      case 'Ident':
        this.ref(e, own);
        return;
      case 'Call':
        this.callee(e, own);
        for (const a of e.args) {
          if (a.name) this.idents.push({ ident: a.name, role: { role: 'argName' } });
          this.expr(a.value, inner, own);
        }
        return;
      case 'Index':
        this.expr(e.target, inner, own);
        this.expr(e.index, inner, own);
        return;
      case 'Member':
        this.expr(e.target, inner, own);
        return;
      case 'Unary':
        this.expr(e.operand, inner, own);
        return;
      case 'Binary':
        this.expr(e.left, inner, own);
        this.expr(e.right, inner, own);
        return;
    }
  }
}

function guideOf(p: Program, offset: number): GuideBlock | undefined {
  return p.items.find((i): i is GuideBlock => i.kind === 'Guide' && within(i.span, offset));
}
