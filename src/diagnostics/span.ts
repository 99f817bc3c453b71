/**
 * A place in a source file: half-open offsets `[start, end)` into its text. Line and column are
 * computed only when a diagnostic is rendered (./render.ts). The AST (src/ast/types.ts) and every
 * diagnostic carry spans; the type lives here, below both.
 */
export interface Span {
  start: number;
  end: number;
}
