// Combining adapters into a new one (PEFT add_weighted_adapter). down: [dIn, r], up: [r, dOut]. The new adapter has
// scaling 1 (alpha = r), so each source's factor wᵢ·scalingᵢ is baked into its matrices.
// "cat": down = [c₁·down₁ | c₂·down₂ | …] [dIn, Σrᵢ], up = [up₁; up₂; …] [Σrᵢ, dOut], cᵢ = wᵢ·scalingᵢ; exact:
//        down·up = Σ cᵢ·downᵢ·upᵢ.
// "linear": equal ranks; down = Σ sign(cᵢ)·√|cᵢ|·downᵢ, up = Σ √|cᵢ|·upᵢ; with two or more sources this adds the
//        cross terms √|cᵢcⱼ|·sign(cᵢ)·downᵢ·upⱼ (i ≠ j), so it is not the weighted sum of the deltas.

import { AdapterStateError, ArgumentError, ShapeError } from "../errors.js";
import type { Matrix } from "../matrix.js";
import type { AdapterRecord } from "./adapter.js";
import { alloc } from "./base.js";

/** How addWeightedAdapter combines its sources. */
export type Combination = "cat" | "linear";

/** Builds the combined down [dIn, r'] and up [r', dOut] (fresh arrays in the sources' dtype). */
export function combineAdapters(
  op: string,
  sources: readonly AdapterRecord[],
  weights: readonly number[],
  combination: unknown,
): { down: Matrix; up: Matrix } {
  if (sources.length === 0) {
    throw new ArgumentError("invalid_argument", `${op}: sources must be a non-empty array of adapter names`, {
      name: "sources",
    });
  }
  if (!Array.isArray(weights) || weights.length !== sources.length) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: weights has ${Array.isArray(weights) ? weights.length : "no"} entries, expected ${sources.length} (one per source)`,
      { name: "weights" },
    );
  }
  weights.forEach((w, i) => {
    if (typeof w !== "number" || !Number.isFinite(w)) {
      throw new ArgumentError("invalid_argument", `${op}: weights[${i}] must be a finite number, got ${String(w)}`, {
        name: "weights",
        index: i,
      });
    }
  });
  for (const s of sources) {
    if (s.useDora) {
      throw new AdapterStateError(
        "adapter_state",
        `${op}: source "${s.name}" is a DoRA adapter; only plain LoRA adapters can be combined`,
        {
          name: s.name,
        },
      );
    }
  }
  const c = sources.map((s, i) => weights[i]! * s.scaling);
  if (combination === "cat") return cat(sources, c);
  if (combination === "linear") return linear(op, sources, c);
  throw new ArgumentError(
    "invalid_argument",
    `${op}: combination is ${JSON.stringify(combination)}, expected "cat" or "linear"`,
    {
      name: "combination",
    },
  );
}

function cat(sources: readonly AdapterRecord[], c: number[]): { down: Matrix; up: Matrix } {
  const first = sources[0]!;
  const dIn = first.down.rows;
  const dOut = first.up.cols;
  const rank = sources.reduce((acc, s) => acc + s.r, 0);
  const down = alloc(first.down.data, dIn * rank);
  const up = alloc(first.up.data, rank * dOut);
  let off = 0;
  sources.forEach((s, k) => {
    const ck = c[k]!;
    for (let i = 0; i < dIn; i++)
      for (let q = 0; q < s.r; q++) down[i * rank + off + q] = ck * s.down.data[i * s.r + q]!;
    up.set(s.up.data, off * dOut);
    off += s.r;
  });
  return { down: { data: down, rows: dIn, cols: rank }, up: { data: up, rows: rank, cols: dOut } };
}

function linear(op: string, sources: readonly AdapterRecord[], c: number[]): { down: Matrix; up: Matrix } {
  const first = sources[0]!;
  for (const s of sources) {
    if (s.r !== first.r) {
      throw new ShapeError(
        "shape_mismatch",
        `${op}: "linear" needs equal ranks, but "${first.name}" has r = ${first.r} and "${s.name}" has r = ${s.r}; use combination "cat"`,
        { names: [first.name, s.name], ranks: [first.r, s.r] },
      );
    }
  }
  const down = new Float64Array(first.down.data.length);
  const up = new Float64Array(first.up.data.length);
  sources.forEach((s, k) => {
    const root = Math.sqrt(Math.abs(c[k]!));
    const signed = c[k]! < 0 ? -root : root;
    for (let i = 0; i < down.length; i++) down[i] = down[i]! + signed * s.down.data[i]!;
    for (let i = 0; i < up.length; i++) up[i] = up[i]! + root * s.up.data[i]!;
  });
  const d = alloc(first.down.data, down.length);
  const u = alloc(first.up.data, up.length);
  d.set(down);
  u.set(up);
  return {
    down: { data: d, rows: first.down.rows, cols: first.r },
    up: { data: u, rows: first.r, cols: first.up.cols },
  };
}
