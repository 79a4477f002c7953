// Quantized matrices: ggml's Q8_0 and Q4_0 block formats as a frozen weight (matmul's b, loraForward's W,
// LoraLinear's base). A QuantMatrix is stored row-major [rows, cols] with its 32-value blocks along each stored
// row, so cols (the block axis) is a multiple of 32; rows are (cols/32) blocks each, back to back:
//   q8_0: 34 bytes per block (f16 d, 32 × int8 q), value = q·d
//   q4_0: 18 bytes per block (f16 d, 16 bytes; byte j: value j in the low nibble, value j + 16 in the high), (nib − 8)·d
// As a weight, layout "in_out" means stored [dIn, dOut] (blocks along dOut); "out_in" stored [dOut, dIn] (blocks
// along dIn: GGUF's and PEFT's [out, in] weights, the usual case).

import { ArgumentError, ShapeError } from "../errors.js";
import { dequantizeBlocks, type QuantKernelType, quantBlockBytes } from "../kernels/quant-scalar.js";
import type { Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import type { WeightLayout } from "./base.js";

/** The block formats lorakit computes with. */
export type QuantType = "q8_0" | "q4_0";

/** A ggml-quantized matrix view: stored [rows, cols] row-major, 32-value blocks along each row (see module header). */
export interface QuantMatrix {
  type: QuantType;
  bytes: Uint8Array;
  rows: number;
  cols: number;
  /** As a weight: "in_out" (default) = stored [dIn, dOut]; "out_in" = stored [dOut, dIn] (GGUF, PEFT). */
  layout?: WeightLayout;
}

/** Values per block. */
export const QUANT_BLOCK = 32;

/** The kernel code of a type (1 = Q8_0, 2 = Q4_0). */
export function quantKernelType(type: QuantType): QuantKernelType {
  return type === "q8_0" ? 1 : 2;
}

/** Bytes a quantized [rows, cols] matrix takes (cols a multiple of 32). */
export function quantByteLength(type: QuantType, rows: number, cols: number): number {
  return rows * (cols / QUANT_BLOCK) * quantBlockBytes(quantKernelType(type));
}

/** Whether v looks like a QuantMatrix (has bytes and type); readQuantMatrix then checks it fully. */
export function isQuantMatrix(v: unknown): v is QuantMatrix {
  return v !== null && typeof v === "object" && "bytes" in v && "type" in v;
}

const isDim = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Validates a QuantMatrix argument `name` of `op`: type, bytes, dims, layout, block alignment and byte length.
 * @throws {ArgumentError} "unsupported_dtype" (type), "invalid_argument" (layout)
 * @throws {ShapeError} "invalid_matrix", "misaligned_blocks" (cols not a multiple of 32), "data_length_mismatch"
 */
export function readQuantMatrix(op: string, name: string, v: unknown): Required<QuantMatrix> {
  const q = (v ?? {}) as Partial<QuantMatrix>; // null or undefined: "type is undefined"
  if (q.type !== "q8_0" && q.type !== "q4_0") {
    throw new ArgumentError(
      "unsupported_dtype",
      `${op}: ${name}.type is ${JSON.stringify(q.type)}, expected "q8_0" or "q4_0"`,
      { name, type: q.type },
    );
  }
  if (!(q.bytes instanceof Uint8Array) || !isDim(q.rows) || !isDim(q.cols)) {
    throw new ShapeError(
      "invalid_matrix",
      `${op}: ${name} is not a {type, bytes, rows, cols} quantized matrix (bytes a Uint8Array, rows and cols non-negative integers)`,
      { name },
    );
  }
  const layout = q.layout ?? "in_out";
  if (layout !== "in_out" && layout !== "out_in") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: ${name}.layout is ${JSON.stringify(layout)}, expected "in_out" or "out_in"`,
      { name: `${name}.layout` },
    );
  }
  const shape = [q.rows, q.cols];
  if (q.cols % QUANT_BLOCK !== 0) {
    const axis = layout === "in_out" ? "dOut" : "dIn";
    throw new ShapeError(
      "misaligned_blocks",
      `${op}: ${name} is ${q.type} with stored shape ${fmtShape(shape)}, expected a column count that is a multiple of ${QUANT_BLOCK} (blocks of ${QUANT_BLOCK} values run along each stored row; here that is ${axis}, layout "${layout}")`,
      { name, shape, block: QUANT_BLOCK },
    );
  }
  const expected = quantByteLength(q.type, q.rows, q.cols);
  if (q.bytes.length !== expected) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: ${name}.bytes has ${q.bytes.length} bytes, expected ${expected} for ${q.type} ${fmtShape(shape)} (${quantBlockBytes(quantKernelType(q.type))} bytes per ${QUANT_BLOCK} values)`,
      { name, length: q.bytes.length, expected, shape },
    );
  }
  return { type: q.type, bytes: q.bytes, rows: q.rows, cols: q.cols, layout };
}

/**
 * The float32 values of a quantized matrix, in its stored shape [rows, cols] (exact: every q·d is a float32).
 * Used as the reference for the quantized products: dequantize, then the float32 kernels.
 * @throws as readQuantMatrix
 * @example dequantizeMatrix(quantizeMatrix(w, "q8_0")) // w rounded to Q8_0
 */
export function dequantizeMatrix(q: QuantMatrix): Matrix<Float32Array> {
  const m = readQuantMatrix("dequantizeMatrix", "q", q);
  const data = new Float32Array(m.rows * m.cols);
  dequantizeBlocks(data, m.bytes, quantKernelType(m.type), (m.rows * m.cols) / QUANT_BLOCK);
  return { data, rows: m.rows, cols: m.cols };
}
