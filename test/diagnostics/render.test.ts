/**
 * Rendering is safe for a terminal: control characters escaped, invisible and bidirectional ones
 * named, tabs expanded and wide characters counted so that carets line up, CR-only line endings,
 * a cap on the number of diagnostics, long lines shown as a window.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { error, type Diagnostic } from '../../src/diagnostics/diagnostic.ts';
import { displayLine, MAX_RENDERED, renderDiagnostic, renderDiagnostics, SourceFile } from '../../src/diagnostics/render.ts';

/** The diagnostic at the first occurrence of `needle`, spanning it. */
function at(text: string, needle: string, message = 'here'): Diagnostic {
  const start = text.indexOf(needle);
  return error('VMM2001', message, { start, end: start + needle.length });
}

/** The column of the first caret and the number of carets in a rendered excerpt. */
function caret(rendered: string): { col: number; width: number; line: string } {
  const lines = rendered.split('\n');
  const c = lines[3]!.slice(lines[3]!.indexOf('|') + 2);
  return { col: c.indexOf('^'), width: c.trim().length, line: lines[2]!.slice(lines[2]!.indexOf('|') + 2) };
}

describe('the echoed source line', () => {
  it('shows ESC and BEL escaped, so a file cannot retitle or clear the terminal', () => {
    const text = 'let a = b \u001b]0;pwned\u0007 \u001b[2J zz';
    const out = renderDiagnostic(new SourceFile('t.vmm', text), at(text, 'zz'));
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(out).toContain('\\u{1b}]0;pwned\\u{7} \\u{1b}[2J zz');
    const c = caret(out);
    expect(c.line.slice(c.col, c.col + 2)).toBe('zz');
  });

  it('names invisible and bidirectional characters', () => {
    const shown = displayLine('a\u200bb \u202e c \u2066 d\u00ad').text;
    expect(shown).toBe('a<U+200B>b <U+202E> c <U+2066> d<U+00AD>');
  });

  it('keeps a zero-width joiner inside an emoji, and counts the emoji as two columns', () => {
    const family = '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}';
    const line = displayLine(`${family} x`);
    expect(line.text).toBe(`${family} x`);
    expect(line.columnOf(family.length + 1)).toBe(3);
  });

  it('expands tabs to stops of 8 and counts wide characters twice', () => {
    const text = '\tlet \u6f22\u5b57 = zz';
    const d = at(text, 'zz');
    const src = new SourceFile('t.vmm', text);
    const out = renderDiagnostic(src, d);
    const c = caret(out);
    expect(c.line).toBe('        let \u6f22\u5b57 = zz');
    expect(c.col).toBe(8 + 4 + 4 + 3);
    expect(c.width).toBe(2);
    expect(out.split('\n')[0]).toBe(`t.vmm:1:${8 + 4 + 4 + 3 + 1}: error[VMM2001]: here`);
    // Programs (editors, the language server) still get UTF-16 columns.
    expect(src.position(d.span.start)).toEqual({ line: 1, col: 11 });
  });

  it('puts one caret under an empty span, and underlines a span running past its line to the line end', () => {
    const text = 'let a = b c\nnext line';
    const empty = caret(renderDiagnostic(new SourceFile('t.vmm', text), error('VMM1003', 'missing', { start: 4, end: 4 })));
    expect([empty.col, empty.width]).toEqual([4, 1]);
    const long = caret(renderDiagnostic(new SourceFile('t.vmm', text), error('VMM2001', 'x', { start: 8, end: 15 })));
    expect([long.col, long.width]).toEqual([8, 3]);
  });

  it('treats a lone CR as a line break, like LF and CRLF', () => {
    const text = 'a\rb\r\nc\nzz';
    const src = new SourceFile('t.vmm', text);
    expect(src.position(text.indexOf('zz'))).toEqual({ line: 4, col: 1 });
    expect(src.position(text.indexOf('b'))).toEqual({ line: 2, col: 1 });
    expect(src.lineText(2)).toBe('b');
  });

  it('shows a window of a very long line, the caret still under the span', () => {
    const text = `let w = ${'z * '.repeat(2000)}zz * z`;
    const out = renderDiagnostic(new SourceFile('t.vmm', text), at(text, 'zz'));
    const c = caret(out);
    expect(c.line.length).toBeLessThan(200);
    expect(c.line.startsWith('...')).toBe(true);
    expect(c.line.slice(c.col, c.col + 2)).toBe('zz');
  });

  it('escapes control characters in messages and paths too', () => {
    const text = 'x';
    const out = renderDiagnostic(new SourceFile('a\u001b[2Jb.vmm', text), error('VMM2001', 'unknown `\u0007`', { start: 0, end: 1 }));
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
  });
});

describe('renderDiagnostics', () => {
  it(`shows the first ${MAX_RENDERED} diagnostics of a file, then how many more, and counts all`, () => {
    const text = Array.from({ length: 120 }, (_, i) => `zz${i}`).join('\n');
    const diags = Array.from({ length: 120 }, (_, i) => at(text, `zz${i}`));
    const out = renderDiagnostics(new SourceFile('t.vmm', text), diags);
    expect(out.match(/error\[VMM2001\]/g)).toHaveLength(MAX_RENDERED);
    expect(out).toContain(`t.vmm: ${120 - MAX_RENDERED} more diagnostics not shown`);
    expect(out.endsWith('t.vmm: 120 errors')).toBe(true);
  });
});

describe('property: whatever the file holds, the rendered text holds no control character but line breaks', () => {
  it('for any text and any span in it', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.nat(), fc.nat(), (text, a, b) => {
        const start = text.length ? a % (text.length + 1) : 0;
        const end = Math.min(text.length, start + (b % 8));
        const out = renderDiagnostics(new SourceFile('t.vmm', text), [error('VMM2001', `about \`${text.slice(start, end)}\``, { start, end })]);
        expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      }),
      { numRuns: 300 },
    );
  });
});
