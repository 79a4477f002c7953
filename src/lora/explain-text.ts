// Text rendering of a LoraExplanation in the order a learner follows: frozen path, low-rank path, rank,
// scaling, combine. Matrices print like Python lists ([[6.0]]); large ones are cut to their corners.

import type { LoraExplanation } from "./explain.js";
import { scalingFor } from "./variants.js";

/** Options of renderExplanation. */
export interface RenderOptions {
  /** Digits after the decimal point (trailing zeros dropped, at least one kept). Default 4. */
  precision?: number;
  /** Rows and columns shown before a matrix is abbreviated with "...". Default 6. */
  maxShown?: number;
}

/** Formats one number: integers as 6.0, others rounded to `precision` decimals without trailing zeros. */
export function formatNumber(v: number, precision = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1e15 || (v !== 0 && Math.abs(v) < 10 ** -precision))
    return v.toExponential(precision).replace(/\.?0+e/, "e");
  const s = v.toFixed(precision);
  const t = s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, ".0") : `${s}.0`;
  return t === "-0.0" ? "0.0" : t;
}

/** Keeps the first `head` and last `tail` indices of 0..len-1 when len exceeds max; -1 marks the gap. */
function shownIndices(len: number, max: number): number[] {
  if (len <= max) return Array.from({ length: len }, (_, i) => i);
  const head = Math.ceil((max - 1) / 2);
  const tail = max - 1 - head;
  return [...Array.from({ length: head }, (_, i) => i), -1, ...Array.from({ length: tail }, (_, i) => len - tail + i)];
}

/** Formats a matrix as [[a, b], [c, d]], abbreviated with "..." beyond maxShown rows or columns. */
export function formatMatrix(m: readonly (readonly number[])[], precision = 4, maxShown = 6): string {
  const cols = m[0]?.length ?? 0;
  const colIdx = shownIndices(cols, maxShown);
  const rows = shownIndices(m.length, maxShown).map((i) => {
    if (i < 0) return "...";
    const row = m[i]!;
    return `[${colIdx.map((j) => (j < 0 ? "..." : formatNumber(row[j]!, precision))).join(", ")}]`;
  });
  return `[${rows.join(", ")}]`;
}

/** Renders the explanation as plain text, one step per paragraph. */
export function renderExplanation(e: LoraExplanation, options: RenderOptions = {}): string {
  const p = options.precision ?? 4;
  const M = (m: readonly (readonly number[])[]) => formatMatrix(m, p, options.maxShown ?? 6);
  const N = (v: number) => formatNumber(v, p);
  const { n, dIn, dOut, r } = e.dims;
  const sc = e.scaling;
  const ruleValue = scalingFor(sc.alpha, r, sc.rule);
  const formulaValue = sc.rule === "rslora" ? `${N(sc.alpha)} / sqrt(${r})` : `${N(sc.alpha)} / ${r}`;
  const scalingLine = sc.overridden
    ? `s = ${N(sc.value)} (given explicitly, instead of ${sc.formula} = ${formulaValue} = ${N(ruleValue)})`
    : `s = ${sc.formula} = ${formulaValue} = ${N(sc.value)}`;
  return [
    `LoRA forward: h = x @ W + s * (x @ B) @ A   (n = ${n}, dIn = ${dIn}, dOut = ${dOut}, r = ${r})`,
    "",
    "1. Frozen path: the pretrained weight W [dIn, dOut], never trained",
    `   x @ W = ${M(e.inputs.x)} @ ${M(e.inputs.W)} = ${M(e.frozen)}`,
    "",
    "2. Low-rank path: B [dIn, r] projects down to r dims, A [r, dOut] projects back up",
    `   x @ B = ${M(e.inputs.x)} @ ${M(e.inputs.B)} = ${M(e.lowRank.xB)}`,
    `   (x @ B) @ A = ${M(e.lowRank.xB)} @ ${M(e.inputs.A)} = ${M(e.lowRank.xBA)}`,
    "",
    "3. Rank: inferred from the shapes, never passed",
    `   r = ${r} (${e.rank.source})`,
    "",
    `4. Scaling${sc.rule === "rslora" ? " (rsLoRA)" : ""}`,
    `   ${scalingLine}`,
    "",
    "5. Combine: frozen path + scaled low-rank path",
    `   h = x @ W + s * (x @ B) @ A = ${M(e.frozen)} + ${N(sc.value)} * ${M(e.lowRank.xBA)} = ${M(e.combined.output)}`,
  ].join("\n");
}
