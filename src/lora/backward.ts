// Gradients of h = x·W + s·(x·down)·up with W frozen. Row-major, one dtype. x: [n, dIn], W: [dIn, dOut] ("in_out")
// or [dOut, dIn] ("out_in"), down: [dIn, r], up: [r, dOut], dH: [n, dOut].
// Closed forms: dUp = s·(x·down)ᵀ·dH [r, dOut]; dDown = s·xᵀ·(dH·upᵀ) [dIn, r]; dX = dH·Wᵀ + s·(dH·upᵀ)·downᵀ [n, dIn].
// The base weight gets no gradient.

import { ArgumentError, ShapeError } from "../errors.js";
import { gemm } from "../kernels/select.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { alloc, baseGradInput, checkLowRank, checkMatrix, variantContext, type WeightLayout } from "./base.js";
import type { LowRank } from "./forward.js";
import { requireFinite } from "./operand.js";
import { LORA_VARIANT } from "./variants.js";

/** Gradients returned by loraBackward. */
export interface LoraGradients<T extends FloatArray = FloatArray> {
  /** [n, dIn] */
  dX: Matrix<T>;
  /** [dIn, r] */
  dDown: Matrix<T>;
  /** [r, dOut] */
  dUp: Matrix<T>;
}

/**
 * Backward pass of the LoRA forward h = x·W + s·(x·down)·up: dX, dDown, dUp for an upstream gradient dH.
 * @param x [n, dIn]   @param W [dIn, dOut] (or [dOut, dIn] with layout "out_in")   @param adapter {down, up, scaling}
 * @param dH [n, dOut]
 * @throws {ShapeError} when the shapes disagree ("shape_mismatch")
 * @example const { dX, dDown, dUp } = loraBackward(x, W, { down, up, scaling: 2 }, dH);
 */
export function loraBackward<T extends FloatArray>(
  x: Matrix<T>,
  W: Matrix<T>,
  adapter: LowRank<T>,
  dH: Matrix<T>,
  options: { layout?: WeightLayout } = {},
): LoraGradients<T> {
  const op = "loraBackward";
  const layout = options.layout ?? "in_out";
  if (layout !== "in_out" && layout !== "out_in") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.layout is ${JSON.stringify(layout)}, expected "in_out" or "out_in"`,
      {
        name: "layout",
      },
    );
  }
  const w = checkMatrix(op, "W", W);
  const [dIn, dOut] = layout === "in_out" ? [w.rows, w.cols] : [w.cols, w.rows];
  const xm = checkMatrix(op, "x", x);
  const g = checkMatrix(op, "dH", dH);
  for (const [name, m] of [
    ["x", xm],
    ["dH", g],
  ] as const) {
    if (m.data.constructor !== w.data.constructor) {
      throw new ArgumentError(
        "dtype_mismatch",
        `${op}: ${name} is a ${m.data.constructor.name}, expected a ${w.data.constructor.name} like W`,
        {
          name,
        },
      );
    }
  }
  if (xm.cols !== dIn) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: x has shape ${fmtShape([xm.rows, xm.cols])}, expected [n, ${dIn}] because W has dIn = ${dIn}`,
      {
        name: "x",
        shape: [xm.rows, xm.cols],
      },
    );
  }
  const n = xm.rows;
  if (g.rows !== n || g.cols !== dOut) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: dH has shape ${fmtShape([g.rows, g.cols])}, expected [${n}, ${dOut}] like h = x·W (x is ${fmtShape([n, dIn])})`,
      { name: "dH", shape: [g.rows, g.cols], expected: [n, dOut] },
    );
  }
  const r = checkLowRank(op, adapter.down, adapter.up, dIn, dOut, w.data);
  const s = requireFinite(op, "adapter.scaling", adapter.scaling);
  const base = { data: w.data as T, dIn, dOut, layout };
  const dX = baseGradInput(alloc(x.data, n * dIn), dH.data, base, n, 1, 0); // dH·Wᵀ
  const a = {
    r,
    scaling: s,
    down: adapter.down,
    up: adapter.up,
    gradDown: alloc(x.data, dIn * r),
    gradUp: alloc(x.data, r * dOut),
  };
  const t = gemm(alloc(x.data, n * r), x.data, adapter.down.data, n, dIn, r, false, false, 1, 0); // x·down [n, r]
  LORA_VARIANT.backward(variantContext(base), a, t, x.data, n, dH.data, dX);
  return {
    dX: { data: dX, rows: n, cols: dIn },
    dDown: { data: a.gradDown, rows: dIn, cols: r },
    dUp: { data: a.gradUp, rows: r, cols: dOut },
  };
}
