// float32 matrix → QuantMatrix (ggml Q8_0 / Q4_0, bit-exact to ggml's reference quantizers in ggml-quant.ts).
// The matrix is quantized as stored: [rows, cols] row-major, blocks of 32 along each row.

import { ShapeError } from "../errors.js";
import type { WeightLayout } from "../lora/base.js";
import { QUANT_BLOCK, type QuantMatrix, type QuantType } from "../lora/quant.js";
import type { Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { quantizeQ4_0, quantizeQ8_0 } from "./ggml-quant.js";

/**
 * Quantizes a stored [rows, cols] float32 matrix to Q8_0 or Q4_0 blocks along its rows (ggml's reference formulas).
 * @param m [rows, cols], cols a multiple of 32, finite values   @param options.layout the weight layout it is stored in
 * @throws {ShapeError} "misaligned_blocks" when cols is not a multiple of 32
 * @throws {ArgumentError} "non_finite" for a NaN or infinite value
 * @example const wq = quantizeMatrix({ data: w, rows: dOut, cols: dIn }, "q4_0", { layout: "out_in" });
 */
export function quantizeMatrix(
  m: Matrix<Float32Array>,
  type: QuantType,
  options: { layout?: WeightLayout } = {},
): QuantMatrix {
  if (m.cols % QUANT_BLOCK !== 0) {
    throw new ShapeError(
      "misaligned_blocks",
      `quantizeMatrix: m has shape ${fmtShape([m.rows, m.cols])}, expected a column count that is a multiple of ${QUANT_BLOCK} (blocks run along each stored row)`,
      { name: "m", shape: [m.rows, m.cols], block: QUANT_BLOCK },
    );
  }
  const data = m.data.subarray(0, m.rows * m.cols);
  const bytes = type === "q8_0" ? quantizeQ8_0(data) : quantizeQ4_0(data);
  return { type, bytes, rows: m.rows, cols: m.cols, layout: options.layout ?? "in_out" };
}
