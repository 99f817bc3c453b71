/**
 * Renders diagnostics the way stanc3 and rustc do:
 *
 *     models/x.vmm:7:24: error[VMM2003]: concat: ...
 *        7 | latent z ~ Normal(prior(g(mem[a])))
 *          |                        ^^^^^^^^^
 *     note: ...
 *
 * Positions are computed here from offsets. Lines end at LF, CRLF or a lone CR. In the rendered
 * text, columns are display columns, as GCC's `-fdiagnostics-column-unit=display`: what a terminal
 * shows, with tabs expanded to stops of 8, wide characters (CJK, emoji) counted twice. The source
 * line echoed under a diagnostic is sanitized (see `displayLine`): a model file cannot send escape
 * sequences to the user's terminal, and invisible or bidirectional characters are shown by name.
 * `SourceFile.position` keeps UTF-16 columns for programs (editors, the language server).
 */
import stringWidth from 'string-width';
import type { Span } from './span.ts';
import type { Diagnostic } from './diagnostic.ts';

/** Tab stops of the echoed source line (as a terminal's default). */
export const TAB_WIDTH = 8;
/** Diagnostics rendered per file; the rest are counted in one line. */
export const MAX_RENDERED = 50;
/** Echoed source lines wider than this are shown as a window around the span. */
export const MAX_LINE_WIDTH = 160;

export class SourceFile {
  private readonly lineStarts: number[];
  constructor(
    readonly path: string,
    readonly text: string,
  ) {
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) this.lineStarts.push(i + 1);
    }
  }

  /** 1-based line and column of an offset (clamped into the file); the column counts UTF-16 code units. */
  position(offset: number): { line: number; col: number } {
    const off = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= off) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: off - this.lineStarts[lo]! + 1 };
  }

  /** 1-based line and display column of an offset, as a terminal shows the sanitized line. */
  displayPosition(offset: number): { line: number; col: number } {
    const { line, col } = this.position(offset);
    return { line, col: displayLine(this.lineText(line)).columnOf(col - 1) + 1 };
  }

  /** The text of a line without its line ending. */
  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    const end = next === undefined ? this.text.length : next - 1;
    return this.text.slice(start, end).replace(/\r$/, '');
  }
}

/** Bidirectional formatting characters: they reorder what a terminal shows ("Trojan Source", CVE-2021-42574). */
export const BIDI_CONTROLS = new Set([0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]);

/** Characters a terminal shows as nothing (or as a line break it should not): named in the echo. */
const INVISIBLE = new Set([0x00ad, 0x180e, 0x200b, 0x200c, 0x200d, 0x2028, 0x2029, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff]);

function isControl(cp: number): boolean {
  return cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0);
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, '0');
}

/** How one code point is shown, or undefined when it is shown as itself. */
function escapeCodePoint(cp: number, inEmoji: boolean): string | undefined {
  if (isControl(cp)) return `\\u{${cp.toString(16)}}`;
  if (BIDI_CONTROLS.has(cp)) return `<U+${hex(cp)}>`;
  // A zero-width joiner inside an emoji sequence (a family, a flag) is part of the picture.
  if (cp === 0x200d && inEmoji) return undefined;
  if (INVISIBLE.has(cp)) return `<U+${hex(cp)}>`;
  return undefined;
}

export interface DisplayLine {
  /** The line as shown: tabs expanded, control characters escaped, invisible ones named. */
  text: string;
  /** The display column (0-based) where the UTF-16 offset `i` of the original line starts. */
  columnOf(i: number): number;
  /** The shown text of the display columns [from, to); a piece cut at either end is shown as blanks. */
  slice(from: number, to: number): string;
}

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;

/** A source line made safe for a terminal, with a map from source offsets to display columns. */
export function displayLine(line: string): DisplayLine {
  const cols = new Array<number>(line.length + 1);
  const pieces: { text: string; col: number; width: number }[] = [];
  let out = '';
  let col = 0;
  const emit = (text: string) => {
    const width = stringWidth(text);
    pieces.push({ text, col, width });
    out += text;
    col += width;
  };
  for (const { segment, index } of segmenter.segment(line)) {
    if (segment === '\t') {
      cols[index] = col;
      emit(' '.repeat(TAB_WIDTH - (col % TAB_WIDTH)));
      continue;
    }
    const inEmoji = PICTOGRAPHIC.test(segment);
    let safe = true;
    for (const ch of segment) if (escapeCodePoint(ch.codePointAt(0)!, inEmoji) !== undefined) safe = false;
    if (safe) {
      for (let j = 0; j < segment.length; j++) cols[index + j] = col;
      emit(segment);
      continue;
    }
    // A cluster with a control or invisible character: each code point on its own.
    let j = index;
    for (const ch of segment) {
      const shown = escapeCodePoint(ch.codePointAt(0)!, inEmoji) ?? ch;
      for (let u = 0; u < ch.length; u++) cols[j + u] = col;
      emit(shown);
      j += ch.length;
    }
  }
  cols[line.length] = col;
  return {
    text: out,
    columnOf: (i) => cols[Math.max(0, Math.min(i, line.length))]!,
    slice: (from, to) =>
      pieces
        .filter((p) => p.col + p.width > from && p.col < to)
        // A piece cut by the window (a wide character, an escape) becomes blanks, so columns still line up.
        .map((p) => (p.col >= from && p.col + p.width <= to ? p.text : ' '.repeat(Math.min(to, p.col + p.width) - Math.max(from, p.col))))
        .join(''),
  };
}

function excerpt(src: SourceFile, span: Span): string[] {
  const { line, col } = src.position(span.start);
  const end = src.position(Math.max(span.start, span.end));
  const raw = src.lineText(line);
  const shown = displayLine(raw);
  const from = shown.columnOf(col - 1);
  // An empty span gets one caret; a span running past its first line is underlined to the line's end.
  const to = span.end <= span.start ? from + 1 : end.line === line ? shown.columnOf(end.col - 1) : shown.columnOf(raw.length);
  const width = Math.max(1, to - from);
  const gutter = String(line).length;
  const pad = ' '.repeat(gutter);
  const total = shown.columnOf(raw.length);
  if (total <= MAX_LINE_WIDTH) return [`${pad} |`, `${line} | ${shown.text}`, `${pad} | ${' '.repeat(from)}${'^'.repeat(width)}`];
  // A long line: a window of it around the start of the span, with '...' where it is cut.
  const lo = Math.max(0, Math.min(from - 20, total - MAX_LINE_WIDTH));
  const hi = lo + MAX_LINE_WIDTH;
  let text = shown.slice(lo, hi);
  const lead = lo > 0 ? '...' : '';
  const caretAt = from - lo + lead.length;
  text = `${lead}${text}${hi < total ? '...' : ''}`;
  const carets = Math.max(1, Math.min(width, hi - from));
  return [`${pad} |`, `${line} | ${text}`, `${pad} | ${' '.repeat(caretAt)}${'^'.repeat(carets)}`];
}

/** Text made safe for a terminal, line by line (a message may quote the user's text, a path may hold anything). */
export function safeText(s: string): string {
  return s
    .split('\n')
    .map((l) => displayLine(l).text)
    .join('\n');
}

export function renderDiagnostic(src: SourceFile, d: Diagnostic): string {
  const { line, col } = src.displayPosition(d.span.start);
  const out = [`${safeText(src.path)}:${line}:${col}: ${d.severity}[${d.code}]: ${safeText(d.message)}`, ...excerpt(src, d.span)];
  for (const n of d.notes) {
    if (n.span) {
      const p = src.displayPosition(n.span.start);
      out.push(`${safeText(src.path)}:${p.line}:${p.col}: note: ${safeText(n.message)}`, ...excerpt(src, n.span));
    } else {
      out.push(`  = note: ${safeText(n.message)}`);
    }
  }
  return out.join('\n');
}

/**
 * All diagnostics of one file, in source order (the first `limit`, then how many more there
 * are), then a summary line counting all of them.
 */
export function renderDiagnostics(src: SourceFile, diags: readonly Diagnostic[], limit = MAX_RENDERED): string {
  const sorted = [...diags].sort((a, b) => a.span.start - b.span.start || a.code.localeCompare(b.code));
  const errors = diags.filter((d) => d.severity === 'error').length;
  const warnings = diags.filter((d) => d.severity === 'warning').length;
  const parts = sorted.slice(0, limit).map((d) => renderDiagnostic(src, d));
  if (sorted.length > limit) {
    const rest = sorted.length - limit;
    parts.push(`${safeText(src.path)}: ${rest} more diagnostic${rest === 1 ? '' : 's'} not shown (the first ${limit} are above)`);
  }
  const summary: string[] = [];
  if (errors) summary.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (warnings) summary.push(`${warnings} warning${warnings === 1 ? '' : 's'}`);
  if (summary.length) parts.push(`${safeText(src.path)}: ${summary.join(', ')}`);
  return parts.join('\n\n');
}
