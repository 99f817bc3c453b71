/**
 * The output of `check`: the program with every name resolved, every expression typed (as IR
 * expressions, which carry their types), nets resolved to layers with concrete sizes, the guide
 * the compiler will use (written or derived) and the training settings with defaults filled in.
 * `toIr` (src/check/to_ir.ts) turns it into the IR; `explain` (explain.ts) describes it.
 */
import type { GuideBlock, LetStmt, NetDecl, NeuralDecl, Program, SiteKeyword, SiteStmt, GuideSite, Span } from '../ast/types.ts';
import type { IrExpr, IrLayer, IrNeural, IrParam, SiteRole, Size, TrainSettings, ValueType } from '../ir/types.ts';

export interface CheckedNet {
  name: string;
  layers: IrLayer[];
  inShape: number[];
  outShape: number[];
  /** The declaration (for derived nets: synthesized, spans point at the site it serves). */
  decl: NetDecl;
  derived: boolean;
  /** Outputs named by `tap(name)` stages, in chain order. */
  taps?: CheckedNetPort[];
  /** Extra inputs joined by `skip(name, C)` stages, in chain order. */
  skips?: CheckedNetPort[];
}

/** A tap or skip of a net: its name, its shape (channels first) and where the stage names it. */
export interface CheckedNetPort {
  name: string;
  shape: number[];
  span: Span;
}

/** A checked neural memory declaration: the IR form plus its declaration (for spans). */
export interface CheckedNeural extends IrNeural {
  decl: NeuralDecl;
}

/**
 * A distribution as written, with typed parameters, in the forms of its family's typing rule
 * (src/families/types.ts, `Typing`). `toIr` resolves the rest: `halves` (`Normal(e)`) into the two
 * parameters, `probs` (`Bernoulli(probs: p)`) into logits. `Categorical` is the node of the
 * 'categories' forms, the language's own (an address is one).
 */
export type CheckedDist =
  | { kind: 'Categorical'; form: 'logits'; logits: IrExpr; n: Size }
  | { kind: 'Categorical'; form: 'uniform'; n: Size; memory?: string; table?: IrExpr }
  /** `F(probs: p)` of a 'logitsOrProbs' family: probabilities, the entry's one parameter being logits. */
  | { kind: 'probs'; family: string; param: IrExpr; paramNames: readonly string[] }
  /** `F(E)` of a 'halves' family: E's last axis holds the two parameters, `n` values each. */
  | { kind: 'halves'; family: string; params: IrExpr; n: number; paramNames: readonly string[] }
  /** Parameters in the registry entry's order (src/families/registry.ts). */
  | { kind: 'family'; family: string; params: IrExpr[]; paramNames: readonly string[] };

/** The registry name of a checked distribution's family. */
export function checkedFamily(d: CheckedDist): string {
  return d.kind === 'Categorical' ? d.kind : d.family;
}

export interface CheckedSite {
  stmt: 'site';
  name: string;
  role: SiteRole;
  /** The keywords written in the model (empty for guide sites). */
  keywords: SiteKeyword[];
  /** A discrete family (the entry's `discrete`): needs a score-function estimator, enumeration or a relaxation. */
  discrete: boolean;
  dist: CheckedDist;
  type: ValueType;
  ast: SiteStmt | GuideSite;
}

export interface CheckedLet {
  stmt: 'let';
  name: string;
  value: IrExpr;
  type: ValueType;
  ast: LetStmt;
}

export type CheckedStmt = CheckedSite | CheckedLet;

export interface DerivedSiteNote {
  site: string;
  /** Why the guide site looks the way it does, for `vmm check --explain`. */
  reason: string;
}

export interface CheckedGuide {
  derived: boolean;
  stmts: CheckedStmt[];
  /** The guide as .vmm syntax: the user's block, or the derived one (synthesized AST). */
  block: GuideBlock;
  derivedNets: NetDecl[];
  notes: DerivedSiteNote[];
}

export interface CheckedInput {
  name: string;
  type: ValueType;
}

export interface CheckedProgram {
  program: Program;
  name: string;
  consts: { name: string; value: number }[];
  sizeSymbols: string[];
  /** `observed`: the target of an `observe` site. */
  data: (CheckedInput & { observed: boolean })[];
  memories: CheckedInput[];
  params: IrParam[];
  /** User nets in declaration order, then the nets of a derived guide. */
  nets: CheckedNet[];
  /** Neural long-term memories (Titans) in declaration order. */
  neural: CheckedNeural[];
  model: CheckedStmt[];
  guide: CheckedGuide;
  /** Training settings with every default filled in. */
  train: TrainSettings;
  /** The keys written in `train { }` (the others are defaults). */
  trainExplicit: string[];
}
