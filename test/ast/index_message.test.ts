/** The syntax error of an index with a comma (issue #25): it names the index, not a list. */
import { describe, expect, it } from 'vitest';
import { parse } from '../../src/ast/parse.ts';

describe('an index with two expressions', () => {
  it("says that an index holds one expression, not \"expected ',' or ']'\"", () => {
    const src = 'model t\ndata x : binary[4]\nmemory mem : binary[3, 4]\nlet r = mem[a, 1]\n';
    const messages = parse(src).diagnostics.map((d) => d.message);
    expect(messages[0]).toBe("expected ']' after 'a' to close the index (one index per pair of brackets: x[i][j], not x[i, j]), found ','");
  });

  it('an index left open on another token says what closes it', () => {
    const messages = parse('model t\nlet r = mem[a b]\n').diagnostics.map((d) => d.message);
    expect(messages[0]).toMatch(/^expected '\]' after 'a' to close the index, found 'b'$/);
  });
});
