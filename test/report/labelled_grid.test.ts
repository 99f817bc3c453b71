/** Labelled image grids (src/report/labelled_grid.ts): labels beside blocks, rows wrapped to `cols`, pixels kept. */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { labelledGridPng, labelledGridSvg } from '../../src/report/labelled_grid.ts';

describe('labelled grids', () => {
  const ink = new Float32Array(16).fill(1);
  const paper = new Float32Array(16);
  const o = {
    title: 'memory and samples',
    groups: [[{ label: 'memory\n5 entries', images: [ink, ink, ink, ink, ink] }, { label: 'samples', images: [paper, ink] }]],
    captions: ['episode 1'],
    cols: 2,
    height: 4,
    width: 4,
  };

  it('labels each block and wraps a wide block onto rows of `cols` images', () => {
    const svg = labelledGridSvg(o);
    expect(svg).toContain('>memory</text>');
    expect(svg).toContain('>5 entries</text>');
    expect(svg).toContain('>samples</text>');
    expect(svg).toContain('>episode 1</text>');
    // Memory of 5 in rows of 2: 3 rows of 8 px cells and 4 gaps of 2 px = 32 px high; samples: 1 row = 12 px.
    const heights = [...svg.matchAll(/<image [^>]*height="(\d+)"/g)].map((m) => Number(m[1]));
    expect(heights).toEqual([32, 12]);
  });

  it('renders to a PNG that keeps the images pixel for pixel', () => {
    const png = PNG.sync.read(Buffer.from(labelledGridPng(o)));
    const svg = labelledGridSvg(o);
    const [x, y] = [...svg.matchAll(/<image x="(\d+)" y="(\d+)"/g)].map((m) => [Number(m[1]), Number(m[2])])[1]!;
    const at = (px: number, py: number) => png.data[4 * (py * png.width + px)]!;
    // The samples block: first cell paper (white), second cell ink (black), separators gray.
    expect(at(x + 2 + 3, y + 2 + 3)).toBe(255);
    expect(at(x + 2 + 8 + 2 + 3, y + 2 + 3)).toBe(0);
    expect(at(x + 1, y + 1)).toBe(128);
    expect(png.width).toBeGreaterThan(x + 22);
  });
});
