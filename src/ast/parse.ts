/**
 * `parse`: source text -> untyped AST (`Program`) and syntax diagnostics. The front of the
 * pipeline: lexing (grammar/tokens.ts), parsing with error recovery (grammar/parser.ts), then the
 * CST -> AST builder (./visitor.ts). It never throws on user input: every problem is a diagnostic,
 * and the program holds every statement that could be parsed, so several independent errors are
 * reported in one run.
 */
import type { IRecognitionException, IToken } from 'chevrotain';
import type { ProgramCstNode } from '../../grammar/cst.d.ts';
import { MISSING_CLOSER_PREFIX, parser } from '../../grammar/parser.ts';
import { Identifier, LBrace, LBracket, LParen, Minus, NumberLit, RBrace, RBracket, RParen, vmmLexer } from '../../grammar/tokens.ts';
import { error, InternalError, warning, type Diagnostic, type DiagnosticNote } from '../diagnostics/diagnostic.ts';
import { BIDI_CONTROLS } from '../diagnostics/render.ts';
import type { Expr, Program, Span } from './types.ts';
import { toAst } from './visitor.ts';

// The syntax codes (1xxx) are listed with the others in src/diagnostics/codes.ts.
export { SYNTAX_CODES } from '../diagnostics/codes.ts';

const UNEXPECTED_CHARACTER = 'VMM1001';
const SYNTAX_ERROR = 'VMM1002';
const MISSING_CLOSER = 'VMM1003';
// VMM1004 (statement not allowed here) is reported by the AST builder, ./visitor.ts.

/** Deeper nesting than this is refused before parsing (the parser and printer are recursive). */
const MAX_NESTING = 64;
/**
 * Expressions deeper than this (counting every operation of a chain like `x * x * ...`) are refused
 * after parsing: the checker, the IR builder and the printers walk expressions recursively.
 */
export const MAX_EXPR_DEPTH = 256;
const TOO_DEEP = 'VMM1005';
const BIDI_IN_COMMENT = 'VMM1006';

export interface ParseResult {
  program: Program;
  diagnostics: Diagnostic[];
}

/** Parses one `.vmm` file. Diagnostics are sorted by position; spans lie inside `source`. */
export function parse(source: string): ParseResult {
  const emptyProgram = (): Program => ({ kind: 'Program', items: [], span: { start: 0, end: source.length } });
  const lexed = vmmLexer.tokenize(source);
  const lexDiags = lexed.errors.map((e) => unexpectedCharacter(source, e.offset, e.length));

  const tooDeep = nestingError(lexed.tokens);
  if (tooDeep) return { program: emptyProgram(), diagnostics: sortDiagnostics([...lexDiags, tooDeep]) };

  let syntaxDiags: Diagnostic[];
  let cst: ProgramCstNode;
  try {
    parser.input = lexed.tokens;
    // chevrotain types every rule's result as CstNode; cst.d.ts is generated from this very rule.
    cst = parser.program() as ProgramCstNode;
    syntaxDiags = parser.errors.map((e) => recognitionDiagnostic(source, lexed.tokens, e));
  } catch (e) {
    if (e instanceof RangeError) {
      const d = error(SYNTAX_ERROR, 'the file is nested too deeply to parse', { start: 0, end: 0 });
      return { program: emptyProgram(), diagnostics: sortDiagnostics([...lexDiags, d]) };
    }
    throw new InternalError('parse', e instanceof Error ? e.message : String(e));
  }

  const reported = dropCascades(source, lexDiags, syntaxDiags, parser.errors);
  try {
    const comments = lexed.groups['comments'] ?? [];
    const built = toAst(cst, comments, source);
    const bounded = boundDepth(built.program);
    return { program: bounded.program, diagnostics: sortDiagnostics([...reported, ...built.diagnostics, ...bounded.diagnostics, ...bidiWarnings(comments)]) };
  } catch (e) {
    // A broken CST after a syntax error must not hide that error behind a crash.
    if (reported.length > 0) return { program: emptyProgram(), diagnostics: sortDiagnostics(reported) };
    throw new InternalError('parse', `building the AST: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// ---------------------------------------------------------------- lexer errors

function showChars(text: string): string {
  const shown = [...text]
    .map((ch) => {
      const cp = ch.codePointAt(0)!;
      return cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) ? `\\u{${cp.toString(16)}}` : ch;
    })
    .join('');
  return shown.length > 20 ? `${shown.slice(0, 20)}...` : shown;
}

function unexpectedCharacter(source: string, offset: number, length: number): Diagnostic {
  const text = source.slice(offset, offset + length);
  const span = { start: offset, end: offset + length };
  const many = [...text].length > 1;
  const notes: DiagnosticNote[] = [];
  if (text.startsWith('>')) notes.push({ message: "nets are chained with '>>'" });
  if (text.startsWith('"') || text.startsWith("'")) notes.push({ message: 'the language has no strings; names and numbers only' });
  const msg = many ? `unexpected characters '${showChars(text)}'` : `unexpected character '${showChars(text)}'`;
  return error(UNEXPECTED_CHARACTER, msg, span, notes);
}

// ---------------------------------------------------------------- parser errors

function isReal(t: IToken | undefined): t is IToken {
  return t !== undefined && t.isInsertedInRecovery !== true && Number.isFinite(t.startOffset) && t.image.length > 0;
}

function tokenEnd(t: IToken): number {
  return t.startOffset + t.image.length;
}

/** The token before the error, when chevrotain recorded one. */
function previousOf(e: IRecognitionException): IToken | undefined {
  const prev = (e as IRecognitionException & { previousToken?: IToken }).previousToken;
  return isReal(prev) ? prev : undefined;
}

/** Where a parse error is shown: the offending token, or just after the last token at end of file. */
function errorSpan(source: string, e: IRecognitionException): Span {
  if (isReal(e.token)) return { start: e.token.startOffset, end: tokenEnd(e.token) };
  const prev = previousOf(e);
  const at = prev ? tokenEnd(prev) : source.length;
  return { start: at, end: at };
}

const openerOf = new Map([
  [RParen, LParen],
  [RBracket, LBracket],
  [RBrace, LBrace],
]);

/** The innermost opening bracket of the kind `closer` closes that is still open before offset `before`. */
function unclosedOpener(tokens: readonly IToken[], closerText: string, before: number): IToken | undefined {
  const stack: IToken[] = [];
  for (const t of tokens) {
    if (t.startOffset >= before) break;
    const type = t.tokenType;
    if (type === LParen || type === LBracket || type === LBrace) stack.push(t);
    else if (openerOf.has(type)) {
      const want = openerOf.get(type);
      const i = stack.map((o) => o.tokenType).lastIndexOf(want!);
      if (i >= 0) stack.length = i;
    }
  }
  const want = closerText === ')' ? LParen : closerText === ']' ? LBracket : LBrace;
  for (let i = stack.length - 1; i >= 0; i--) if (stack[i]!.tokenType === want) return stack[i];
  return undefined;
}

function recognitionDiagnostic(source: string, tokens: readonly IToken[], e: IRecognitionException): Diagnostic {
  if (e.message.startsWith(MISSING_CLOSER_PREFIX)) {
    const closer = e.message.slice(MISSING_CLOSER_PREFIX.length).replace(/'/g, '');
    const prev = previousOf(e);
    const at = prev ? tokenEnd(prev) : errorSpan(source, e).start;
    const opener = unclosedOpener(tokens, closer, at);
    const notes: DiagnosticNote[] = opener
      ? [{ message: `to close the '${opener.image}' opened here`, span: { start: opener.startOffset, end: tokenEnd(opener) } }]
      : [];
    return error(MISSING_CLOSER, `missing '${closer}'`, { start: at, end: at }, notes);
  }
  const span = errorSpan(source, e);
  const bad = isReal(e.token) ? e.token : undefined;
  if (bad && openerOf.has(bad.tokenType) && !unclosedOpener(tokens, bad.image, bad.startOffset)) {
    return error(SYNTAX_ERROR, `unmatched '${bad.image}'`, span);
  }
  const stray = strayName(tokens, e);
  if (stray) return stray;
  return error(SYNTAX_ERROR, e.message, span);
}

/**
 * `const D = 28 x 28` or `size M N`: a name after a complete statement on the same line starts a
 * bare statement (`x ~ ...` / `x = ...`) in the super grammar, which then fails on the next token.
 * The real mistake is the name itself, so the error points at it.
 */
function strayName(tokens: readonly IToken[], e: IRecognitionException): Diagnostic | undefined {
  const stack = e.context?.ruleStack ?? [];
  const name = previousOf(e);
  if (e.name !== 'NoViableAltException' || stack[stack.length - 1] !== 'bareStmt' || !name || name.tokenType !== Identifier) return undefined;
  const i = tokens.indexOf(name);
  const before = i > 0 ? tokens[i - 1] : undefined;
  const isName = before?.tokenType.CATEGORIES?.includes(Identifier) === true;
  if (!before || (!endsStatement.has(before.tokenType) && !isName)) return undefined;
  if (before.endLine !== name.startLine) return undefined;
  return error(SYNTAX_ERROR, `unexpected name '${name.image}' after '${before.image}'`, { start: name.startOffset, end: tokenEnd(name) });
}

/** Tokens a statement can end with. */
const endsStatement = new Set([Identifier, NumberLit, RParen, RBracket]);

/** 0-based line of each offset, by binary search over line starts (LF, CRLF or CR). */
function lineIndex(source: string): (offset: number) => number {
  const starts = [0];
  // LF, CRLF and a lone CR end a line, as in the renderer (src/diagnostics/render.ts).
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c === 10 || (c === 13 && source.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
}

/**
 * After one error, chevrotain re-synchronises and may report follow-on errors on the rest of the
 * same statement, and a character the lexer dropped often makes the statement unparsable. So
 * every lexer error is kept; a parse error is dropped when a lexer error lies between the token
 * before it and its own token (the parser tripped over the hole), or, in source order, when its
 * own line or the line of the token before it already has an earlier error. Identical
 * diagnostics are dropped. `syntax[i]` is the diagnostic of `errors[i]`.
 */
function dropCascades(
  source: string,
  lexical: readonly Diagnostic[],
  syntax: readonly Diagnostic[],
  errors: readonly IRecognitionException[],
): Diagnostic[] {
  const lineOf = lineIndex(source);
  const all = [
    ...lexical.map((d) => ({ d, prev: undefined as IToken | undefined, at: d.span.start, lexical: true })),
    ...syntax.map((d, i) => {
      const e = errors[i]!;
      return { d, prev: previousOf(e), at: isReal(e.token) ? e.token.startOffset : source.length, lexical: false };
    }),
  ].sort((a, b) => a.d.span.start - b.d.span.start);
  const lines = new Set<number>();
  const seen = new Set<string>();
  const kept: Diagnostic[] = [];
  const afterHole = (prev: IToken | undefined, at: number) =>
    lexical.some((l) => l.span.start >= (prev ? tokenEnd(prev) : 0) && l.span.start <= at);
  for (const { d, prev, at, lexical: isLexical } of all) {
    const key = `${d.code}:${d.span.start}:${d.span.end}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (!isLexical && afterHole(prev, at)) continue;
    const line = lineOf(d.span.start);
    if (!isLexical && (lines.has(line) || (prev !== undefined && lines.has(lineOf(prev.startOffset))))) continue;
    lines.add(line);
    kept.push(d);
  }
  return kept;
}

/** Refuses inputs nested deeper than MAX_NESTING (brackets, or runs of unary minus) before they reach the recursive parser. */
function nestingError(tokens: readonly IToken[]): Diagnostic | undefined {
  let depth = 0;
  let minusRun = 0;
  for (const t of tokens) {
    const type = t.tokenType;
    if (type === LParen || type === LBracket || type === LBrace) depth++;
    else if (type === RParen || type === RBracket || type === RBrace) depth = Math.max(0, depth - 1);
    minusRun = type === Minus ? minusRun + 1 : 0;
    if (depth > MAX_NESTING || minusRun > MAX_NESTING) {
      return error(SYNTAX_ERROR, `expression nested too deeply (more than ${MAX_NESTING} levels)`, {
        start: t.startOffset,
        end: tokenEnd(t),
      });
    }
  }
  return undefined;
}

function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return diags.sort((a, b) => a.span.start - b.span.start || a.code.localeCompare(b.code));
}

// ---------------------------------------------------------------- depth and comments

const EXPR_KINDS = new Set(['Number', 'Ident', 'Call', 'Index', 'Member', 'Binary', 'Unary']);

/**
 * Refuses top-level items whose expressions are nested deeper than MAX_EXPR_DEPTH (a
 * left-associative chain of thousands of terms parses without recursion, but every later stage
 * walks it recursively). The walk is iterative; an item that is too deep is dropped from the
 * program so that no later stage sees it.
 */
function boundDepth(program: Program): { program: Program; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const items = program.items.filter((item) => {
    const stack: [unknown, number, Expr | undefined][] = [[item, 0, undefined]];
    while (stack.length) {
      const [node, depth, root] = stack.pop()!;
      if (Array.isArray(node)) {
        for (const x of node) stack.push([x, depth, root]);
        continue;
      }
      if (node === null || typeof node !== 'object') continue;
      const isExpr = EXPR_KINDS.has((node as { kind?: string }).kind ?? '');
      const d = isExpr ? depth + 1 : depth;
      const r = isExpr && depth === 0 ? (node as Expr) : root;
      if (d > MAX_EXPR_DEPTH) {
        const at = r!.span.start;
        diagnostics.push(
          error(TOO_DEEP, `expression too deep: more than ${MAX_EXPR_DEPTH} nested operations; split it into several \`let\`s`, { start: at, end: at + 1 }),
        );
        return false;
      }
      for (const [k, v] of Object.entries(node)) if (k !== 'span' && typeof v === 'object') stack.push([v, isExpr ? d : 0, isExpr ? r : undefined]);
    }
    return true;
  });
  return { program: diagnostics.length ? { ...program, items } : program, diagnostics };
}

/** A warning for every comment holding a bidirectional control character (CVE-2021-42574). */
function bidiWarnings(comments: readonly IToken[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const c of comments) {
    for (let i = 0; i < c.image.length; i++) {
      const cp = c.image.charCodeAt(i);
      if (!BIDI_CONTROLS.has(cp)) continue;
      const at = c.startOffset + i;
      out.push(
        warning(
          BIDI_IN_COMMENT,
          `this comment holds the bidirectional control character U+${cp.toString(16).toUpperCase().padStart(4, '0')}: an editor may show the code around it in another order than the compiler reads it`,
          { start: at, end: at + 1 },
          [{ message: 'remove it, unless the comment really is right-to-left text' }],
        ),
      );
      break;
    }
  }
  return out;
}
