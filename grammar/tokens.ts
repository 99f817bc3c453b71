/**
 * The tokens of the `.vmm` language (docs/language.md, "Lexical structure"). Lexing only: no
 * semantics. Keywords are declared before `Identifier` and carry `longer_alt: Identifier`, so
 * `models` or `latent_z` are names. Comments go to the `comments` group: the parser never sees
 * them, the AST builder attaches them to statements so that `vmm fmt` keeps them.
 *
 * Every token has a `label`: the way error messages name it to a user ("a name", "'('").
 */
import type { TokenType } from 'chevrotain';
import { createToken, Lexer } from './chevrotain.ts';

export const WhiteSpace = createToken({
  name: 'WhiteSpace',
  pattern: /\s+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});

export const Comment = createToken({
  name: 'Comment',
  pattern: /\/\/[^\n\r]*/,
  group: 'comments',
  label: 'a comment',
});

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });

function keyword(name: string, word: string, categories: TokenType[] = []): TokenType {
  return createToken({ name, pattern: word, longer_alt: Identifier, label: `'${word}'`, categories });
}

// ---------------------------------------------------------------- statement keywords (reserved)

/** `latent`, `discrete`, `address`, `observe`: any sequence of them introduces a model site. */
export const SiteKeyword = createToken({ name: 'SiteKeyword', pattern: Lexer.NA, label: "'latent', 'discrete' or 'observe'" });

export const Model = keyword('Model', 'model');
export const Const = keyword('Const', 'const');
export const Size = keyword('Size', 'size');
export const Data = keyword('Data', 'data');
export const Memory = keyword('Memory', 'memory');
export const Param = keyword('Param', 'param');
export const Net = keyword('Net', 'net');
/** `neural nm = mlp(...) writes mem(key: k, value: v, gates: g)`: a Titans neural long-term memory. */
export const Neural = keyword('Neural', 'neural');
export const Let = keyword('Let', 'let');
export const Latent = keyword('Latent', 'latent', [SiteKeyword]);
export const Discrete = keyword('Discrete', 'discrete', [SiteKeyword]);
export const Address = keyword('Address', 'address', [SiteKeyword]);
export const Observe = keyword('Observe', 'observe', [SiteKeyword]);
export const Guide = keyword('Guide', 'guide');
export const Train = keyword('Train', 'train');

// ---------------------------------------------------------------- element types (soft keywords)

/**
 * `binary real int cat` are keywords only in type position: they are also in the `Identifier`
 * category, so wherever a name is expected they are accepted as names.
 */
export const ElemType = createToken({ name: 'ElemType', pattern: Lexer.NA, label: 'a type' });
export const BinaryType = keyword('BinaryType', 'binary', [ElemType, Identifier]);
export const RealType = keyword('RealType', 'real', [ElemType, Identifier]);
export const IntType = keyword('IntType', 'int', [ElemType, Identifier]);
export const CatType = keyword('CatType', 'cat', [ElemType, Identifier]);
/** `writes` in a `neural` declaration: a keyword only there (also a name elsewhere). */
export const Writes = keyword('Writes', 'writes', [Identifier]);

// ---------------------------------------------------------------- literals and punctuation

export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/,
  label: 'a number',
});

function punct(name: string, text: string, categories: TokenType[] = []): TokenType {
  return createToken({ name, pattern: text, label: `'${text}'`, categories });
}

export const AdditiveOp = createToken({ name: 'AdditiveOp', pattern: Lexer.NA, label: "'+' or '-'" });
export const MultiplicativeOp = createToken({ name: 'MultiplicativeOp', pattern: Lexer.NA, label: "'*', '/' or '@'" });

export const Shift = punct('Shift', '>>');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const Comma = punct('Comma', ',');
/** `g(x).s14`: reads the output `s14` (a `tap`) of a net application. */
export const Dot = punct('Dot', '.');
export const Colon = punct('Colon', ':');
export const Equals = punct('Equals', '=');
export const Tilde = punct('Tilde', '~');
export const Plus = punct('Plus', '+', [AdditiveOp]);
export const Minus = punct('Minus', '-', [AdditiveOp]);
export const Star = punct('Star', '*', [MultiplicativeOp]);
export const Slash = punct('Slash', '/', [MultiplicativeOp]);
export const At = punct('At', '@', [MultiplicativeOp]);

/** Statement-leading keywords, in the order the language reference lists them. */
export const statementKeywords: readonly TokenType[] = [
  Model,
  Const,
  Size,
  Data,
  Memory,
  Param,
  Net,
  Neural,
  Let,
  Latent,
  Discrete,
  Address,
  Observe,
  Guide,
  Train,
];

/** All tokens in lexing order: comments before `/`, keywords before `Identifier`. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  SiteKeyword,
  ...statementKeywords,
  ElemType,
  BinaryType,
  RealType,
  IntType,
  CatType,
  Writes,
  Identifier,
  NumberLit,
  AdditiveOp,
  MultiplicativeOp,
  Shift,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Dot,
  Colon,
  Equals,
  Tilde,
  Plus,
  Minus,
  Star,
  Slash,
  At,
];

/** One lexer, reused. `positionTracking: 'full'` gives lines, which error messages use to tell "missing" from "unexpected". */
export const vmmLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });
