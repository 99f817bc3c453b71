/**
 * The `.vmm` parser: chevrotain CST, error recovery on. Grammar only, no semantics.
 *
 * It is a "super grammar": it accepts a little more than the language so that the AST builder
 * and the checker can reject the rest with better messages than a parse error could give:
 * - any call is accepted as a distribution, any sequence of site keywords before a site name;
 * - `statement` is one set for the top level and for `guide { }` / `train { }` bodies, so that
 *   `observe` inside `guide` or `latent` inside `train` parses, and the AST builder reports
 *   "statement not allowed here" (VMM1004);
 * - bare `name ~ DIST` (a guide site) and `name = EXPR` (a training setting) parse anywhere;
 * - a type is an element type with optional `[dims]` and optional `(card)`.
 *
 * Statements are recognised by their leading keyword (newlines are not significant).
 * Expressions: `+ -` < `* / @` < unary `-` < postfix `[i]` and `.name` < atoms (number, name, call, parens).
 *
 * Rules are class properties, so a misspelt rule is a compile error. `parser` is the one
 * instance, reused by every parse (set `parser.input`, call `parser.program()`).
 * The CST types in cst.d.ts are generated from this class: `node bin/run-ts.mjs scripts/gen-cst-dts.ts`.
 */
import type { IParserErrorMessageProvider, IToken, TokenType } from 'chevrotain';
import { CstParser, EOF } from './chevrotain.ts';
import {
  AdditiveOp,
  Address,
  allTokens,
  Colon,
  Comma,
  Const,
  Data,
  Dot,
  ElemType,
  Equals,
  Guide,
  Identifier,
  LBrace,
  LBracket,
  Let,
  LParen,
  Memory,
  Minus,
  Model,
  MultiplicativeOp,
  Net,
  Neural,
  NumberLit,
  Param,
  RBrace,
  RBracket,
  RParen,
  Shift,
  SiteKeyword,
  Size,
  statementKeywords,
  Tilde,
  Train,
  Writes,
} from './tokens.ts';

// ---------------------------------------------------------------- error messages in user terms

/** Marks a message whose cause is a missing closing bracket (VMM1003); parse.ts strips it. */
export const MISSING_CLOSER_PREFIX = 'missing ';

const STATEMENT_HINT = "a statement ('const', 'data', 'net', 'let', 'latent', 'observe', 'guide', ...)";

function tokenLabel(t: TokenType): string {
  if (t === EOF) return 'end of file';
  return t.LABEL ?? t.name;
}

function isEof(t: IToken | undefined): boolean {
  return t === undefined || t.tokenType === EOF || Number.isNaN(t.startOffset);
}

function found(t: IToken | undefined): string {
  if (isEof(t)) return 'end of file';
  const image = t!.image.length > 24 ? `${t!.image.slice(0, 24)}...` : t!.image;
  return `'${image}'`;
}

function after(previous: IToken | undefined): string {
  return isEof(previous) ? '' : ` after '${previous!.image}'`;
}

const closers = new Set<TokenType>([RParen, RBracket, RBrace]);

/** What an expected name is, by the rule it occurs in. */
const nameInRule: Record<string, string> = {
  modelHeader: 'the model name',
  constDecl: 'the name of the constant',
  sizeDecl: 'a size name',
  dataDecl: 'the name of the data input',
  memoryDecl: 'the name of the memory',
  paramDecl: 'the name of the parameter',
  netDecl: 'the name of the net',
  neuralDecl: 'the name of the neural memory',
  writeRule: 'the memory it writes',
  letStmt: 'the name to bind',
  siteStmt: 'the name of the site',
  distribution: 'a distribution',
};

/** What an alternation is choosing between, by rule. */
const choiceInRule: Record<string, string> = {
  atom: 'an expression',
  unary: 'an expression',
  bareStmt: "'~' (a guide site) or '=' (a training setting)",
  typeExpr: 'a type (binary[...], real[...], int or cat(N))',
  topItem: STATEMENT_HINT,
  statement: STATEMENT_HINT,
};

const errorMessageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual, previous, ruleName }) {
    if (closers.has(expected)) {
      const onLaterLine = !isEof(actual) && !isEof(previous) && actual.startLine! > (previous.endLine ?? previous.startLine!);
      const startsStatement = statementKeywords.some((k) => k === actual.tokenType);
      if (isEof(actual) || onLaterLine || startsStatement) return `${MISSING_CLOSER_PREFIX}${tokenLabel(expected)}`;
      // An index holds one expression: `mem[a, 1]` is `mem[a][1]` (a ',' there is not a list).
      if (ruleName === 'postfix') {
        const hint = actual.tokenType === Comma ? ' (one index per pair of brackets: x[i][j], not x[i, j])' : '';
        return `expected ${tokenLabel(expected)}${after(previous)} to close the index${hint}, found ${found(actual)}`;
      }
      const list = expected === RBrace ? '' : `',' or `;
      return `expected ${list}${tokenLabel(expected)}${after(previous)}, found ${found(actual)}`;
    }
    if (expected === Identifier) {
      const what = nameInRule[ruleName] ?? 'a name';
      return `expected ${what}${after(previous)}, found ${found(actual)}`;
    }
    if (expected === ElemType) return `expected ${choiceInRule['typeExpr']}${after(previous)}, found ${found(actual)}`;
    if (expected === EOF) return `expected ${STATEMENT_HINT}, found ${found(actual)}`;
    return `expected ${tokenLabel(expected)}${after(previous)}, found ${found(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `expected ${STATEMENT_HINT}, found ${found(firstRedundant)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, previous, ruleName }) {
    const what =
      choiceInRule[ruleName] ??
      [...new Set(expectedPathsPerAlt.flatMap((alt) => alt.map((path) => (path[0] ? tokenLabel(path[0]) : 'end of file'))))].join(
        ' or ',
      );
    return `expected ${what}${after(previous)}, found ${found(actual[0])}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, previous, ruleName }) {
    const what =
      choiceInRule[ruleName] ??
      [...new Set(expectedIterationPaths.map((path) => (path[0] ? tokenLabel(path[0]) : 'end of file')))].join(' or ');
    return `expected ${what}${after(previous)}, found ${found(actual[0])}`;
  },
};

// ---------------------------------------------------------------- the grammar

export class VmmParser extends CstParser {
  constructor() {
    super(allTokens, {
      recoveryEnabled: true,
      nodeLocationTracking: 'onlyOffset',
      maxLookahead: 3,
      errorMessageProvider,
    });
    this.performSelfAnalysis();
  }

  /** A whole file: top-level items in order. */
  program = this.RULE('program', () => {
    this.MANY(() => this.SUBRULE(this.topItem));
  });

  topItem = this.RULE('topItem', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.guideBlock) },
      { ALT: () => this.SUBRULE(this.trainBlock) },
      { ALT: () => this.SUBRULE(this.statement) },
    ]);
  });

  /** Everything that may stand alone, at the top level or in a block (the AST builder decides where it is allowed). */
  statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.modelHeader) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.sizeDecl) },
      { ALT: () => this.SUBRULE(this.dataDecl) },
      { ALT: () => this.SUBRULE(this.memoryDecl) },
      { ALT: () => this.SUBRULE(this.paramDecl) },
      { ALT: () => this.SUBRULE(this.netDecl) },
      { ALT: () => this.SUBRULE(this.neuralDecl) },
      { ALT: () => this.SUBRULE(this.letStmt) },
      { ALT: () => this.SUBRULE(this.siteStmt) },
      { ALT: () => this.SUBRULE(this.bareStmt) },
    ]);
  });

  modelHeader = this.RULE('modelHeader', () => {
    this.CONSUME(Model);
    this.CONSUME(Identifier, { LABEL: 'name' });
  });

  constDecl = this.RULE('constDecl', () => {
    this.CONSUME(Const);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Equals);
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  sizeDecl = this.RULE('sizeDecl', () => {
    this.CONSUME(Size);
    this.CONSUME(Identifier, { LABEL: 'names' });
    this.MANY(() => {
      this.CONSUME(Comma);
      this.CONSUME2(Identifier, { LABEL: 'names' });
    });
  });

  dataDecl = this.RULE('dataDecl', () => {
    this.CONSUME(Data);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Colon);
    this.SUBRULE(this.typeExpr, { LABEL: 'type' });
  });

  memoryDecl = this.RULE('memoryDecl', () => {
    this.CONSUME(Memory);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Colon);
    this.SUBRULE(this.typeExpr, { LABEL: 'type' });
  });

  paramDecl = this.RULE('paramDecl', () => {
    this.CONSUME(Param);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Colon);
    this.SUBRULE(this.typeExpr, { LABEL: 'type' });
    this.OPTION(() => {
      this.CONSUME(Equals);
      this.SUBRULE(this.expression, { LABEL: 'init' });
    });
  });

  /** `net NAME = stage (>> stage)*`; a stage is any expression (a layer call, a bare layer, a net name). */
  netDecl = this.RULE('netDecl', () => {
    this.CONSUME(Net);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Equals);
    this.SUBRULE(this.expression, { LABEL: 'stages' });
    this.MANY(() => {
      this.CONSUME(Shift);
      this.SUBRULE2(this.expression, { LABEL: 'stages' });
    });
  });

  /**
   * `neural NAME = stage (>> stage)* writes MEMORY(key: k, value: v, gates: g, ...)`: a neural
   * long-term memory (Titans) whose net is written with the entries of a memory.
   */
  neuralDecl = this.RULE('neuralDecl', () => {
    this.CONSUME(Neural);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Equals);
    this.SUBRULE(this.expression, { LABEL: 'stages' });
    this.MANY(() => {
      this.CONSUME(Shift);
      this.SUBRULE2(this.expression, { LABEL: 'stages' });
    });
    this.SUBRULE(this.writeRule, { LABEL: 'write' });
  });

  /** `writes MEMORY(key: k, value: v, gates: g, chunk: C, lr: L)`. */
  writeRule = this.RULE('writeRule', () => {
    this.CONSUME(Writes);
    this.CONSUME(Identifier, { LABEL: 'memory' });
    this.CONSUME(LParen);
    this.OPTION(() => this.SUBRULE(this.args));
    this.CONSUME(RParen);
  });

  letStmt = this.RULE('letStmt', () => {
    this.CONSUME(Let);
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Equals);
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });

  /** `latent z ~ D`, `discrete address a ~ D`, `observe x ~ D`, `latent z : real[Z] ~ D`. */
  siteStmt = this.RULE('siteStmt', () => {
    this.AT_LEAST_ONE(() => this.CONSUME(SiteKeyword, { LABEL: 'keywords' }));
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(Colon);
      this.SUBRULE(this.typeExpr, { LABEL: 'type' });
    });
    this.CONSUME(Tilde);
    this.SUBRULE(this.distribution, { LABEL: 'dist' });
  });

  /**
   * `a ~ DIST` (a guide site) or `key = EXPR` (a training setting). The keyword `address` is also a
   * setting's name (`address = topk(k: 32, tail: 8)`); `address a ~ D` stays a site (two tokens decide).
   */
  bareStmt = this.RULE('bareStmt', () => {
    this.OR1([{ ALT: () => this.CONSUME(Identifier, { LABEL: 'name' }) }, { ALT: () => this.CONSUME(Address, { LABEL: 'name' }) }]);
    this.OR([
      {
        ALT: () => {
          this.CONSUME(Tilde);
          this.SUBRULE(this.distribution, { LABEL: 'dist' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(Equals);
          this.SUBRULE(this.expression, { LABEL: 'value' });
        },
      },
    ]);
  });

  guideBlock = this.RULE('guideBlock', () => {
    this.CONSUME(Guide);
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.statement, { LABEL: 'body' }));
    this.CONSUME(RBrace);
  });

  trainBlock = this.RULE('trainBlock', () => {
    this.CONSUME(Train);
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.statement, { LABEL: 'body' }));
    this.CONSUME(RBrace);
  });

  /** Any call: the checker decides which distributions exist. */
  distribution = this.RULE('distribution', () => {
    this.CONSUME(Identifier, { LABEL: 'callee' });
    this.CONSUME(LParen);
    this.OPTION(() => this.SUBRULE(this.args));
    this.CONSUME(RParen);
  });

  /** `binary[D]`, `real[M, D]`, `int`, `cat(10)`: an element type, optional dims, optional card. */
  typeExpr = this.RULE('typeExpr', () => {
    this.CONSUME(ElemType, { LABEL: 'elem' });
    this.OPTION(() => {
      this.CONSUME(LBracket);
      this.SUBRULE(this.expression, { LABEL: 'dims' });
      this.MANY(() => {
        this.CONSUME(Comma);
        this.SUBRULE2(this.expression, { LABEL: 'dims' });
      });
      this.CONSUME(RBracket);
    });
    this.OPTION2(() => {
      this.CONSUME(LParen);
      this.SUBRULE3(this.expression, { LABEL: 'card' });
      this.CONSUME(RParen);
    });
  });

  // ---------------------------------------------------------------- expressions

  /** `+ -`, left-associative. */
  expression = this.RULE('expression', () => {
    this.SUBRULE(this.multiplicative, { LABEL: 'operands' });
    this.MANY(() => {
      this.CONSUME(AdditiveOp, { LABEL: 'operators' });
      this.SUBRULE2(this.multiplicative, { LABEL: 'operands' });
    });
  });

  /** `* / @`, left-associative, tighter than `+ -`. */
  multiplicative = this.RULE('multiplicative', () => {
    this.SUBRULE(this.unary, { LABEL: 'operands' });
    this.MANY(() => {
      this.CONSUME(MultiplicativeOp, { LABEL: 'operators' });
      this.SUBRULE2(this.unary, { LABEL: 'operands' });
    });
  });

  unary = this.RULE('unary', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(Minus);
          this.SUBRULE(this.unary, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.postfix) },
    ]);
  });

  /**
   * An atom followed by any number of index reads `[i]` and member reads `.name` (a net's output,
   * `g(x).s14`; the checker decides where a member read is allowed). The AST builder restores
   * their order from the token offsets.
   */
  postfix = this.RULE('postfix', () => {
    this.SUBRULE(this.atom);
    this.MANY(() => {
      this.OR([
        {
          ALT: () => {
            this.CONSUME(LBracket);
            this.SUBRULE(this.expression, { LABEL: 'indices' });
            this.CONSUME(RBracket);
          },
        },
        {
          ALT: () => {
            this.CONSUME(Dot);
            this.CONSUME(Identifier, { LABEL: 'members' });
          },
        },
      ]);
    });
  });

  atom = this.RULE('atom', () => {
    this.OR([
      { ALT: () => this.CONSUME(NumberLit) },
      { ALT: () => this.SUBRULE(this.nameOrCall) },
      { ALT: () => this.SUBRULE(this.parenExpr) },
    ]);
  });

  /** `name` or `name(args)`: only names are called, so `f(x)(y)` is a syntax error. */
  nameOrCall = this.RULE('nameOrCall', () => {
    this.CONSUME(Identifier, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.OPTION2(() => this.SUBRULE(this.args));
      this.CONSUME(RParen);
    });
  });

  parenExpr = this.RULE('parenExpr', () => {
    this.CONSUME(LParen);
    this.SUBRULE(this.expression, { LABEL: 'inner' });
    this.CONSUME(RParen);
  });

  args = this.RULE('args', () => {
    this.SUBRULE(this.arg);
    this.MANY(() => {
      this.CONSUME(Comma);
      this.SUBRULE2(this.arg);
    });
  });

  /** `expr` or `name: expr`. */
  arg = this.RULE('arg', () => {
    this.OPTION(() => {
      this.CONSUME(Identifier, { LABEL: 'name' });
      this.CONSUME(Colon);
    });
    this.SUBRULE(this.expression, { LABEL: 'value' });
  });
}

/** The one parser instance (chevrotain parsers are expensive to build and meant to be reused). */
export const parser = new VmmParser();
