// Merge ops: fold a low-rank update into a base weight and take it out again. down: [dIn, r], up: [r, dOut],
// W: [dIn, dOut] ("in_out") or [dOut, dIn] ("out_in", PEFT/torch). ΔW = scaling·down·up is formed once per call in
// W's dtype and layout, then added (or subtracted) elementwise; the same inputs always give the same ΔW bits, so
// unmerge subtracts exactly what merge added and the only error is the rounding of the two additions (docs/layer.md).

import { ArgumentError, ShapeError } from "../errors.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { checkResultSize, fmtShape } from "../shape.js";
import { alloc, checkLowRank, checkMatrix, deltaInto, findNonFinite, type WeightLayout } from "./base.js";
import type { LowRank } from "./forward.js";
import { requireFinite } from "./operand.js";

/** Options of the merge ops. */
export interface MergeOptions {
  /** Storage layout of W: "in_out" = [dIn, dOut] (default), "out_in" = [dOut, dIn] (PEFT/torch). */
  layout?: WeightLayout;
}

function readLayout(op: string, v: unknown): WeightLayout {
  if (v === undefined) return "in_out";
  if (v === "in_out" || v === "out_in") return v;
  throw new ArgumentError(
    "invalid_argument",
    `${op}: options.layout is ${JSON.stringify(v)}, expected "in_out" or "out_in"`,
    {
      name: "layout",
      value: v,
    },
  );
}

/**
 * The weight update of a low-rank adapter: ΔW = scaling·down·up.
 * @param down [dIn, r]   @param up [r, dOut]   @param scaling finite number
 * @returns ΔW as [dIn, dOut], or [dOut, dIn] with layout "out_in"; dtype of down
 * @throws {ShapeError} up is not [r, dOut] for down [dIn, r] ("shape_mismatch"), r = 0 ("invalid_rank")
 * @example deltaWeight({data: Float64Array.of(1, 1), rows: 2, cols: 1}, {data: Float64Array.of(0.5, 0.5), rows: 1, cols: 2}, 2)
 *   // {data: [1, 1, 1, 1], rows: 2, cols: 2}
 */
export function deltaWeight<T extends FloatArray>(
  down: Matrix<T>,
  up: Matrix<T>,
  scaling: number,
  options: MergeOptions = {},
): Matrix<T> {
  const op = "deltaWeight";
  const layout = readLayout(op, options?.layout);
  const d = checkMatrix(op, "down", down);
  const u = checkMatrix(op, "up", up);
  const dIn = d.rows;
  const r = checkLowRank(op, down, up, dIn, u.cols, d.data);
  const s = requireFinite(op, "scaling", scaling);
  const dOut = u.cols;
  checkResultSize(op, "the delta", [dIn, dOut]); // before anything is allocated
  const out = deltaInto(alloc(d.data, dIn * dOut), d.data, u.data, s, dIn, dOut, r, layout) as T;
  return layout === "in_out" ? { data: out, rows: dIn, cols: dOut } : { data: out, rows: dOut, cols: dIn };
}

interface Checked<T extends FloatArray> {
  delta: T;
}

function prepare<T extends FloatArray>(
  op: string,
  W: Matrix<T>,
  adapter: LowRank<T>,
  options: MergeOptions,
): Checked<T> {
  const layout = readLayout(op, options?.layout);
  const w = checkMatrix(op, "W", W);
  const [dIn, dOut] = layout === "in_out" ? [w.rows, w.cols] : [w.cols, w.rows];
  if (adapter === null || typeof adapter !== "object") {
    throw new ArgumentError("invalid_argument", `${op}: adapter must be an object {down, up, scaling}`, {
      name: "adapter",
    });
  }
  let r: number;
  try {
    r = checkLowRank(op, adapter.down, adapter.up, dIn, dOut, w.data);
  } catch (e) {
    if (e instanceof ShapeError && e.code === "shape_mismatch") {
      throw new ShapeError(
        "shape_mismatch",
        `${e.message}; W is ${fmtShape([w.rows, w.cols])} in layout "${layout}"`,
        e.details,
      );
    }
    throw e;
  }
  const s = requireFinite(op, "adapter.scaling", adapter.scaling);
  return {
    delta: deltaInto(alloc(w.data as T, dIn * dOut), adapter.down.data, adapter.up.data, s, dIn, dOut, r, layout),
  };
}

/**
 * Merges in place: W ← W + scaling·down·up. Returns W.
 * @param W [dIn, dOut] (or [dOut, dIn] with layout "out_in")   @param adapter {down [dIn, r], up [r, dOut], scaling}
 * @throws {ShapeError} when the shapes disagree
 * @example mergeAdapter(W, { down, up, scaling: 2 })
 */
export function mergeAdapter<T extends FloatArray>(
  W: Matrix<T>,
  adapter: LowRank<T>,
  options: MergeOptions = {},
): Matrix<T> {
  const { delta } = prepare("mergeAdapter", W, adapter, options);
  addInto(W.data, delta, 1);
  return W;
}

/**
 * Takes a merged adapter out again: W ← W − scaling·down·up (the same ΔW bits merge added). Returns W.
 * In float32 the result is within 2u·(|W| + |ΔW|) of the original per element, u = 2⁻²⁴ (docs/layer.md).
 * @throws {ShapeError} when the shapes disagree
 * @example unmergeAdapter(mergeAdapter(W, adapter), adapter)
 */
export function unmergeAdapter<T extends FloatArray>(
  W: Matrix<T>,
  adapter: LowRank<T>,
  options: MergeOptions = {},
): Matrix<T> {
  const { delta } = prepare("unmergeAdapter", W, adapter, options);
  addInto(W.data, delta, -1);
  return W;
}

/**
 * Safe merge: computes W + scaling·down·up into a copy, checks every element is finite, and only then writes W.
 * @throws {ArgumentError} "non_finite" naming how many values are NaN/±Inf and the first index; W is untouched
 * @example safeMerge(W, { down, up, scaling: 2 })
 */
export function safeMerge<T extends FloatArray>(
  W: Matrix<T>,
  adapter: LowRank<T>,
  options: MergeOptions = {},
): Matrix<T> {
  const op = "safeMerge";
  const { delta } = prepare(op, W, adapter, options);
  addInto(delta, W.data, 1); // delta now holds W + ΔW
  requireAllFinite(op, delta, W.cols, "W");
  W.data.set(delta);
  return W;
}

/** w[i] ← w[i] + sign·delta[i] elementwise. */
export function addInto(w: FloatArray, delta: FloatArray, sign: 1 | -1): void {
  if (sign === 1) for (let i = 0; i < w.length; i++) w[i] = w[i]! + delta[i]!;
  else for (let i = 0; i < w.length; i++) w[i] = w[i]! - delta[i]!;
}

/** Throws ArgumentError "non_finite" when merged (stored with `cols` columns) has NaN or ±Inf entries. */
export function requireAllFinite(op: string, merged: FloatArray, cols: number, what: string): void {
  const { count, first } = findNonFinite(merged);
  if (count === 0) return;
  const at = [Math.floor(first / Math.max(cols, 1)), first % Math.max(cols, 1)];
  throw new ArgumentError(
    "non_finite",
    `${op}: merged weight has ${count} non-finite value${count === 1 ? "" : "s"} (first at ${fmtShape(at)}: ${merged[first]}); ${what} was left unchanged (the adapter seems to be broken)`,
    { count, first: at },
  );
}
