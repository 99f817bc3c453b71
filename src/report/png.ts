/**
 * Pictures of images: a grid of grayscale images (samples, reconstructions, episodes) written
 * as one 8-bit grayscale PNG, each image scaled up by an integer factor (nearest neighbour),
 * with a thin separator between cells.
 */
import { PNG } from 'pngjs';
import { writeFileAtomicSync } from './atomic.ts';

export interface ImageGridOptions {
  readonly rows: number;
  readonly cols: number;
  /** Image height and width in pixels (default 28 x 28). */
  readonly height?: number;
  readonly width?: number;
  /** Integer upscaling factor per pixel (default 2). */
  readonly scale?: number;
  /** Separator width in output pixels, between cells and around the border (default 2). */
  readonly gap?: number;
  /** Separator gray level 0..255 (default 128). */
  readonly separator?: number;
  /**
   * The value of full ink in `images`: 1 for [0, 1] floats, 255 for 0..255. Default: 255 for a
   * Uint8Array; for floats, 1 unless some value exceeds 1.
   */
  readonly maxValue?: number;
  /** Draw ink dark on a white page instead of white on black (default false). */
  readonly invert?: boolean;
}

/** The resolved layout of a grid (sizes in output pixels). */
export interface GridLayout {
  readonly pngWidth: number;
  readonly pngHeight: number;
  readonly cellWidth: number;
  readonly cellHeight: number;
  readonly gap: number;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`writeImageGrid: ${name} must be a positive integer, got ${v}`);
}

/** The output size of a grid. */
export function imageGridLayout(opts: ImageGridOptions): GridLayout {
  const h = opts.height ?? 28;
  const w = opts.width ?? 28;
  const scale = opts.scale ?? 2;
  const gap = opts.gap ?? 2;
  positiveInt('rows', opts.rows);
  positiveInt('cols', opts.cols);
  positiveInt('height', h);
  positiveInt('width', w);
  positiveInt('scale', scale);
  if (!Number.isInteger(gap) || gap < 0) throw new RangeError(`writeImageGrid: gap must be an integer >= 0, got ${gap}`);
  const cellWidth = w * scale;
  const cellHeight = h * scale;
  return {
    cellWidth,
    cellHeight,
    gap,
    pngWidth: opts.cols * cellWidth + (opts.cols + 1) * gap,
    pngHeight: opts.rows * cellHeight + (opts.rows + 1) * gap,
  };
}

/**
 * Encodes a grid of images as PNG bytes. `images` is [n, height*width] row-major with
 * n <= rows*cols (images fill the grid row by row; missing cells stay blank).
 */
export function encodeImageGrid(images: Float32Array | Uint8Array, opts: ImageGridOptions): Buffer {
  const layout = imageGridLayout(opts);
  const h = opts.height ?? 28;
  const w = opts.width ?? 28;
  const scale = opts.scale ?? 2;
  const d = h * w;
  if (images.length % d !== 0) {
    throw new RangeError(`writeImageGrid: ${images.length} values is not a whole number of ${h}x${w} images`);
  }
  const n = images.length / d;
  if (n > opts.rows * opts.cols) {
    throw new RangeError(`writeImageGrid: ${n} images do not fit a ${opts.rows}x${opts.cols} grid`);
  }
  let maxValue = opts.maxValue;
  if (maxValue === undefined) {
    if (images instanceof Uint8Array) maxValue = 255;
    else {
      maxValue = 1;
      for (let i = 0; i < images.length; i++) if (images[i]! > 1) { maxValue = 255; break; }
    }
  }
  const invert = opts.invert ?? false;
  const blank = invert ? 255 : 0;
  const sep = opts.separator ?? 128;
  const { pngWidth, pngHeight, cellWidth, cellHeight, gap } = layout;
  const gray = new Uint8Array(pngWidth * pngHeight).fill(sep);
  for (let r = 0; r < opts.rows; r++) {
    for (let c = 0; c < opts.cols; c++) {
      const k = r * opts.cols + c;
      const y0 = gap + r * (cellHeight + gap);
      const x0 = gap + c * (cellWidth + gap);
      for (let y = 0; y < cellHeight; y++) {
        const rowOff = (y0 + y) * pngWidth + x0;
        const srcRow = k * d + Math.floor(y / scale) * w;
        for (let x = 0; x < cellWidth; x++) {
          let v: number;
          if (k >= n) v = blank;
          else {
            const raw = images[srcRow + Math.floor(x / scale)]!;
            const t = Number.isFinite(raw) ? Math.min(1, Math.max(0, raw / maxValue)) : 0;
            v = Math.round(255 * (invert ? 1 - t : t));
          }
          gray[rowOff + x] = v;
        }
      }
    }
  }
  const png = new PNG({ width: pngWidth, height: pngHeight, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(gray.buffer, gray.byteOffset, gray.byteLength);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}

/** Writes a grid of images to `path` as a grayscale PNG (atomically: temp file + rename). */
export function writeImageGrid(path: string, images: Float32Array | Uint8Array, opts: ImageGridOptions): GridLayout {
  writeFileAtomicSync(path, encodeImageGrid(images, opts));
  return imageGridLayout(opts);
}
