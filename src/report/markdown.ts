/**
 * Markdown tables with aligned columns, readable as plain text and rendered by any
 * GitHub-flavoured Markdown viewer.
 */

export type Align = 'left' | 'right' | 'center';
export type Cell = string | number | boolean | null | undefined;

export interface MarkdownTableOptions {
  /** Per-column alignment; default: right for columns whose cells are all numbers, else left. */
  readonly align?: ReadonlyArray<Align | undefined>;
  /** Fixed decimals for numbers that are not integers (default: shortest round-trip form). */
  readonly digits?: number;
}

/** Display width of a string (code points; good enough for tables of ASCII and symbols). */
function width(s: string): number {
  return [...s].length;
}

function cellText(c: Cell, digits: number | undefined): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'number') {
    if (Number.isNaN(c)) return 'NaN';
    if (!Number.isFinite(c)) return c > 0 ? '∞' : '-∞';
    if (digits !== undefined && !Number.isInteger(c)) return c.toFixed(digits);
    return String(c);
  }
  // Pipes would end the cell and newlines the row.
  return String(c).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function pad(s: string, w: number, align: Align): string {
  const gap = w - width(s);
  if (gap <= 0) return s;
  if (align === 'right') return ' '.repeat(gap) + s;
  if (align === 'center') return ' '.repeat(Math.floor(gap / 2)) + s + ' '.repeat(Math.ceil(gap / 2));
  return s + ' '.repeat(gap);
}

/**
 * A Markdown table with padded, aligned columns. Rows shorter than the header are padded with
 * empty cells; longer rows are an error.
 */
export function markdownTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<Cell>>, opts: MarkdownTableOptions = {}): string {
  const n = headers.length;
  if (n === 0) throw new RangeError('markdownTable: at least one column is needed');
  rows.forEach((r, i) => {
    if (r.length > n) throw new RangeError(`markdownTable: row ${i} has ${r.length} cells but there are ${n} headers`);
  });
  const head = headers.map((h) => cellText(h, undefined));
  const body = rows.map((r) => headers.map((_, j) => cellText(r[j], opts.digits)));
  const align: Align[] = headers.map((_, j) => {
    const given = opts.align?.[j];
    if (given) return given;
    const cells = rows.map((r) => r[j]).filter((c) => c !== null && c !== undefined && c !== '');
    return cells.length > 0 && cells.every((c) => typeof c === 'number') ? 'right' : 'left';
  });
  // At least 3 wide so the delimiter row can carry its colons.
  const widths = headers.map((_, j) => Math.max(3, width(head[j]!), ...body.map((r) => width(r[j]!))));
  const line = (cells: string[]): string => `| ${cells.map((c, j) => pad(c, widths[j]!, align[j]!)).join(' | ')} |`;
  const rule = widths.map((w, j) => {
    const a = align[j]!;
    if (a === 'right') return '-'.repeat(w - 1) + ':';
    if (a === 'center') return ':' + '-'.repeat(w - 2) + ':';
    return '-'.repeat(w);
  });
  return [line(head), `| ${rule.join(' | ')} |`, ...body.map(line)].join('\n') + '\n';
}
