// HTML view of a LoraExplanation: the five steps a learner follows (frozen path, low-rank path, rank,
// scaling, combine), each with its equation written with small bracketed matrices, plus the library's
// own plain-text rendering (renderExplanation) for copying.

import { formatMatrix, formatNumber, type LoraExplanation } from "lorakit";

type Nested = readonly (readonly number[])[];

const GRID_LIMIT = 8; // rows or columns beyond this are abbreviated to their first and last entries
const HEAD = 3;
const TAIL = 2;
const PRECISION = 4;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** Indices 0..len-1 to show; -1 marks the gap of an abbreviated axis. */
function shown(len: number): number[] {
  if (len <= GRID_LIMIT) return Array.from({ length: len }, (_, i) => i);
  return [...Array.from({ length: HEAD }, (_, i) => i), -1, ...Array.from({ length: TAIL }, (_, i) => len - TAIL + i)];
}

/** A matrix as a bracketed grid of numbers; large ones show their corners around ⋯ and ⋮. */
export function matrixElement(m: Nested): HTMLElement {
  const cols = m[0]?.length ?? 0;
  if (m.length === 0 || cols === 0) return h("code", "matrix-text", formatMatrix(m, PRECISION));
  const rowIdx = shown(m.length);
  const colIdx = shown(cols);
  const grid = h("span", "matrix");
  grid.style.gridTemplateColumns = `repeat(${colIdx.length}, auto)`;
  grid.title = `[${m.length}, ${cols}]`;
  for (const i of rowIdx) {
    for (const j of colIdx) {
      if (i < 0 || j < 0) grid.append(h("span", "cell gap", i < 0 && j < 0 ? "⋱" : i < 0 ? "⋮" : "⋯"));
      else grid.append(h("span", "cell", formatNumber(m[i]![j]!, PRECISION)));
    }
  }
  return grid;
}

/** An equation line: a sequence of matrices, scalars and operator symbols. */
function equation(...parts: (string | Nested)[]): HTMLElement {
  const line = h("div", "equation");
  for (const p of parts) line.append(typeof p === "string" ? h("span", "op", p) : matrixElement(p));
  return line;
}

function step(title: string, note: string, ...body: HTMLElement[]): HTMLLIElement {
  const li = h("li", "step");
  li.append(h("h3", "", title), h("p", "note", note), ...body);
  return li;
}

/** The scaling line exactly as renderExplanation prints it. */
export function scalingLine(e: LoraExplanation): string {
  const N = (v: number) => formatNumber(v, PRECISION);
  const sc = e.scaling;
  const r = e.dims.r;
  const value = sc.rule === "rslora" ? `${N(sc.alpha)} / sqrt(${r})` : `${N(sc.alpha)} / ${r}`;
  return sc.overridden
    ? `s = ${N(sc.value)} (given explicitly; ${sc.formula} would be ${value})`
    : `s = ${sc.formula} = ${value} = ${N(sc.value)}`;
}

/** The five steps as list items. */
export function explanationSteps(e: LoraExplanation): HTMLLIElement[] {
  const { dIn, dOut, r } = e.dims;
  const s = e.scaling;
  return [
    step(
      "1. Frozen path",
      `The pretrained weight W [${dIn}, ${dOut}] is never trained: x · W.`,
      equation(e.inputs.x, "·", e.inputs.W, "=", e.frozen),
    ),
    step(
      "2. Low-rank path",
      `B [${dIn}, ${r}] projects x down to r = ${r} dimensions, A [${r}, ${dOut}] projects back up. B · A is never formed.`,
      equation(e.inputs.x, "·", e.inputs.B, "=", e.lowRank.xB),
      equation("(x · B)", "·", e.inputs.A, "=", e.lowRank.xBA),
    ),
    step(
      "3. Rank",
      "r is read from the shapes, never passed.",
      h("div", "equation-text", `r = ${r} (${e.rank.source})`),
    ),
    step(
      s.rule === "rslora" ? "4. Scaling (rsLoRA)" : "4. Scaling",
      s.rule === "rslora"
        ? "rsLoRA divides alpha by √r, so larger ranks are not damped as much."
        : "Standard LoRA divides alpha by r.",
      h("div", "equation-text", scalingLine(e)),
    ),
    step(
      "5. Combine",
      "h = x · W + s · (x · B) · A: the frozen path plus the scaled low-rank path.",
      equation(e.frozen, "+", formatNumber(s.value, PRECISION), "·", e.lowRank.xBA, "=", e.combined.output),
    ),
  ];
}
