// float32 matrix → QuantMatrix (ggml Q8_0 / Q4_0, bit-exact to ggml's reference quantizers in ggml-quant.ts).
// The matrix is quantized as stored: [rows, cols] row-major, blocks of 32 along each row.

import { ArgumentError, ShapeError } from "../errors.js";
import type { WeightLayout } from "../lora/base.js";
import { readOperand } from "../lora/operand.js";
import { QUANT_BLOCK, type QuantMatrix, type QuantType } from "../lora/quant.js";
import type { Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { quantizeQ4_0, quantizeQ8_0 } from "./ggml-quant.js";

/**
 * Quantizes a stored [rows, cols] float32 matrix to Q8_0 or Q4_0 blocks along its rows (ggml's reference formulas).
 * @param m [rows, cols], cols a multiple of 32, finite values   @param options.layout the weight layout it is stored in
 * @throws {ShapeError} "misaligned_blocks" when cols is not a multiple of 32; "invalid_matrix", "data_length_mismatch"
 * @throws {ArgumentError} "non_finite" for a NaN or infinite value, "invalid_value" for a block past float16's scale,
 *   "unsupported_dtype" (type), "invalid_argument" (layout)
 * @example const wq = quantizeMatrix({ data: w, rows: dOut, cols: dIn }, "q4_0", { layout: "out_in" });
 */
export function quantizeMatrix(
  m: Matrix<Float32Array>,
  type: QuantType,
  options: { layout?: WeightLayout } = {},
): QuantMatrix {
  const op = "quantizeMatrix";
  if (type !== "q8_0" && type !== "q4_0")
    throw new ArgumentError("unsupported_dtype", `${op}: type is ${describe(type)}, expected "q8_0" or "q4_0"`, {
      name: "type",
      type,
    });
  const layout = options?.layout ?? "in_out";
  if (layout !== "in_out" && layout !== "out_in")
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.layout is ${describe(layout)}, expected "in_out" or "out_in"`,
      { name: "options.layout" },
    );
  // a {data, rows, cols} view (or {data, dims}) of float32 or float64 values, data.length = rows × cols
  const o = readOperand(op, "m", m);
  if (o.form === "nested")
    throw new ShapeError("invalid_matrix", `${op}: m is an array of rows, expected a {data, rows, cols} matrix`, {
      name: "m",
    });
  if (o.cols % QUANT_BLOCK !== 0) {
    throw new ShapeError(
      "misaligned_blocks",
      `${op}: m has shape ${fmtShape([o.rows, o.cols])}, expected a column count that is a multiple of ${QUANT_BLOCK} (blocks run along each stored row)`,
      { name: "m", shape: [o.rows, o.cols], block: QUANT_BLOCK },
    );
  }
  const bytes = type === "q8_0" ? quantizeQ8_0(o.data) : quantizeQ4_0(o.data);
  return { type, bytes, rows: o.rows, cols: o.cols, layout };
}

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}
