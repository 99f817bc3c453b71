import { describe, expect, it } from 'vitest';
import { markdownTable } from '../../src/report/markdown.ts';

describe('markdownTable', () => {
  it('pads columns to equal width, right-aligning numeric columns', () => {
    const t = markdownTable(
      ['model', 'M', 'NLL'],
      [
        ['VMA (VIMCO)', 32, 88.25],
        ['soft attention', 2500, 101.5],
      ],
      { digits: 2 },
    );
    expect(t).toBe(
      [
        '| model          |    M |    NLL |',
        '| -------------- | ---: | -----: |',
        '| VMA (VIMCO)    |   32 |  88.25 |',
        '| soft attention | 2500 | 101.50 |',
        '',
      ].join('\n'),
    );
    const lines = t.trimEnd().split('\n');
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });

  it('escapes pipes, fills short rows, honours explicit alignment', () => {
    const t = markdownTable(['a|b', 'c'], [['x|y'], [null, 'z']], { align: ['center', 'right'] });
    expect(t.split('\n')[0]).toBe('| a\\|b | c |'.replace('| c |', '|   c |'));
    expect(t).toContain(':--:');
    expect(t).toContain('x\\|y');
    expect(() => markdownTable(['a'], [['1', '2']])).toThrow(RangeError);
  });
});
