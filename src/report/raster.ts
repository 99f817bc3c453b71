/**
 * PNG renderings of the SVG reports, for places that show no SVG (chat tools, some notebook and
 * issue viewers, slides): `@resvg/resvg-js` (resvg, a maintained SVG renderer in Rust with
 * prebuilt binaries), twice the SVG's size, text in the system's sans-serif font.
 */
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomicSync } from './atomic.ts';

/** The PNG bytes of an SVG document, scaled by `zoom` (default 2: sharp on high-density screens). */
export function svgToPng(svg: string, zoom = 2): Uint8Array {
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: zoom },
    background: '#ffffff',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/** Where the PNG of an SVG file goes: beside it, same name. */
export function pngPathOf(svgPath: string): string {
  return svgPath.replace(/\.svg$/i, '') + '.png';
}

/** Writes `svg` to `path` and its PNG rendering beside it (both atomically); returns both paths. */
export function writeSvgAndPng(path: string, svg: string): [string, string] {
  writeFileAtomicSync(path, svg);
  const png = pngPathOf(path);
  writeFileAtomicSync(png, svgToPng(svg));
  return [path, png];
}
