/**
 * Dependency-free SVG line charts for reports: NLL vs memory size, addressing accuracy vs M,
 * KL(q(a|x) || p(a)) vs M with its log M ceiling, training curves.
 *
 * `lineChart` returns a self-contained SVG string (axes, "nice" ticks, grid, optional log
 * axes, error bars, legend). Colours are the Okabe-Ito palette (distinguishable with the
 * common forms of colour blindness); dashed series are for reference lines such as log M.
 */
import { writeFileAtomicSync } from './atomic.ts';

export type Point = readonly [number, number];

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
  /**
   * Per point: a half-width (drawn as y ± e) or an absolute [low, high] interval.
   * Must have one entry per point when given; NaN or null skips a bar.
   */
  readonly errorBars?: ReadonlyArray<number | readonly [number, number] | null>;
  /** A CSS colour; default: the next palette colour. */
  readonly color?: string;
  /** Dashed line, no markers by default (reference curves such as log M). */
  readonly dashed?: boolean;
  /** Draw point markers (default: true unless dashed). */
  readonly markers?: boolean;
}

export interface LineChartOptions {
  readonly title?: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  readonly series: readonly Series[];
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** Overall size in px (default 640 x 400). */
  readonly width?: number;
  readonly height?: number;
  /** Fix an axis range instead of fitting the data. */
  readonly xDomain?: readonly [number, number];
  readonly yDomain?: readonly [number, number];
  /** Make the y range include 0 (for accuracies, KL). */
  readonly yIncludeZero?: boolean;
  /** Explicit tick positions (e.g. the memory sizes measured), instead of automatic ones. */
  readonly xTicks?: readonly number[];
  readonly yTicks?: readonly number[];
}

/** Okabe & Ito (2008) colour-blind-safe palette, black last. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'] as const;

const FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\"";

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A compact label for a tick value: 1200 -> "1200", 25000 -> "25k", 0.0001 -> "1e-4". */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) {
    const [m, e] = v.toExponential().split('e') as [string, string];
    return `${Number(Number(m).toPrecision(3))}e${Number(e)}`;
  }
  if (a >= 10000 && Number.isInteger(v / 1000)) return `${v / 1000}k`;
  return String(Number(v.toPrecision(6)));
}

/** "Nice" linear ticks (steps of 1, 2 or 5 x 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const start = Math.ceil(lo / step - 1e-9);
  for (let k = start; k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/** Ticks for a log axis over [lo, hi] (lo > 0): powers of 10, with 2 and 5 (or more) when the span is short. */
export function logTicks(lo: number, hi: number): number[] {
  const e0 = Math.floor(Math.log10(lo));
  const e1 = Math.ceil(Math.log10(hi));
  const decades = Math.log10(hi / lo);
  const mults = decades <= 1 ? [1, 2, 3, 5, 7] : decades <= 2.5 ? [1, 2, 5] : decades <= 4.5 ? [1, 3] : [1];
  const out: number[] = [];
  for (let e = e0; e <= e1; e++) {
    for (const m of mults) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  if (out.length < 2) return niceTicks(lo, hi, 4).filter((v) => v > 0);
  return out;
}

function fmt(v: number): string {
  return Number(v.toFixed(2)).toString();
}

interface Scale {
  (v: number): number;
  readonly ticks: number[];
  readonly domain: readonly [number, number];
}

function makeScale(
  values: number[],
  log: boolean,
  range: [number, number],
  fixed?: readonly [number, number],
  includeZero = false,
  explicitTicks?: readonly number[],
): Scale {
  let lo: number;
  let hi: number;
  if (fixed) [lo, hi] = fixed;
  else {
    const vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
    lo = vs.length ? Math.min(...vs) : log ? 1 : 0;
    hi = vs.length ? Math.max(...vs) : log ? 10 : 1;
    if (includeZero && !log) {
      lo = Math.min(lo, 0);
      hi = Math.max(hi, 0);
    }
    if (log) {
      if (hi / lo < 1.0001) [lo, hi] = [lo / 2, hi * 2];
      const pad = (hi / lo) ** 0.04;
      [lo, hi] = [lo / pad, hi * pad];
    } else {
      if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) [lo, hi] = [lo - 0.5 * Math.max(1, Math.abs(lo)), hi + 0.5 * Math.max(1, Math.abs(hi))];
      const pad = (hi - lo) * 0.05;
      lo = includeZero && lo === 0 ? 0 : lo - pad;
      hi = includeZero && hi === 0 ? 0 : hi + pad;
    }
  }
  const t = log ? (v: number) => Math.log10(v) : (v: number) => v;
  const a = t(lo);
  const b = t(hi);
  const f = ((v: number) => range[0] + ((t(v) - a) / (b - a || 1)) * (range[1] - range[0])) as Scale;
  const inside = (v: number) => Number.isFinite(v) && v >= lo && v <= hi && (!log || v > 0);
  const ticks = explicitTicks ? explicitTicks.filter(inside) : log ? logTicks(lo, hi) : niceTicks(lo, hi);
  return Object.assign(f, { ticks, domain: [lo, hi] as const });
}

/** Approximate text width in px for a 12px sans-serif font (for layout only). */
function textWidth(s: string, size = 12): number {
  return s.length * size * 0.58;
}

/** Renders a line chart as an SVG document string. */
export function lineChart(opts: LineChartOptions): string {
  const W = opts.width ?? 640;
  const H = opts.height ?? 400;
  const series = opts.series;
  for (const s of series) {
    if (s.errorBars && s.errorBars.length !== s.points.length) {
      throw new RangeError(`lineChart: series '${s.name}' has ${s.points.length} points but ${s.errorBars.length} error bars`);
    }
  }
  const logX = opts.logX ?? false;
  const logY = opts.logY ?? false;

  const xs: number[] = [];
  const ys: number[] = [];
  const intervals = series.map((s) =>
    s.points.map((p, i): [number, number] | null => {
      const e = s.errorBars?.[i];
      if (e === undefined || e === null) return null;
      if (typeof e === 'number') return Number.isFinite(e) ? [p[1] - e, p[1] + e] : null;
      return Number.isFinite(e[0]) && Number.isFinite(e[1]) ? [e[0], e[1]] : null;
    }),
  );
  series.forEach((s, si) => {
    s.points.forEach(([x, y], i) => {
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      xs.push(x);
      ys.push(y);
      const iv = intervals[si]![i];
      if (iv) ys.push(iv[0], iv[1]);
    });
  });

  const legendWidth = series.length ? Math.ceil(Math.max(...series.map((s) => textWidth(s.name))) + 40) : 0;
  const margin = {
    top: opts.title ? 42 : 18,
    right: 16 + legendWidth,
    bottom: opts.xLabel ? 52 : 34,
    left: opts.yLabel ? 72 : 56,
  };
  const plotL = margin.left;
  const plotR = W - margin.right;
  const plotT = margin.top;
  const plotB = H - margin.bottom;
  const sx = makeScale(xs, logX, [plotL, plotR], opts.xDomain, false, opts.xTicks);
  const sy = makeScale(ys, logY, [plotB, plotT], opts.yDomain, opts.yIncludeZero ?? false, opts.yTicks);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`,
  );
  if (opts.title) out.push(`<title>${escapeXml(opts.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  if (opts.title) {
    out.push(
      `<text x="${fmt((plotL + plotR) / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="600" fill="#222">${escapeXml(opts.title)}</text>`,
    );
  }
  // Grid and ticks.
  out.push(`<g class="grid" stroke="#e5e5e5" stroke-width="1">`);
  for (const t of sx.ticks) out.push(`<line x1="${fmt(sx(t))}" y1="${plotT}" x2="${fmt(sx(t))}" y2="${plotB}"/>`);
  for (const t of sy.ticks) out.push(`<line x1="${plotL}" y1="${fmt(sy(t))}" x2="${plotR}" y2="${fmt(sy(t))}"/>`);
  out.push(`</g>`);
  out.push(`<g class="axes" stroke="#444" stroke-width="1" fill="none">`);
  out.push(`<line x1="${plotL}" y1="${plotB}" x2="${plotR}" y2="${plotB}"/>`);
  out.push(`<line x1="${plotL}" y1="${plotT}" x2="${plotL}" y2="${plotB}"/>`);
  for (const t of sx.ticks) out.push(`<line x1="${fmt(sx(t))}" y1="${plotB}" x2="${fmt(sx(t))}" y2="${plotB + 5}"/>`);
  for (const t of sy.ticks) out.push(`<line x1="${plotL - 5}" y1="${fmt(sy(t))}" x2="${plotL}" y2="${fmt(sy(t))}"/>`);
  out.push(`</g>`);
  out.push(`<g class="tick-labels" fill="#444">`);
  for (const t of sx.ticks) {
    out.push(`<text x="${fmt(sx(t))}" y="${plotB + 18}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  for (const t of sy.ticks) {
    out.push(`<text x="${plotL - 8}" y="${fmt(sy(t) + 4)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`</g>`);
  if (opts.xLabel) {
    out.push(`<text x="${fmt((plotL + plotR) / 2)}" y="${H - 14}" text-anchor="middle" font-size="13" fill="#222">${escapeXml(opts.xLabel)}</text>`);
  }
  if (opts.yLabel) {
    const cx = 18;
    const cy = (plotT + plotB) / 2;
    out.push(
      `<text x="${cx}" y="${fmt(cy)}" transform="rotate(-90 ${cx} ${fmt(cy)})" text-anchor="middle" dominant-baseline="middle" font-size="13" fill="#222">${escapeXml(opts.yLabel)}</text>`,
    );
  }

  // Data, clipped to the plot area.
  const clipId = `plot-clip-${Math.abs(hashString(JSON.stringify([opts.title ?? '', series.map((s) => s.name)])))}`;
  out.push(`<defs><clipPath id="${clipId}"><rect x="${plotL}" y="${plotT}" width="${plotR - plotL}" height="${plotB - plotT}"/></clipPath></defs>`);
  out.push(`<g class="series" clip-path="url(#${clipId})">`);
  const colors = series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  const usable = (x: number, y: number): boolean =>
    Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0) && (!logY || y > 0);
  series.forEach((s, si) => {
    const color = escapeXml(colors[si]!);
    const dashed = s.dashed ?? false;
    const markers = s.markers ?? !dashed;
    out.push(`<g class="series-item" data-name="${escapeXml(s.name)}">`);
    // Error bars first, under the line.
    intervals[si]!.forEach((iv, i) => {
      const [x] = s.points[i]!;
      if (!iv || !Number.isFinite(x) || (logX && x <= 0)) return;
      const lo = logY ? Math.max(iv[0], sy.domain[0]) : iv[0];
      const X = fmt(sx(x));
      const y0 = fmt(sy(lo));
      const y1 = fmt(sy(iv[1]));
      out.push(
        `<path d="M${X} ${y0}V${y1}M${fmt(sx(x) - 4)} ${y0}h8M${fmt(sx(x) - 4)} ${y1}h8" stroke="${color}" stroke-width="1.2" fill="none" opacity="0.8"/>`,
      );
    });
    // The line, broken at unusable points.
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!usable(x, y)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${fmt(sx(x))} ${fmt(sy(y))}`;
      pen = true;
    }
    if (d) {
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    if (markers) {
      for (const [x, y] of s.points) {
        if (usable(x, y)) out.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="3.2" fill="${color}" stroke="#fff" stroke-width="1"/>`);
      }
    }
    out.push(`</g>`);
  });
  out.push(`</g>`);

  // Legend, to the right of the plot.
  if (series.length) {
    const lx = plotR + 14;
    out.push(`<g class="legend">`);
    series.forEach((s, si) => {
      const y = plotT + 8 + si * 20;
      const color = escapeXml(colors[si]!);
      const dashed = s.dashed ?? false;
      out.push(
        `<line x1="${lx}" y1="${y}" x2="${lx + 22}" y2="${y}" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
      if (s.markers ?? !dashed) out.push(`<circle cx="${lx + 11}" cy="${y}" r="3.2" fill="${color}" stroke="#fff" stroke-width="1"/>`);
      out.push(`<text x="${lx + 28}" y="${y + 4}" fill="#222">${escapeXml(s.name)}</text>`);
    });
    out.push(`</g>`);
  }
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}

function hashString(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** Writes a chart to `path` atomically. */
export function writeLineChart(path: string, opts: LineChartOptions): void {
  writeFileAtomicSync(path, lineChart(opts));
}
