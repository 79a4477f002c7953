// Shared by the quantized-product tests: the dequantized weight of a QuantMatrix as a function of (p, j) of the
// logical [dIn, dOut], and the float64 reference product with its float32 error bound.

import { dequantizeMatrix, type QuantMatrix } from "../../src/index.js";
import { U_F32 } from "../helpers/close.js";

export type Layout = "in_out" | "out_in";

/** The dequantized weight wd (as stored) and W[p, j] read from it for either layout. */
export function dequantizedAt(q: QuantMatrix, layout: Layout, dIn: number, dOut: number) {
  const wd = dequantizeMatrix(q).data;
  const at = (p: number, j: number) => (layout === "in_out" ? wd[p * dOut + j]! : wd[j * dIn + p]!);
  return { wd, at };
}

// h = x·W + s·(x·down)·up in float64 with its error bound 2u·(dIn + r)·(Σ|x||W| + |s|·Σ|x||down||up|) + u·|h|
export function reference(
  x: Float32Array,
  at: (p: number, j: number) => number,
  n: number,
  dIn: number,
  dOut: number,
  lr?: { down: Float32Array; up: Float32Array; r: number; s: number },
) {
  const h = new Float64Array(n * dOut);
  const bound = new Float64Array(n * dOut);
  const r = lr?.r ?? 0;
  for (let i = 0; i < n; i++) {
    const t = new Float64Array(r);
    const ta = new Float64Array(r);
    for (let p = 0; p < dIn; p++)
      for (let k = 0; k < r; k++) {
        t[k]! += x[i * dIn + p]! * lr!.down[p * r + k]!;
        ta[k]! += Math.abs(x[i * dIn + p]! * lr!.down[p * r + k]!);
      }
    for (let j = 0; j < dOut; j++) {
      let s = 0;
      let g = 0;
      for (let p = 0; p < dIn; p++) {
        s += x[i * dIn + p]! * at(p, j);
        g += Math.abs(x[i * dIn + p]! * at(p, j));
      }
      for (let k = 0; k < r; k++) {
        s += lr!.s * t[k]! * lr!.up[k * dOut + j]!;
        g += Math.abs(lr!.s) * ta[k]! * Math.abs(lr!.up[k * dOut + j]!);
      }
      h[i * dOut + j] = s;
      bound[i * dOut + j] = 2 * U_F32 * (dIn + r + 2) * g + U_F32 * Math.abs(s);
    }
  }
  return { h, bound };
}
