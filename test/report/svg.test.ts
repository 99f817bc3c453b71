import { describe, expect, it } from 'vitest';
import { escapeXml, formatTick, lineChart, logTicks, niceTicks } from '../../src/report/svg.ts';

/**
 * A small well-formedness check: tags balance and nest, attributes are quoted, text has no raw
 * '<' or unescaped '&'. Returns the element names in document order.
 */
function checkXml(s: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < s.length && (m = re.exec(s))) {
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      if (/&(?!(amp|lt|gt|quot|#39);)/.test(m[5])) throw new Error(`unescaped & in text: ${m[5]}`);
      continue;
    }
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}>`);
    } else {
      names.push(name!);
      if (!selfClose) stack.push(name!);
    }
  }
  if (pos !== s.length) throw new Error(`cannot parse at ${pos}: ${s.slice(pos, pos + 40)}`);
  if (stack.length) throw new Error(`unclosed: ${stack.join(', ')}`);
  return names;
}

describe('lineChart', () => {
  const Ms = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2500];
  it('draws axes, ticks, legend and every series (KL vs M with the log M ceiling)', () => {
    const svg = lineChart({
      title: 'KL(q(a|x) || p(a)) vs memory size',
      xLabel: 'memory size M',
      yLabel: 'KL (nats)',
      logX: true,
      yIncludeZero: true,
      series: [
        { name: 'VMA <hard> & VIMCO', points: Ms.map((m) => [m, 0.8 * Math.log(m)] as const), errorBars: Ms.map(() => 0.1) },
        { name: 'soft attention', points: Ms.map((m) => [m, 0.3 * Math.log(m)] as const) },
        { name: 'log M', points: Ms.map((m) => [m, Math.log(m)] as const), dashed: true },
      ],
    });
    const names = checkXml(svg);
    expect(names[0]).toBe('svg');
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('VMA &lt;hard&gt; &amp; VIMCO');
    expect(svg).toContain('soft attention');
    expect(svg).toContain('stroke-dasharray');
    expect(svg).toContain('memory size M');
    expect((svg.match(/class="series-item"/g) ?? []).length).toBe(3);
    expect(svg).toMatch(/>1000</); // log-axis tick labels
    expect(svg).toMatch(/>100</);
    // Explicit ticks at the measured memory sizes.
    const ticked = lineChart({ logX: true, xTicks: [1, 32, 2500], series: [{ name: 's', points: Ms.map((m) => [m, 1 + m / 5000] as const) }] });
    expect(ticked).toMatch(/>32</);
    expect(ticked).toMatch(/>2500</);
    expect(ticked).not.toMatch(/>1000</);
    // Markers: one circle per point for the two marked series, plus two legend markers.
    expect((svg.match(/<circle /g) ?? []).length).toBe(2 * Ms.length + 2);
    // Coordinates are finite numbers.
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('skips non-finite and (on log axes) non-positive points, breaking the line', () => {
    const svg = lineChart({ series: [{ name: 'a', points: [[0, 1], [1, 2], [2, NaN], [3, 4]] }], logX: true });
    checkXml(svg);
    expect(svg).not.toMatch(/NaN|Infinity/);
    const d = /<path d="([^"]+)" fill="none"/.exec(svg)![1]!;
    expect(d.match(/M/g)!.length).toBe(2); // two segments: [1] and [3]
  });

  it('handles a single point, an empty series list, and rejects mismatched error bars', () => {
    checkXml(lineChart({ series: [{ name: 'one', points: [[5, 5]] }] }));
    checkXml(lineChart({ title: 'empty', series: [] }));
    expect(() => lineChart({ series: [{ name: 'x', points: [[1, 1]], errorBars: [1, 2] }] })).toThrow(RangeError);
  });
});

describe('ticks and formatting', () => {
  it('nice linear ticks are steps of 1, 2, 2.5 or 5 x 10^k', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(73, 127)).toEqual([80, 90, 100, 110, 120]);
    expect(logTicks(1, 2500)).toEqual([1, 3, 10, 30, 100, 300, 1000]);
    expect(logTicks(1, 100)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(logTicks(1, 1e6)).toEqual([1, 10, 100, 1000, 10000, 100000, 1000000]);
    expect(formatTick(25000)).toBe('25k');
    expect(formatTick(0.5)).toBe('0.5');
    expect(formatTick(1e-4)).toBe('1e-4');
    expect(escapeXml(`<a & "b">`)).toBe('&lt;a &amp; &quot;b&quot;&gt;');
  });
});
