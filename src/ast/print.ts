/**
 * The canonical text of a program, for `vmm fmt`: one statement per line; single spaces around
 * binary operators, `~`, `=` and the `:` of a declaration; `key: value` arguments; guide and train
 * bodies indented two spaces; a blank line between groups of different statement kinds (header,
 * consts/sizes, inputs, params, nets, model statements, guide, train); comments kept (leading lines
 * above their statement, trailing comments after it, aligned within a run of lines); numbers as
 * written; the fewest parentheses that keep the tree. Printing is idempotent:
 * `printProgram(parse(printProgram(p)).program) === printProgram(p)`.
 */
import type { BinaryOp, Call, Expr, GuideBlock, Item, Program, Setting, TrainBlock, TypeExpr } from './types.ts';

// ---------------------------------------------------------------- expressions

const ATOM = 4;
const UNARY = 3;

function binaryPrec(op: BinaryOp): number {
  return op === '+' || op === '-' ? 1 : 2;
}

function prec(e: Expr): number {
  if (e.kind === 'Binary') return binaryPrec(e.op);
  if (e.kind === 'Unary') return UNARY;
  return ATOM;
}

function wrap(e: Expr, parens: boolean): string {
  const s = printExpr(e);
  return parens ? `(${s})` : s;
}

/** An expression with the fewest parentheses that parse back to the same tree (binary operators are left-associative). */
export function printExpr(e: Expr): string {
  switch (e.kind) {
    case 'Number':
      return e.text;
    case 'Ident':
      return e.name;
    case 'Call':
      return printCall(e);
    case 'Index':
      return `${wrap(e.target, prec(e.target) < ATOM)}[${printExpr(e.index)}]`;
    case 'Member':
      return `${wrap(e.target, prec(e.target) < ATOM)}.${e.member.name}`;
    case 'Unary':
      // `-(-x)` rather than `--x`; a binary operand needs parentheses.
      return `-${wrap(e.operand, prec(e.operand) <= UNARY)}`;
    case 'Binary': {
      const p = binaryPrec(e.op);
      return `${wrap(e.left, prec(e.left) < p)} ${e.op} ${wrap(e.right, prec(e.right) <= p)}`;
    }
  }
}

function printCall(c: Call): string {
  const args = c.args.map((a) => (a.name ? `${a.name.name}: ${printExpr(a.value)}` : printExpr(a.value)));
  return `${c.callee.name}(${args.join(', ')})`;
}

export function printType(t: TypeExpr): string {
  const dims = t.dims.length ? `[${t.dims.map(printExpr).join(', ')}]` : '';
  const card = t.card ? `(${printExpr(t.card)})` : '';
  return `${t.elem}${dims}${card}`;
}

// ---------------------------------------------------------------- lines

/** A printed line: code at an indentation level, maybe a trailing comment; `null` is a blank line. */
type Line = { indent: number; code: string; comment?: string } | null;

const INDENT = '  ';

function comment(text: string): string {
  return `//${text}`;
}

function commentLines(texts: readonly string[] | undefined, indent: number): Line[] {
  return (texts ?? []).map((t) => ({ indent, code: comment(t) }));
}

function statementCode(item: Exclude<Item, GuideBlock | TrainBlock>): string {
  switch (item.kind) {
    case 'ModelHeader':
      return `model ${item.name.name}`;
    case 'Const':
      return `const ${item.name.name} = ${printExpr(item.value)}`;
    case 'Size':
      return `size ${item.names.map((n) => n.name).join(', ')}`;
    case 'Data':
      return `data ${item.name.name} : ${printType(item.type)}`;
    case 'Memory':
      return `memory ${item.name.name} : ${printType(item.type)}`;
    case 'Param':
      return `param ${item.name.name} : ${printType(item.type)}${item.init ? ` = ${printExpr(item.init)}` : ''}`;
    case 'Net':
      return `net ${item.name.name} = ${item.stages.map(printExpr).join(' >> ')}`;
    case 'Neural':
      return `neural ${item.name.name} = ${item.stages.map(printExpr).join(' >> ')} writes ${printCall(item.write)}`;
    case 'Let':
      return `let ${item.name.name} = ${printExpr(item.value)}`;
    case 'Site':
      return `${item.keywords.join(' ')} ${item.name.name}${item.type ? ` : ${printType(item.type)}` : ''} ~ ${printCall(item.dist)}`;
  }
}

function settingCode(s: Setting): string {
  return `${s.key.name} = ${printExpr(s.value)}`;
}

function blockLines(
  keyword: string,
  entries: { code: string; leading?: string[]; trailing?: string }[],
  block: GuideBlock | TrainBlock,
): Line[] {
  const out: Line[] = commentLines(block.leading, 0);
  const close = (code: string): Line => (block.trailing !== undefined ? { indent: 0, code, comment: block.trailing } : { indent: 0, code });
  if (entries.length === 0 && !block.closingComments?.length) {
    out.push(close(`${keyword} {}`));
    return out;
  }
  out.push({ indent: 0, code: `${keyword} {` });
  for (const e of entries) {
    out.push(...commentLines(e.leading, 1));
    out.push(e.trailing !== undefined ? { indent: 1, code: e.code, comment: e.trailing } : { indent: 1, code: e.code });
  }
  out.push(...commentLines(block.closingComments, 1));
  out.push(close('}'));
  return out;
}

function itemLines(item: Item): Line[] {
  if (item.kind === 'Guide') {
    const entries = item.body.map((e) => ({
      code: e.kind === 'Let' ? statementCode(e) : `${e.name.name} ~ ${printCall(e.dist)}`,
      leading: e.leading,
      trailing: e.trailing,
    }));
    return blockLines('guide', entries, item);
  }
  if (item.kind === 'Train') {
    const entries = item.settings.map((s) => ({ code: settingCode(s), leading: s.leading, trailing: s.trailing }));
    return blockLines('train', entries, item);
  }
  const line: Line = item.trailing !== undefined ? { indent: 0, code: statementCode(item), comment: item.trailing } : { indent: 0, code: statementCode(item) };
  return [...commentLines(item.leading, 0), line];
}

/** The groups a blank line separates. */
function group(item: Item): string {
  switch (item.kind) {
    case 'ModelHeader':
      return 'header';
    case 'Const':
    case 'Size':
      return 'consts';
    case 'Data':
    case 'Memory':
      return 'inputs';
    case 'Param':
      return 'params';
    case 'Net':
    case 'Neural':
      return 'nets';
    case 'Let':
    case 'Site':
      return 'model';
    case 'Guide':
      return 'guide';
    case 'Train':
      return 'train';
  }
}

/**
 * Renders lines; trailing comments of a run of lines without blank lines start in one column,
 * two spaces after the longest code among the lines of the run that have a comment.
 */
function render(lines: Line[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const first = lines[i];
    if (first === null || first === undefined) {
      out.push('');
      i++;
      continue;
    }
    let j = i;
    while (j < lines.length && lines[j] !== null) j++;
    const run = lines.slice(i, j) as Exclude<Line, null>[];
    const width = (l: Exclude<Line, null>) => INDENT.length * l.indent + l.code.length;
    const column = Math.max(0, ...run.filter((l) => l.comment !== undefined).map(width)) + 2;
    for (const l of run) {
      const code = INDENT.repeat(l.indent) + l.code;
      out.push(l.comment !== undefined ? `${code}${' '.repeat(column - code.length)}${comment(l.comment)}` : code);
    }
    i = j;
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** The canonical text of a program (ends with a newline; empty for an empty program). */
export function printProgram(p: Program): string {
  const lines: Line[] = [];
  let prev: Item | undefined;
  for (const item of p.items) {
    const isBlock = (i: Item) => i.kind === 'Guide' || i.kind === 'Train';
    if (prev && (group(prev) !== group(item) || isBlock(prev) || isBlock(item))) lines.push(null);
    lines.push(...itemLines(item));
    prev = item;
  }
  if (p.trailingComments?.length) {
    if (lines.length) lines.push(null);
    lines.push(...commentLines(p.trailingComments, 0));
  }
  return render(lines);
}

// ---------------------------------------------------------------- comparison

const META_KEYS = new Set(['span', 'elemSpan', 'keywordSpan', 'leading', 'trailing', 'trailingComments', 'closingComments']);

/** The AST without spans and comments (and without undefined fields), for round-trip comparisons. */
export function stripMeta(p: Program): unknown {
  return strip(p);
}

function strip(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(strip);
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (!META_KEYS.has(k) && v !== undefined) out[k] = strip(v);
    return out;
  }
  return x;
}
