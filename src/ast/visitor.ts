/**
 * CST -> AST: `toAst` turns the parser's concrete syntax tree (grammar/parser.ts) into the
 * `Program` of ./types.ts, with a span on every node and the lexer's comments attached to
 * statements (`leading` / `trailing`), so the printer can keep them.
 *
 * It also narrows the parser's super grammar where the narrowing is positional:
 * a statement in a place it is not allowed (`observe` inside `guide`, `latent` inside `train`,
 * a bare `a ~ DIST` outside `guide`, a `key = value` outside `train`, a `model` header that is not
 * first) is reported as VMM1004 and left out of the AST.
 *
 * After a syntax error the parser hands over partial CST nodes (tokens missing or inserted by
 * recovery, with NaN offsets). The builder never trusts the generated CST types to be complete:
 * a statement whose required parts are missing is dropped, everything else is kept.
 */
import type { CstNode, IToken } from 'chevrotain';
import type * as Cst from '../../grammar/cst.d.ts';
import { parser } from '../../grammar/parser.ts';
import { error, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type {
  Arg,
  BinaryOp,
  Call,
  ConstDecl,
  DataDecl,
  ElemType,
  Expr,
  GuideBlock,
  GuideSite,
  Ident,
  Item,
  LetStmt,
  MemoryDecl,
  ModelHeader,
  NetDecl,
  NeuralDecl,
  ParamDecl,
  Program,
  Setting,
  SiteKeyword,
  SiteStmt,
  SizeDecl,
  Span,
  TrainBlock,
  TypeExpr,
} from './types.ts';

/** Code for a statement the parser accepted but that is not allowed where it stands. */
export const STATEMENT_NOT_ALLOWED = 'VMM1004';

// ---------------------------------------------------------------- tokens and spans

/** A token that really is in the source (not inserted by error recovery, not EOF). */
function realToken(t: IToken | undefined): t is IToken {
  return t !== undefined && t.isInsertedInRecovery !== true && Number.isFinite(t.startOffset) && t.image.length > 0;
}

function tokenSpan(t: IToken): Span {
  return { start: t.startOffset, end: t.startOffset + t.image.length };
}

function tok(ts: IToken[] | undefined, i = 0): IToken | undefined {
  const t = ts?.[i];
  return realToken(t) ? t : undefined;
}

function nodeSpan(n: CstNode | undefined): Span | undefined {
  const loc = n?.location;
  if (!loc || !Number.isFinite(loc.startOffset) || loc.endOffset === undefined || !Number.isFinite(loc.endOffset)) return undefined;
  return { start: loc.startOffset, end: loc.endOffset + 1 };
}

function isCstNode(x: IToken | CstNode): x is CstNode {
  return 'children' in x;
}

/** The extent of every real token and node among a CST node's children (undefined if none). */
function childrenSpan(children: Record<string, (IToken | CstNode)[] | undefined>): Span | undefined {
  let start = Infinity;
  let end = -Infinity;
  for (const list of Object.values(children)) {
    for (const x of list ?? []) {
      const s = isCstNode(x) ? nodeSpan(x) : realToken(x) ? tokenSpan(x) : undefined;
      if (!s) continue;
      start = Math.min(start, s.start);
      end = Math.max(end, s.end);
    }
  }
  return Number.isFinite(start) ? { start, end } : undefined;
}

function ident(t: IToken | undefined): Ident | undefined {
  return t ? { kind: 'Ident', name: t.image, span: tokenSpan(t) } : undefined;
}

// ---------------------------------------------------------------- statements before placement

/** A `key = value` parsed anywhere; only `train { }` keeps it. */
interface SettingStmt {
  kind: 'Setting';
  setting: Setting;
  span: Span;
}

type Statement = Exclude<Item, GuideBlock | TrainBlock> | GuideSite | SettingStmt;

/** A statement with the span a VMM1004 points at (its leading keyword(s), or the whole bare statement). */
interface Placed<T> {
  node: T;
  head: Span;
  /** How the statement is named in a "not allowed" message. */
  what: string;
}

// ---------------------------------------------------------------- the builder

const BaseVisitor = parser.getBaseCstVisitorConstructor();

/**
 * The CST visitor. Each method takes the children of one CST rule (types from grammar/cst.d.ts)
 * and returns its AST, or undefined when error recovery left the node incomplete.
 */
class AstBuilder extends BaseVisitor implements Cst.ICstNodeVisitor<void, unknown> {
  readonly diagnostics: Diagnostic[] = [];

  constructor() {
    super();
    this.validateVisitor();
  }

  private notAllowed(p: Placed<unknown>, where: string, hint: string): void {
    this.diagnostics.push(error(STATEMENT_NOT_ALLOWED, `${p.what} is not allowed ${where}: ${hint}`, p.head));
  }

  program(ch: Cst.ProgramCstChildren): Program {
    const items: Item[] = [];
    let first = true;
    for (const node of ch.topItem ?? []) {
      const item = this.topItem(node.children);
      if (!item) continue;
      const isFirst = first;
      first = false;
      if ('node' in item) {
        const s = item.node;
        if (s.kind === 'GuideSite') {
          this.notAllowed(item, 'outside guide', `a model site needs a keyword, as in 'latent ${s.name.name} ~ ...' or 'observe ${s.name.name} ~ ...'`);
        } else if (s.kind === 'Setting') {
          this.notAllowed(item, 'outside train', `training settings go inside 'train { }'`);
        } else {
          if (s.kind === 'ModelHeader' && !isFirst) {
            this.notAllowed(item, 'here', "the 'model' header must be the first statement of the file");
          }
          items.push(s);
        }
      } else {
        items.push(item);
      }
    }
    return { kind: 'Program', items, span: { start: 0, end: 0 } };
  }

  topItem(ch: Cst.TopItemCstChildren): GuideBlock | TrainBlock | Placed<Statement> | undefined {
    const guide = ch.guideBlock?.[0];
    if (guide) return this.guideBlock(guide.children);
    const train = ch.trainBlock?.[0];
    if (train) return this.trainBlock(train.children);
    const stmt = ch.statement?.[0];
    return stmt ? this.statement(stmt.children) : undefined;
  }

  statement(ch: Cst.StatementCstChildren): Placed<Statement> | undefined {
    const keyed = <T extends Statement>(node: T | undefined, kw: IToken[] | undefined, what: string): Placed<T> | undefined => {
      const k = tok(kw);
      return node && k ? { node, head: tokenSpan(k), what } : undefined;
    };
    if (ch.modelHeader?.[0]) return keyed(this.modelHeader(ch.modelHeader[0].children), ch.modelHeader[0].children.Model, "the 'model' header");
    if (ch.constDecl?.[0]) return keyed(this.constDecl(ch.constDecl[0].children), ch.constDecl[0].children.Const, "'const'");
    if (ch.sizeDecl?.[0]) return keyed(this.sizeDecl(ch.sizeDecl[0].children), ch.sizeDecl[0].children.Size, "'size'");
    if (ch.dataDecl?.[0]) return keyed(this.dataDecl(ch.dataDecl[0].children), ch.dataDecl[0].children.Data, "'data'");
    if (ch.memoryDecl?.[0]) return keyed(this.memoryDecl(ch.memoryDecl[0].children), ch.memoryDecl[0].children.Memory, "'memory'");
    if (ch.paramDecl?.[0]) return keyed(this.paramDecl(ch.paramDecl[0].children), ch.paramDecl[0].children.Param, "'param'");
    if (ch.netDecl?.[0]) return keyed(this.netDecl(ch.netDecl[0].children), ch.netDecl[0].children.Net, "'net'");
    if (ch.neuralDecl?.[0]) return keyed(this.neuralDecl(ch.neuralDecl[0].children), ch.neuralDecl[0].children.Neural, "'neural'");
    if (ch.letStmt?.[0]) return keyed(this.letStmt(ch.letStmt[0].children), ch.letStmt[0].children.Let, "'let'");
    if (ch.siteStmt?.[0]) {
      const site = this.siteStmt(ch.siteStmt[0].children);
      return site && { node: site, head: site.keywordSpan, what: `'${site.keywords.join(' ')}'` };
    }
    if (ch.bareStmt?.[0]) {
      const s = this.bareStmt(ch.bareStmt[0].children);
      if (!s) return undefined;
      const name = s.kind === 'Setting' ? s.setting.key : s.name;
      return { node: s, head: s.span, what: s.kind === 'Setting' ? `the setting '${name.name} = ...'` : `the site '${name.name} ~ ...'` };
    }
    return undefined;
  }

  modelHeader(ch: Cst.ModelHeaderCstChildren): ModelHeader | undefined {
    const name = ident(tok(ch.name));
    const span = childrenSpan(ch);
    return name && span && { kind: 'ModelHeader', name, span };
  }

  constDecl(ch: Cst.ConstDeclCstChildren): ConstDecl | undefined {
    const name = ident(tok(ch.name));
    const value = this.expr(ch.value?.[0]);
    const span = childrenSpan(ch);
    return name && value && span && { kind: 'Const', name, value, span };
  }

  sizeDecl(ch: Cst.SizeDeclCstChildren): SizeDecl | undefined {
    const names = (ch.names ?? []).filter(realToken).map((t) => ident(t)!);
    const span = childrenSpan(ch);
    return names.length > 0 && span ? { kind: 'Size', names, span } : undefined;
  }

  dataDecl(ch: Cst.DataDeclCstChildren): DataDecl | undefined {
    const name = ident(tok(ch.name));
    const type = this.type(ch.type?.[0]);
    const span = childrenSpan(ch);
    return name && type && span && { kind: 'Data', name, type, span };
  }

  memoryDecl(ch: Cst.MemoryDeclCstChildren): MemoryDecl | undefined {
    const name = ident(tok(ch.name));
    const type = this.type(ch.type?.[0]);
    const span = childrenSpan(ch);
    return name && type && span && { kind: 'Memory', name, type, span };
  }

  paramDecl(ch: Cst.ParamDeclCstChildren): ParamDecl | undefined {
    const name = ident(tok(ch.name));
    const type = this.type(ch.type?.[0]);
    const span = childrenSpan(ch);
    if (!name || !type || !span) return undefined;
    if (ch.Equals) {
      const init = this.expr(ch.init?.[0]);
      return init && { kind: 'Param', name, type, init, span };
    }
    return { kind: 'Param', name, type, span };
  }

  netDecl(ch: Cst.NetDeclCstChildren): NetDecl | undefined {
    const name = ident(tok(ch.name));
    const stageNodes = ch.stages ?? [];
    const stages = stageNodes.map((s) => this.expr(s));
    const span = childrenSpan(ch);
    const complete = stages.length > 0 && stages.length === (ch.Shift?.length ?? 0) + 1 && stages.every((s) => s !== undefined);
    return name && span && complete ? { kind: 'Net', name, stages: stages as Expr[], span } : undefined;
  }

  neuralDecl(ch: Cst.NeuralDeclCstChildren): NeuralDecl | undefined {
    const name = ident(tok(ch.name));
    const stages = (ch.stages ?? []).map((s) => this.expr(s));
    const write = ch.write?.[0] && this.writeRule(ch.write[0].children);
    const span = childrenSpan(ch);
    const complete = stages.length > 0 && stages.length === (ch.Shift?.length ?? 0) + 1 && stages.every((s) => s !== undefined);
    return name && span && write && complete ? { kind: 'Neural', name, stages: stages as Expr[], write, span } : undefined;
  }

  /** `writes mem(key: k, ...)` as a call whose callee is the memory (the `writes` keyword is not in its span). */
  writeRule(ch: Cst.WriteRuleCstChildren): Call | undefined {
    const callee = ident(tok(ch.memory));
    const close = tok(ch.RParen);
    if (!callee || !close || !tok(ch.LParen) || !tok(ch.Writes)) return undefined;
    const args = ch.args?.[0] ? this.args(ch.args[0].children) : [];
    return args && { kind: 'Call', callee, args, span: { start: callee.span.start, end: tokenSpan(close).end } };
  }

  letStmt(ch: Cst.LetStmtCstChildren): LetStmt | undefined {
    const name = ident(tok(ch.name));
    const value = this.expr(ch.value?.[0]);
    const span = childrenSpan(ch);
    return name && value && span && { kind: 'Let', name, value, span };
  }

  siteStmt(ch: Cst.SiteStmtCstChildren): SiteStmt | undefined {
    const kws = (ch.keywords ?? []).filter(realToken);
    const name = ident(tok(ch.name));
    const dist = this.dist(ch.dist?.[0]);
    const span = childrenSpan(ch);
    const first = kws[0];
    const last = kws[kws.length - 1];
    if (!first || !last || !name || !dist || !span) return undefined;
    const site: SiteStmt = {
      kind: 'Site',
      keywords: kws.map((k) => k.image as SiteKeyword),
      keywordSpan: { start: first.startOffset, end: tokenSpan(last).end },
      name,
      dist,
      span,
    };
    if (ch.Colon) {
      const type = this.type(ch.type?.[0]);
      if (!type) return undefined;
      site.type = type;
    }
    return site;
  }

  bareStmt(ch: Cst.BareStmtCstChildren): GuideSite | SettingStmt | undefined {
    const name = ident(tok(ch.name));
    const span = childrenSpan(ch);
    if (!name || !span) return undefined;
    if (ch.Tilde) {
      const dist = this.dist(ch.dist?.[0]);
      return dist && { kind: 'GuideSite', name, dist, span };
    }
    if (ch.Equals) {
      const value = this.expr(ch.value?.[0]);
      return value && { kind: 'Setting', setting: { key: name, value, span }, span };
    }
    return undefined;
  }

  guideBlock(ch: Cst.GuideBlockCstChildren): GuideBlock | undefined {
    const span = childrenSpan(ch);
    if (!span || !tok(ch.Guide)) return undefined;
    const body: (GuideSite | LetStmt)[] = [];
    for (const node of ch.body ?? []) {
      const p = this.statement(node.children);
      if (!p) continue;
      const s = p.node;
      if (s.kind === 'GuideSite' || s.kind === 'Let') body.push(s);
      else if (s.kind === 'Site') this.notAllowed(p, 'inside guide', `a guide site is written without keywords, as '${s.name.name} ~ ...'`);
      else if (s.kind === 'Setting') this.notAllowed(p, 'inside guide', `training settings go inside 'train { }'`);
      else this.notAllowed(p, 'inside guide', 'a guide holds sites (name ~ DIST) and lets; declare it before the model statements');
    }
    return { kind: 'Guide', body, span };
  }

  trainBlock(ch: Cst.TrainBlockCstChildren): TrainBlock | undefined {
    const span = childrenSpan(ch);
    if (!span || !tok(ch.Train)) return undefined;
    const settings: Setting[] = [];
    for (const node of ch.body ?? []) {
      const p = this.statement(node.children);
      if (!p) continue;
      if (p.node.kind === 'Setting') settings.push(p.node.setting);
      else this.notAllowed(p, 'inside train', "a train block holds settings 'key = value' only");
    }
    return { kind: 'Train', settings, span };
  }

  distribution(ch: Cst.DistributionCstChildren): Call | undefined {
    const callee = ident(tok(ch.callee));
    const span = childrenSpan(ch);
    if (!callee || !span || !tok(ch.LParen)) return undefined;
    const args = ch.args?.[0] ? this.args(ch.args[0].children) : [];
    return args && { kind: 'Call', callee, args, span };
  }

  typeExpr(ch: Cst.TypeExprCstChildren): TypeExpr | undefined {
    const elemTok = tok(ch.elem);
    const span = childrenSpan(ch);
    if (!elemTok || !span) return undefined;
    const t: TypeExpr = { elem: elemTok.image as ElemType, elemSpan: tokenSpan(elemTok), dims: [], span };
    if (ch.LBracket) {
      const dims = (ch.dims ?? []).map((d) => this.expr(d));
      if (dims.length === 0 || dims.length !== (ch.Comma?.length ?? 0) + 1 || dims.some((d) => d === undefined)) return undefined;
      t.dims = dims as Expr[];
    }
    if (ch.LParen) {
      const card = this.expr(ch.card?.[0]);
      if (!card) return undefined;
      t.card = card;
    }
    return t;
  }

  // ---------------------------------------------------------------- expressions

  expression(ch: Cst.ExpressionCstChildren): Expr | undefined {
    return this.fold(
      ch.operands ?? [],
      ch.operators ?? [],
      (n) => this.multiplicative(n.children),
    );
  }

  multiplicative(ch: Cst.MultiplicativeCstChildren): Expr | undefined {
    return this.fold(
      ch.operands ?? [],
      ch.operators ?? [],
      (n) => this.unary(n.children),
    );
  }

  /** Left-assoc fold of `a op b op c`; each Binary spans its operands' CST nodes (parentheses included). */
  private fold<N extends CstNode>(operands: N[], operators: IToken[], build: (n: N) => Expr | undefined): Expr | undefined {
    const firstNode = operands[0];
    if (!firstNode || operands.length !== operators.length + 1) return undefined;
    const start = nodeSpan(firstNode)?.start;
    let left = build(firstNode);
    if (left === undefined || start === undefined) return undefined;
    for (let i = 0; i < operators.length; i++) {
      const op = operators[i]!;
      const rightNode = operands[i + 1]!;
      const right = build(rightNode);
      const end = nodeSpan(rightNode)?.end;
      if (!realToken(op) || right === undefined || end === undefined) return undefined;
      left = { kind: 'Binary', op: op.image as BinaryOp, left, right, span: { start, end } };
    }
    return left;
  }

  unary(ch: Cst.UnaryCstChildren): Expr | undefined {
    const minus = tok(ch.Minus);
    if (ch.Minus) {
      const operandNode = ch.operand?.[0];
      const operand = operandNode && this.unary(operandNode.children);
      const end = nodeSpan(operandNode)?.end;
      return minus && operand && end !== undefined ? { kind: 'Unary', op: '-', operand, span: { start: minus.startOffset, end } } : undefined;
    }
    const post = ch.postfix?.[0];
    return post && this.postfix(post.children);
  }

  postfix(ch: Cst.PostfixCstChildren): Expr | undefined {
    const atomNode = ch.atom?.[0];
    const start = nodeSpan(atomNode)?.start;
    let target = atomNode && this.atom(atomNode.children);
    if (target === undefined || start === undefined) return undefined;
    const indices = ch.indices ?? [];
    if (indices.length !== (ch.LBracket?.length ?? 0)) return undefined;
    const members = ch.members ?? [];
    if (members.length !== (ch.Dot?.length ?? 0)) return undefined;
    // Index reads and member reads in source order (the CST groups them by kind).
    const ops = [
      ...indices.map((_, i) => ({ at: ch.LBracket![i]!.startOffset, index: i })),
      ...members.map((_, i) => ({ at: ch.Dot![i]!.startOffset, member: i })),
    ].sort((a, b) => a.at - b.at);
    for (const op of ops) {
      if ('member' in op) {
        const member = ident(tok(ch.members, op.member));
        if (!member) return undefined;
        target = { kind: 'Member', target, member, span: { start, end: member.span.end } };
        continue;
      }
      const i = op.index;
      const index = this.expr(indices[i]);
      const close = tok(ch.RBracket, i);
      const end = close ? tokenSpan(close).end : nodeSpan(indices[i])?.end;
      if (!index || end === undefined) return undefined;
      target = { kind: 'Index', target, index, span: { start, end } };
    }
    return target;
  }

  atom(ch: Cst.AtomCstChildren): Expr | undefined {
    const num = tok(ch.NumberLit);
    if (num) return { kind: 'Number', value: Number(num.image), text: num.image, span: tokenSpan(num) };
    const call = ch.nameOrCall?.[0];
    if (call) return this.nameOrCall(call.children);
    const paren = ch.parenExpr?.[0];
    return paren && this.parenExpr(paren.children);
  }

  nameOrCall(ch: Cst.NameOrCallCstChildren): Ident | Call | undefined {
    const callee = ident(tok(ch.name));
    if (!callee) return undefined;
    if (!ch.LParen) return callee;
    const span = childrenSpan(ch);
    const args = ch.args?.[0] ? this.args(ch.args[0].children) : [];
    return args && span && { kind: 'Call', callee, args, span };
  }

  /** Parentheses leave no node: the inner expression keeps its own span. */
  parenExpr(ch: Cst.ParenExprCstChildren): Expr | undefined {
    return this.expr(ch.inner?.[0]);
  }

  args(ch: Cst.ArgsCstChildren): Arg[] | undefined {
    const list = (ch.arg ?? []).map((a) => this.arg(a.children));
    if (list.length !== (ch.Comma?.length ?? 0) + 1 || list.some((a) => a === undefined)) return undefined;
    return list as Arg[];
  }

  arg(ch: Cst.ArgCstChildren): Arg | undefined {
    const value = this.expr(ch.value?.[0]);
    const span = childrenSpan(ch);
    if (!value || !span) return undefined;
    if (ch.name || ch.Colon) {
      const name = ident(tok(ch.name));
      return name && { name, value, span };
    }
    return { value, span };
  }

  // ---------------------------------------------------------------- node helpers

  private expr(n: Cst.ExpressionCstNode | undefined): Expr | undefined {
    return n && this.expression(n.children);
  }

  private type(n: Cst.TypeExprCstNode | undefined): TypeExpr | undefined {
    return n && this.typeExpr(n.children);
  }

  private dist(n: Cst.DistributionCstNode | undefined): Call | undefined {
    return n && this.distribution(n.children);
  }
}

// ---------------------------------------------------------------- comments

interface CommentTok {
  start: number;
  text: string;
}

/** Something comments attach to: a statement, a body entry, or a block with its own body. */
interface Attachable {
  span: Span;
  leading?: string[];
  trailing?: string;
  /** For a block: its entries, and where comments after the last entry go. */
  entries?: Attachable[];
  closingComments?: string[];
}

/**
 * Attaches comments to a list of siblings (in source order), returns those after the last one.
 * A comment after a sibling on the sibling's last line is its `trailing`; a whole-line comment is
 * `leading` of the next sibling; a comment inside a sibling is attached inside a block, or moved
 * in front of a plain statement (appended to its `leading`) so that it is never lost.
 */
function attachComments(siblings: Attachable[], comments: CommentTok[], source: string): string[] {
  const before = new Map<Attachable, string[]>();
  const inside = new Map<Attachable, CommentTok[]>();
  const tail: string[] = [];
  const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
    const list = m.get(k);
    if (list) list.push(v);
    else m.set(k, [v]);
  };
  let i = 0; // first sibling that ends after the current comment
  for (const c of comments) {
    while (i < siblings.length && siblings[i]!.span.end <= c.start) i++;
    const cur = siblings[i];
    if (cur && cur.span.start <= c.start) {
      push(inside, cur, c);
      continue;
    }
    const prev = i > 0 ? siblings[i - 1] : undefined;
    if (prev && prev.trailing === undefined && !/[\n\r\u2028\u2029]/.test(source.slice(prev.span.end, c.start))) {
      prev.trailing = c.text;
      continue;
    }
    if (cur) push(before, cur, c.text);
    else tail.push(c.text);
  }
  for (const s of siblings) {
    const lead = [...(before.get(s) ?? [])];
    const inner = inside.get(s) ?? [];
    if (s.entries) {
      const closing = attachComments(s.entries, inner, source);
      if (closing.length) s.closingComments = closing;
    } else {
      lead.push(...inner.map((c) => c.text));
    }
    if (lead.length) s.leading = lead;
  }
  return tail;
}

function attachableOf(item: Item): Attachable {
  if (item.kind === 'Guide') return Object.assign(item, { entries: item.body as Attachable[] });
  if (item.kind === 'Train') return Object.assign(item, { entries: item.settings as Attachable[] });
  return item;
}

// ---------------------------------------------------------------- entry point

/**
 * Builds the AST of one parsed file: `cst` from `parser.program()`, `comments` the lexer's
 * `comments` group, `source` the text (for line breaks between a statement and a comment).
 * Returns the program and the VMM1004 diagnostics. Never throws on a CST from the parser,
 * however broken the input was.
 */
export function toAst(cst: Cst.ProgramCstNode, comments: readonly IToken[], source: string): { program: Program; diagnostics: Diagnostic[] } {
  const builder = new AstBuilder();
  const program = builder.program(cst.children ?? {});
  program.span = { start: 0, end: source.length };
  const commentToks = comments
    .filter(realToken)
    .map((t) => ({ start: t.startOffset, text: t.image.slice(2).trimEnd() }))
    .sort((a, b) => a.start - b.start);
  const siblings = program.items.map(attachableOf);
  const tail = attachComments(siblings, commentToks, source);
  for (const s of siblings) delete s.entries; // the alias was only for attaching
  if (tail.length) program.trailingComments = tail;
  return { program, diagnostics: builder.diagnostics };
}
