// SVG heatmaps of small matrices. Diverging colour scale symmetric around zero (blue < 0 < red), one scale
// per heatmap, stated in its legend. Cells show their value when the matrix is small enough to read.

import { formatNumber } from "lorakit";

const SVG = "http://www.w3.org/2000/svg";
const NEG = [37, 99, 235]; // blue
const ZERO = [248, 250, 252]; // near white
const POS = [220, 38, 38]; // red
const MAX_CELL = 44;
const MAX_SIDE = 240;
const LABEL_LIMIT = 8; // rows and columns up to which values are printed in the cells

function mix(a: number[], b: number[], t: number): number[] {
  return a.map((v, i) => Math.round(v + (b[i]! - v) * t));
}

/** Colour of v on a scale of ±max: rgb() string and whether dark text is readable on it. */
export function cellColour(v: number, max: number): { fill: string; dark: boolean } {
  const t = max > 0 ? Math.min(1, Math.abs(v) / max) : 0;
  const [r, g, b] = mix(ZERO, v < 0 ? NEG : POS, t) as [number, number, number];
  return { fill: `rgb(${r}, ${g}, ${b})`, dark: t < 0.55 };
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** Builds a figure: title, SVG grid of m, and a legend with the scale. */
export function heatmap(title: string, caption: string, m: readonly (readonly number[])[]): HTMLElement {
  const rows = m.length;
  const cols = m[0]?.length ?? 0;
  const max = m.reduce((acc, row) => row.reduce((a, v) => Math.max(a, Math.abs(v)), acc), 0);
  const cell = Math.max(6, Math.min(MAX_CELL, Math.floor(MAX_SIDE / Math.max(rows, cols, 1))));
  const labels = rows <= LABEL_LIMIT && cols <= LABEL_LIMIT;

  const fig = document.createElement("figure");
  fig.className = "heatmap";
  const head = document.createElement("figcaption");
  head.innerHTML = `<span class="hm-title"></span><span class="hm-shape"></span><span class="hm-caption"></span>`;
  head.querySelector(".hm-title")!.textContent = title;
  head.querySelector(".hm-shape")!.textContent = `[${rows}, ${cols}]`;
  head.querySelector(".hm-caption")!.textContent = caption;
  fig.append(head);

  const svg = el("svg", {
    width: cols * cell,
    height: rows * cell,
    viewBox: `0 0 ${cols * cell} ${rows * cell}`,
    role: "img",
    "aria-label": `${title}, ${rows} by ${cols}`,
  });
  m.forEach((row, i) => {
    row.forEach((v, j) => {
      const { fill, dark } = cellColour(v, max);
      const rect = el("rect", { x: j * cell, y: i * cell, width: cell - 1, height: cell - 1, rx: 3, fill });
      const tip = el("title", {});
      tip.textContent = `[${i}, ${j}] = ${v}`;
      rect.append(tip);
      svg.append(rect);
      if (labels) {
        const text = el("text", {
          x: j * cell + (cell - 1) / 2,
          y: i * cell + (cell - 1) / 2,
          "text-anchor": "middle",
          "dominant-baseline": "central",
          fill: dark ? "#0f172a" : "#ffffff",
          "font-size": Math.max(8, Math.min(12, cell / 3.4)),
        });
        text.textContent = formatNumber(v, 2);
        svg.append(text);
      }
    });
  });
  fig.append(svg);

  const legend = document.createElement("div");
  legend.className = "hm-legend";
  legend.innerHTML = `<span></span><span class="hm-bar"></span><span></span>`;
  legend.firstElementChild!.textContent = formatNumber(-max, 3);
  legend.lastElementChild!.textContent = formatNumber(max, 3);
  fig.append(legend);
  return fig;
}
