// Public option and result types of LoraLinear, and the validation of its constructor input and of row matrices
// (x [n, dIn], dH [n, dOut]) against the base weight. W: [dIn, dOut] ("in_out") or [dOut, dIn] ("out_in").

import { ArgumentError, ShapeError } from "../errors.js";
import { panelLength } from "../kernels/panel.js";
import { dtypeName, type FloatArray, type Matrix, type TensorLike } from "../matrix.js";
import { fmtShape } from "../shape.js";
import type { AdapterRecord } from "./adapter.js";
import { type BaseWeight, checkMatrix, type WeightLayout } from "./base.js";
import { readOperand } from "./operand.js";
import { isQuantMatrix, type QuantMatrix, quantKernelType, readQuantMatrix } from "./quant.js";
import { localFloatArray } from "./typed.js";

/** Options of the LoraLinear constructor. */
export interface LoraLinearOptions {
  /**
   * The frozen base weight: [dIn, dOut] ("in_out", default) or [dOut, dIn] ("out_in"). Held, not copied. A
   * QuantMatrix (Q8_0/Q4_0, float32 layer; its own layout applies) is read in place by the kernels and never
   * merged into (docs/quant.md).
   */
  weight: Matrix | TensorLike | QuantMatrix;
  /** [dOut], same dtype as weight. */
  bias?: FloatArray;
  layout?: WeightLayout;
  /** Base seed for adapters created without their own seed. Default 0. */
  seed?: number;
  /**
   * weight.data is pre-packed in kernel panels (packPanels(dst, W, dIn, dOut, …), panelLength(dIn, dOut) floats,
   * float32): weight = {data, rows: dIn, cols: dOut}, layout "in_out" (the logical layout). Products stream it in
   * place (faster decode and small batches, the same bits as unpacked); merging works on it; the `weight` getter
   * then returns an unpacked copy. The model runtime packs its projections this way.
   */
  packed?: boolean;
  /** Keep a copy of the weight at the first merge and restore it bit for bit when everything is unmerged. */
  exactUnmerge?: boolean;
  /** Receives soft warnings (merging twice, unmerging nothing). Warnings are also returned by merge/unmerge. */
  logger?: (message: string) => void;
}

/** What adapter(name) reports; down, up and magnitude are the live arrays. */
export interface AdapterInfo {
  name: string;
  r: number;
  alpha: number;
  scaling: number;
  down: Matrix;
  up: Matrix;
  magnitude?: FloatArray;
  useDora: boolean;
  dropout: number;
}

/** One trainable array and its gradient accumulator (both live). */
export interface Parameter {
  adapter: string;
  role: "down" | "up" | "magnitude";
  value: FloatArray;
  grad: FloatArray;
}

/** Result of merge/unmerge: which adapters changed and the soft warnings. */
export interface MergeReport {
  adapters: string[];
  warnings: string[];
}

/** Validates the constructor's weight, layout and bias; the weight's array is held, not copied. */
export function readLayerBase(
  op: string,
  options: LoraLinearOptions,
): { base: BaseWeight; bias: FloatArray | undefined } {
  const layout = options?.layout ?? "in_out";
  if (layout !== "in_out" && layout !== "out_in") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: layout is ${JSON.stringify(layout)}, expected "in_out" or "out_in"`,
      {
        name: "layout",
      },
    );
  }
  if (isQuantMatrix(options?.weight)) return readQuantBase(op, options, layout);
  if (options?.packed === true) return readPackedBase(op, options, layout);
  const w = readOperand(op, "weight", options?.weight);
  if (w.form === "nested") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: weight must be a typed {data, rows, cols} or {data, dims}, not a nested array`,
      {
        name: "weight",
      },
    );
  }
  const [dIn, dOut] = layout === "in_out" ? [w.rows, w.cols] : [w.cols, w.rows];
  return {
    base: { data: w.data, dIn, dOut, layout },
    bias: readBias(op, options.bias, w.data, dOut, `weight ${fmtShape([w.rows, w.cols])}, layout "${layout}"`),
  };
}

function readBias(op: string, bias: unknown, like: FloatArray, dOut: number, what: string): FloatArray | undefined {
  if (bias === undefined) return undefined;
  const b = localFloatArray(bias); // any realm's typed array
  if (!b || b.constructor !== like.constructor) {
    throw new ArgumentError("dtype_mismatch", `${op}: bias must be a ${like.constructor.name} like the weight`, {
      name: "bias",
    });
  }
  if (b.length !== dOut) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: bias has shape [${b.length}], expected [${dOut}] (dOut of ${what})`,
      { name: "bias", shape: [b.length], expected: [dOut] },
    );
  }
  return b;
}

// A pre-packed float32 weight (options.packed): {data, rows: dIn, cols: dOut} with panelLength(dIn, dOut) floats.
function readPackedBase(
  op: string,
  options: LoraLinearOptions,
  layout: WeightLayout,
): { base: BaseWeight; bias: FloatArray | undefined } {
  const w = options.weight as Partial<Matrix>;
  const data = localFloatArray(w?.data);
  if (!(data instanceof Float32Array))
    throw new ArgumentError("unsupported_dtype", `${op}: a packed weight's data must be a Float32Array (packPanels)`, {
      name: "weight",
    });
  const dims = [w.rows, w.cols];
  if (!dims.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0))
    throw new ShapeError("invalid_matrix", `${op}: a packed weight needs integer rows (dIn) and cols (dOut) ≥ 0`, {
      name: "weight",
    });
  const [dIn, dOut] = dims as [number, number];
  if (layout !== "in_out")
    throw new ArgumentError(
      "invalid_argument",
      `${op}: layout is "${layout}" but a packed weight is given as its logical [dIn, dOut] ("in_out"); pack an [out, in] weight with packPanels(dst, w, dIn, dOut, true)`,
      { name: "layout" },
    );
  if (data.length !== panelLength(dIn, dOut))
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: packed weight data has ${data.length} floats, expected panelLength(${dIn}, ${dOut}) = ${panelLength(dIn, dOut)}`,
      { name: "weight", length: data.length, expected: panelLength(dIn, dOut) },
    );
  const bias = readBias(op, options.bias, data, dOut, `packed weight [${dIn}, ${dOut}]`);
  return { base: { data, dIn, dOut, layout: "in_out", packed: true }, bias };
}

// A quantized base: float32, its layout from the QuantMatrix (options.layout, when given, must agree).
function readQuantBase(
  op: string,
  options: LoraLinearOptions,
  layout: WeightLayout,
): { base: BaseWeight; bias: FloatArray | undefined } {
  const q = readQuantMatrix(op, "weight", options.weight);
  if (options.layout !== undefined && options.layout !== q.layout) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: layout is "${layout}" but the quantized weight's layout is "${q.layout}"; set it once, on the QuantMatrix`,
      { name: "layout" },
    );
  }
  const [dIn, dOut] = q.layout === "in_out" ? [q.rows, q.cols] : [q.cols, q.rows];
  const b = options.bias;
  if (b !== undefined && (!(b instanceof Float32Array) || b.length !== dOut)) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: bias must be a Float32Array of shape [${dOut}] (dOut of the quantized weight), got ${b instanceof Float32Array ? `[${b.length}]` : "another type"}`,
      { name: "bias", expected: [dOut] },
    );
  }
  const quant = { bytes: q.bytes, type: quantKernelType(q.type), source: q };
  return { base: { data: new Float32Array(0), dIn, dOut, layout: q.layout, quant }, bias: b };
}

/** Checks a row matrix (x or dH): a {data, rows, cols} view of the weight's dtype with `cols` columns. */
export function checkRows(op: string, name: string, m: Matrix, cols: number, base: BaseWeight): Matrix {
  const v = checkMatrix(op, name, m);
  if (v.data.constructor !== base.data.constructor) {
    throw new ArgumentError(
      "dtype_mismatch",
      `${op}: ${name} is ${dtypeName(v.data)}, expected ${dtypeName(base.data)} like the layer's weight`,
      { name },
    );
  }
  if (v.cols !== cols) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${name} has shape ${fmtShape([v.rows, v.cols])}, expected [n, ${cols}] (the layer is ${base.dIn} → ${base.dOut})`,
      { name, shape: [v.rows, v.cols], expected: ["n", cols] },
    );
  }
  return v;
}

/** One adapter's part in a single-adapter-set forward: its input (a dropout copy or x) and what backward needs. */
export interface Branch {
  rec: AdapterRecord;
  xb: FloatArray;
  keep: Uint8Array | null;
  cache: unknown;
}

/** What LoraLinear keeps from a training-mode forward for backward. */
export type ForwardCache = { kind: "single"; n: number; branches: Branch[] } | { kind: "mixed" };
