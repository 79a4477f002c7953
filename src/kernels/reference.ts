// Float64 reference kernels: plain triple loops, the test oracle and the slow fallback. Inputs may be any
// float typed array; results are Float64Array. Same layout rules as contract.ts (op(a) [m, k], op(b) [k, n]).
// Each also accumulates the gauge Σ|a||b| per output element, from which error bounds are derived.

import type { KernelArray } from "./contract.js";

/** out = op(a)·op(b) in float64; gauge (if given) = Σ_p |op(a)[i,p]|·|op(b)[p,j]|. Returns out. */
export function gemmReference(
  out: Float64Array,
  gauge: Float64Array | null,
  a: KernelArray,
  b: KernelArray,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Float64Array {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let g = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i]! : a[i * k + p]!;
        const bv = transB ? b[j * k + p]! : b[p * n + j]!;
        s += av * bv;
        g += Math.abs(av) * Math.abs(bv);
      }
      out[i * n + j] = s;
      if (gauge) gauge[i * n + j] = g;
    }
  }
  return out;
}

/** Result of the float64 LoRA reference: h and the two gauges that bound its rounding error. */
export interface LoraReference {
  /** h = x·W + s·(x·down)·up, [n, dOut]. */
  h: Float64Array;
  /** Σ_p |x[i,p]|·|W[p,j]|, [n, dOut]. */
  gaugeBase: Float64Array;
  /** Σ_q (Σ_p |x[i,p]|·|down[p,q]|)·|up[q,j]|, [n, dOut] (not multiplied by s). */
  gaugeLowRank: Float64Array;
}

/** h = x·W + s·(x·down)·up in float64 with plain loops. x: [n, dIn], W: [dIn, dOut], down: [dIn, r], up: [r, dOut]. */
export function loraReference(
  x: KernelArray,
  w: KernelArray,
  down: KernelArray,
  up: KernelArray,
  s: number,
  n: number,
  dIn: number,
  dOut: number,
  r: number,
): LoraReference {
  const h = new Float64Array(n * dOut);
  const gaugeBase = new Float64Array(n * dOut);
  const t = new Float64Array(n * r);
  const tAbs = new Float64Array(n * r);
  gemmReference(h, gaugeBase, x, w, n, dIn, dOut);
  gemmReference(t, tAbs, x, down, n, dIn, r);
  const low = new Float64Array(n * dOut);
  const gaugeLowRank = new Float64Array(n * dOut);
  gemmReference(low, null, t, up, n, r, dOut);
  // gauge of the second product uses |x|·|down| (tAbs), not |x·down|
  const upAbs = Float64Array.from(up, Math.abs);
  gemmReference(gaugeLowRank, null, tAbs, upAbs, n, r, dOut);
  for (let i = 0; i < h.length; i++) h[i] = h[i]! + s * low[i]!;
  return { h, gaugeBase, gaugeLowRank };
}

/** Unit roundoff (half the machine epsilon) of float32 and float64. */
export const UNIT_ROUNDOFF = { float32: 2 ** -24, float64: 2 ** -53 } as const;

/**
 * Elementwise error bound for h = x·W + s·(x·down)·up computed with unit roundoff u, from the reference's
 * gauges: 2·u·(dIn·gaugeBase + |s|·(dIn + r + 2)·gaugeLowRank) + u·|h| (γ_K·Σ|a||b| with a factor 2 of margin,
 * plus the rounding of the stored result). Assumes no underflow.
 */
export function loraErrorBound(u: number, dIn: number, r: number, s: number, ref: LoraReference): Float64Array {
  const { h, gaugeBase, gaugeLowRank } = ref;
  const out = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) {
    out[i] = 2 * u * (dIn * gaugeBase[i]! + Math.abs(s) * (dIn + r + 2) * gaugeLowRank[i]!) + u * Math.abs(h[i]!);
  }
  return out;
}
