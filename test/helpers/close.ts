// The one comparison helper (STYLE.md §6.2) and the bound-derived tolerances (§6.3).
// NaN matches only NaN and ±Inf only the same infinity; finite values pass when |a − e| ≤ atol + rtol·|e|
// (or, with a per-element bound array, when |a − e| ≤ bound[i]).

import { expect } from "vitest";

type Numeric = ArrayLike<number>;

/** Unit roundoff: half the machine epsilon. */
export const U_F32 = 2 ** -24;
export const U_F64 = 2 ** -53;

export interface CloseOptions {
  atol?: number;
  rtol?: number;
  /** Per-element absolute bound; replaces atol/rtol when given. */
  bound?: Numeric;
  /** Shape for messages, e.g. [n, dOut]. */
  shape?: readonly number[];
}

function index(i: number, shape?: readonly number[]): string {
  if (!shape || shape.length === 0) return `${i}`;
  const idx: number[] = [];
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    const s = shape[d]! || 1;
    idx.unshift(rest % s);
    rest = Math.floor(rest / s);
  }
  return `[${idx.join(", ")}]`;
}

/** Returns a description of the first mismatch, or null when actual is close to expected everywhere. */
export function closeMismatch(actual: Numeric, expected: Numeric, opts: CloseOptions = {}): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  const { atol = 0, rtol = 0, bound, shape } = opts;
  let maxAbs = 0;
  let maxRel = 0;
  let first: string | null = null;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let ok: boolean;
    if (Number.isNaN(e) || !Number.isFinite(e)) ok = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
    else {
      const err = Math.abs(a - e);
      const tol = bound ? bound[i]! : atol + rtol * Math.abs(e);
      ok = err <= tol;
      if (Number.isFinite(err)) {
        maxAbs = Math.max(maxAbs, err);
        if (e !== 0) maxRel = Math.max(maxRel, err / Math.abs(e));
      }
      if (!ok && first === null)
        first = `at ${index(i, shape)}: actual ${a}, expected ${e}, |diff| ${err} > tol ${tol}`;
      continue;
    }
    if (!ok && first === null)
      first = `at ${index(i, shape)}: actual ${a}, expected ${e} (non-finite values must match exactly)`;
  }
  if (first === null) return null;
  return `${first}; max abs err ${maxAbs}, max rel err ${maxRel}, shape ${shape ? `[${shape.join(", ")}]` : actual.length}`;
}

/** Asserts actual ≈ expected (see closeMismatch); fails with the index, both values and the max errors. */
export function expectClose(actual: Numeric, expected: Numeric, opts: CloseOptions = {}): void {
  const m = closeMismatch(actual, expected, opts);
  expect(m, m ?? "").toBeNull();
}

/**
 * Elementwise error bound of h = x·W + s·(x·down)·up computed in a precision with unit roundoff u:
 * c·u·(dIn·gaugeBase + |s|·(dIn + r)·gaugeLowRank) with c = 2 (STYLE.md §6.3), plus the rounding of the
 * stored result itself (u·|h|).
 */
export function loraBound(
  u: number,
  dIn: number,
  r: number,
  s: number,
  gaugeBase: Numeric,
  gaugeLowRank: Numeric,
  h: Numeric,
): Float64Array {
  const out = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) {
    out[i] = 2 * u * (dIn * gaugeBase[i]! + Math.abs(s) * (dIn + r + 2) * gaugeLowRank[i]!) + u * Math.abs(h[i]!);
  }
  return out;
}

/** Elementwise error bound of a product with inner dimension k: 2·u·k·gauge + u·|c| (stored rounding). */
export function gemmBound(u: number, k: number, gauge: Numeric, c: Numeric): Float64Array {
  const out = new Float64Array(gauge.length);
  for (let i = 0; i < gauge.length; i++) out[i] = 2 * u * k * gauge[i]! + u * Math.abs(c[i]!);
  return out;
}
