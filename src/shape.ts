// Shape formatting and small checks shared by the ops. Dims are plain arrays of non-negative integers.

import { ShapeError } from "./errors.js";

/** Formats dims the way every message does: [4, 16]. */
export function fmtShape(dims: readonly number[]): string {
  return `[${dims.join(", ")}]`;
}

/** Product of dims (1 for a scalar shape []). */
export function numel(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/** True when v is an integer ≥ 0 that fits a typed-array length. */
export function isDim(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Most elements an op allocates for one result (2³⁰: 4 GiB of float32, 8 GiB of float64). Larger results are
 * refused with ShapeError "too_large" before anything is allocated: an empty inner dimension ([n, 0]·[0, m]) or a
 * thin one makes a huge result from small inputs.
 */
export const MAX_RESULT_ELEMENTS = 2 ** 30;

/** Throws ShapeError "too_large" when a result of `dims` has more than MAX_RESULT_ELEMENTS elements. */
export function checkResultSize(op: string, name: string, dims: readonly number[]): void {
  const count = numel(dims);
  if (count <= MAX_RESULT_ELEMENTS) return;
  throw new ShapeError(
    "too_large",
    `${op}: ${name} would have shape ${fmtShape(dims)} (${count} elements), expected at most ${MAX_RESULT_ELEMENTS} elements (2^30); split the call`,
    { name, shape: [...dims], elements: count, limit: MAX_RESULT_ELEMENTS },
  );
}
