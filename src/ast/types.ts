/**
 * The untyped abstract syntax tree of a `.vmm` file: the output of `toAst` (grammar/ + src/ast/visitor.ts)
 * and the input of `check`. It records what the user wrote, with spans, and nothing inferred.
 * Spans are half-open source offsets; line/column are computed only when rendering diagnostics.
 */
import type { Span } from '../diagnostics/span.ts';

export type { Span };

// ---------------------------------------------------------------- expressions

export type Expr = NumberLit | Ident | Call | IndexExpr | MemberExpr | BinaryExpr | UnaryExpr;

export interface NumberLit {
  kind: 'Number';
  value: number;
  /** The literal as written (e.g. `1e-4`), so the printer keeps the user's spelling. */
  text: string;
  span: Span;
}

export interface Ident {
  kind: 'Ident';
  name: string;
  span: Span;
}

/** An argument of a call; `name` is set for `key: value` arguments. */
export interface Arg {
  name?: Ident;
  value: Expr;
  span: Span;
}

/** `f(args)`: a net application, a builtin (`concat`, `dot`, ...), a distribution, a layer or a setting value. */
export interface Call {
  kind: 'Call';
  callee: Ident;
  args: Arg[];
  span: Span;
}

/** `target[index]`: reads entry `index` of a memory / param (its first axis). */
export interface IndexExpr {
  kind: 'Index';
  target: Expr;
  index: Expr;
  span: Span;
}

/** `target.member`: an output of a net application, `g(x).s14` (a `tap` stage of `g`). */
export interface MemberExpr {
  kind: 'Member';
  target: Expr;
  member: Ident;
  span: Span;
}

export type BinaryOp = '+' | '-' | '*' | '/' | '@';

export interface BinaryExpr {
  kind: 'Binary';
  op: BinaryOp;
  left: Expr;
  right: Expr;
  span: Span;
}

export interface UnaryExpr {
  kind: 'Unary';
  op: '-';
  operand: Expr;
  span: Span;
}

// ---------------------------------------------------------------- types

export type ElemType = 'binary' | 'real' | 'int' | 'cat';

/**
 * `binary[D]`, `real[M, D]`, `int`, `cat(10)` (a categorical label / index with 10 values).
 * `dims` are size expressions (consts, size symbols and arithmetic on them).
 */
export interface TypeExpr {
  elem: ElemType;
  elemSpan: Span;
  dims: Expr[];
  /** For `cat(N)`: the number of categories. */
  card?: Expr;
  span: Span;
}

// ---------------------------------------------------------------- statements

/**
 * Comments are kept so that `vmm fmt` never deletes them: whole-line comments before a statement
 * are `leading` (one string per line, without the `//`), a comment after it on its line is `trailing`.
 * They never take part in checking, and the round-trip test compares ASTs with comments stripped.
 */
export interface Commented {
  leading?: string[];
  trailing?: string;
}

/** `model name` header (optional, at most one, first). */
export interface ModelHeader extends Commented {
  kind: 'ModelHeader';
  name: Ident;
  span: Span;
}

/** `const D = 28 * 28`. */
export interface ConstDecl extends Commented {
  kind: 'Const';
  name: Ident;
  value: Expr;
  span: Span;
}

/** `size M`: a free size symbol bound per episode (e.g. memory size); may differ at test time. */
export interface SizeDecl extends Commented {
  kind: 'Size';
  names: Ident[];
  span: Span;
}

/** `data x : binary[D]`: an observed input supplied per example. */
export interface DataDecl extends Commented {
  kind: 'Data';
  name: Ident;
  type: TypeExpr;
  span: Span;
}

/** `memory mem : binary[M, D]`: an episodic memory supplied with the data. */
export interface MemoryDecl extends Commented {
  kind: 'Memory';
  name: Ident;
  type: TypeExpr;
  span: Span;
}

/** `param slots : real[32, D]`: a learned tensor (learned memory entries, mixture means, biases). */
export interface ParamDecl extends Commented {
  kind: 'Param';
  name: Ident;
  type: TypeExpr;
  /** Optional initialiser: `= normal(0.01)`, `= zeros`. */
  init?: Expr;
  span: Span;
}

/**
 * `net h = mlp(D, 256, 128)` or a chain `net e = reshape(1, 28, 28) >> conv2d(1, 32, kernel: 3) >> relu >> flatten`.
 * Each stage is a layer call (`linear(a, b)`), a bare layer (`relu`, `flatten`) or another net's name.
 */
export interface NetDecl extends Commented {
  kind: 'Net';
  name: Ident;
  stages: Expr[];
  span: Span;
}

/**
 * `neural nm = mlp(H, 64, H) writes mem(key: kproj, value: vproj, gates: gate)`: a neural
 * long-term memory (Titans, Behrouz et al. 2025): an MLP whose weights are written per episode by
 * gradient steps on `||nm(kproj(e)) - vproj(e)||^2` over the entries `e` of memory `mem`, read by
 * `nm(q)`. `write` is the clause after `writes`, as a call whose callee is the memory.
 */
export interface NeuralDecl extends Commented {
  kind: 'Neural';
  name: Ident;
  stages: Expr[];
  write: Call;
  span: Span;
}

/** `let r = g(mem[a])`: a deterministic binding. */
export interface LetStmt extends Commented {
  kind: 'Let';
  name: Ident;
  value: Expr;
  span: Span;
}

/** How a model site was introduced. `discrete` and `address` are checked promises about its distribution. */
export type SiteKeyword = 'latent' | 'discrete' | 'address' | 'observe';

/**
 * A random site of the model: `latent z ~ Normal(...)`, `discrete c ~ Categorical(3)`,
 * `discrete address a ~ Categorical(mem)`, `observe x ~ Bernoulli(logits: ...)`.
 * `keywords` is what was written, in order (e.g. ['discrete', 'address']).
 */
export interface SiteStmt extends Commented {
  kind: 'Site';
  keywords: SiteKeyword[];
  keywordSpan: Span;
  name: Ident;
  type?: TypeExpr;
  dist: Call;
  span: Span;
}

/** A site of the guide: `a ~ Categorical(logits: ...)`. */
export interface GuideSite extends Commented {
  kind: 'GuideSite';
  name: Ident;
  dist: Call;
  span: Span;
}

/** `guide { ... }`: the amortized posterior q. */
export interface GuideBlock extends Commented {
  kind: 'Guide';
  body: (GuideSite | LetStmt)[];
  /** Whole-line comments after the last entry, before the closing `}` (kept for `vmm fmt`). */
  closingComments?: string[];
  span: Span;
}

/** `key = value` inside `train { }`, e.g. `estimator = vimco(k: 4)`, `batch = 32`. */
export interface Setting extends Commented {
  key: Ident;
  value: Expr;
  span: Span;
}

export interface TrainBlock extends Commented {
  kind: 'Train';
  settings: Setting[];
  /** Whole-line comments after the last setting, before the closing `}` (kept for `vmm fmt`). */
  closingComments?: string[];
  span: Span;
}

export type Item =
  | ModelHeader
  | ConstDecl
  | SizeDecl
  | DataDecl
  | MemoryDecl
  | ParamDecl
  | NetDecl
  | NeuralDecl
  | LetStmt
  | SiteStmt
  | GuideBlock
  | TrainBlock;

export interface Program {
  kind: 'Program';
  items: Item[];
  /** Comments after the last statement. */
  trailingComments?: string[];
  span: Span;
}
