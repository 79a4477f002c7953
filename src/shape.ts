// Shape formatting and small checks shared by the ops. Dims are plain arrays of non-negative integers.

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
