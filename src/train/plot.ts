// Loss curves as a standalone SVG document (a string; no DOM, no dependencies). x: epoch (1-based), y: loss on a
// log10 axis, one polyline per series with a legend. Non-positive or non-finite values are left out of a line.

import { badArgument, optionsObject, requireObject } from "./check.js";

/** One curve: a label and a value per epoch. */
export interface PlotSeries {
  label: string;
  values: readonly number[];
}

/** Options of lossCurveSvg. */
export interface PlotOptions {
  title?: string;
  width?: number;
  height?: number;
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function fmt(v: number): string {
  return Number(v.toFixed(2)).toString();
}

/**
 * Renders series as an SVG line chart with a log-scaled loss axis.
 * @throws {ArgumentError} series not an array of { label: string, values }, a non-string title, or a width / height
 *   too small for the plot area ("invalid_argument")
 * @example lossCurveSvg([{ label: "LoRA r=2", values: [1.1, 0.4, 0.1] }]) // "<svg xmlns=…"
 */
export function lossCurveSvg(series: readonly PlotSeries[], options: PlotOptions = {}): string {
  const op = "lossCurveSvg";
  if (!Array.isArray(series as unknown)) throw badArgument(op, "series", series, "an array of { label, values }");
  series.forEach((s, k) => {
    requireObject(op, `series[${k}]`, s, "{ label, values }");
    if (typeof s.label !== "string") throw badArgument(op, `series[${k}].label`, s.label, "a string");
    if (!Array.isArray(s.values) && !ArrayBuffer.isView(s.values))
      throw badArgument(op, `series[${k}].values`, s.values, "an array of numbers (one per epoch)");
  });
  const { title = "Training loss", width = 720, height = 420 } = optionsObject(op, options);
  if (typeof title !== "string") throw badArgument(op, "options.title", title, "a string");
  // the plot area is width − 234 by height − 88 pixels: at least 1 each
  for (const [name, v, min] of [
    ["width", width, 235],
    ["height", height, 89],
  ] as const)
    if (!Number.isSafeInteger(v) || v < min) throw badArgument(op, `options.${name}`, v, `an integer ≥ ${min}`);
  const left = 64;
  const right = 170;
  const top = 40;
  const bottom = 48;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  // loops, not Math.min(...values): spreading a long curve overflows the call stack
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let maxEpochs = 1;
  for (const s of series) {
    maxEpochs = Math.max(maxEpochs, s.values.length);
    for (const v of s.values)
      if (v > 0 && Number.isFinite(v)) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
  }
  const lo = max > 0 ? Math.floor(Math.log10(min)) : -2;
  let hi = max > 0 ? Math.ceil(Math.log10(max)) : 1;
  if (hi <= lo) hi = lo + 1;
  const x = (epoch: number) => left + (maxEpochs === 1 ? plotW / 2 : ((epoch - 1) / (maxEpochs - 1)) * plotW);
  const y = (v: number) => top + ((hi - Math.log10(v)) / (hi - lo)) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left + plotW / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  // decade grid lines and labels on the log axis
  for (let d = lo; d <= hi; d++) {
    const yy = fmt(y(10 ** d));
    out.push(`<line x1="${left}" y1="${yy}" x2="${left + plotW}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">1e${d}</text>`);
  }
  const xStep = Math.max(1, Math.ceil(maxEpochs / 10));
  for (let e = 1; e <= maxEpochs; e += xStep) {
    const xx = fmt(x(e));
    out.push(`<line x1="${xx}" y1="${top + plotH}" x2="${xx}" y2="${top + plotH + 4}" stroke="#333"/>`);
    out.push(`<text x="${xx}" y="${top + plotH + 18}" text-anchor="middle">${e}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + plotW / 2}" y="${height - 10}" text-anchor="middle">epoch</text>`);
  out.push(
    `<text x="16" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})">loss (log scale)</text>`,
  );
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length]!;
    const points = s.values
      .map((v, i) => (v > 0 && Number.isFinite(v) ? `${fmt(x(i + 1))},${fmt(y(v))}` : null))
      .filter((p) => p !== null);
    if (points.length > 0)
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(" ")}"/>`);
    const ly = top + 10 + k * 18;
    out.push(
      `<line x1="${left + plotW + 12}" y1="${ly}" x2="${left + plotW + 32}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    );
    out.push(`<text x="${left + plotW + 38}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
