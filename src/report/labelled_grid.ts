/**
 * Image grids with labels: blocks of images (a memory, the samples generated from it, targets,
 * reconstructions), each block `cols` images wide and as many rows as it needs, with its label
 * to the left and a gap between groups (episodes). Drawn as an SVG holding each block as a PNG
 * (`encodeImageGrid`) and the labels as text, then rendered to one PNG by resvg, so the picture
 * says which row is what and has no empty columns beyond the last row of a block.
 */
import { encodeImageGrid, imageGridLayout } from './png.ts';
import { svgToPng } from './raster.ts';
import { escapeXml } from './svg.ts';

export interface GridBlock {
  /** Shown left of the block, e.g. "memory" or "samples"; a second line after '\n'. */
  readonly label: string;
  /** The block's images, each `height * width` values in [0, 1]. */
  readonly images: readonly Float32Array[];
}

export interface LabelledGridOptions {
  /** Groups of blocks (one group per episode), separated by a wider gap. */
  readonly groups: readonly (readonly GridBlock[])[];
  /** Images per row of a block. */
  readonly cols: number;
  readonly height: number;
  readonly width: number;
  /** A title above the grid. */
  readonly title?: string;
  /** A caption for each group, above it (e.g. "episode 1: 5 classes x 1 shot"). */
  readonly captions?: readonly string[];
  /** Pixel upscaling (default 2). */
  readonly scale?: number;
}

/** The SVG of a labelled grid (self-contained: blocks embedded as PNG data). */
export function labelledGridSvg(o: LabelledGridOptions): string {
  const scale = o.scale ?? 2;
  // Wide enough for the longest label line (approximate advance widths of a 13 px and an 11 px sans-serif font).
  const LABEL_WIDTH = Math.ceil(
    18 + Math.max(40, ...o.groups.flat().flatMap((b) => b.label.split('\n').map((line, i) => line.length * (i ? 6.6 : 7.8)))),
  );
  const parts: string[] = [];
  let y = o.title ? 34 : 8;
  let width = 0;
  o.groups.forEach((group, gi) => {
    const caption = o.captions?.[gi];
    if (caption) {
      parts.push(`<text x="${LABEL_WIDTH}" y="${y + 12}" font-size="12" fill="#555">${escapeXml(caption)}</text>`);
      y += 18;
    }
    for (const block of group) {
      const n = Math.max(1, block.images.length);
      const rows = Math.ceil(n / o.cols);
      const grid = { rows, cols: o.cols, height: o.height, width: o.width, scale, maxValue: 1, invert: true };
      const layout = imageGridLayout(grid);
      const flat = new Float32Array(block.images.length * o.height * o.width);
      block.images.forEach((im, i) => flat.set(im, i * o.height * o.width));
      const png = encodeImageGrid(flat, grid);
      parts.push(
        `<image x="${LABEL_WIDTH}" y="${y}" width="${layout.pngWidth}" height="${layout.pngHeight}" image-rendering="optimizeSpeed" href="data:image/png;base64,${Buffer.from(png).toString('base64')}"/>`,
      );
      const lines = block.label.split('\n');
      const mid = y + layout.pngHeight / 2 - ((lines.length - 1) * 15) / 2;
      lines.forEach((line, li) => {
        parts.push(
          `<text x="${LABEL_WIDTH - 10}" y="${mid + li * 15 + 5}" text-anchor="end" font-size="${li ? 11 : 13}" fill="${li ? '#666' : '#222'}">${escapeXml(line)}</text>`,
        );
      });
      width = Math.max(width, LABEL_WIDTH + layout.pngWidth + 8);
      y += layout.pngHeight + 4;
    }
    y += 12;
  });
  if (o.title) width = Math.max(width, Math.ceil(o.title.length * 9.6 + 16));
  const height = y;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...(o.title ? [`<text x="8" y="22" font-size="15" font-weight="600" fill="#222">${escapeXml(o.title)}</text>`] : []),
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** The PNG of a labelled grid (pixels of the images kept: rendered at zoom 1, nearest neighbour). */
export function labelledGridPng(o: LabelledGridOptions): Uint8Array {
  return svgToPng(labelledGridSvg(o), 1);
}
