// The ops over a quantized weight: matmul(a, b) with b a QuantMatrix, and loraForward / lowRankForward with W a
// QuantMatrix. Float32 only: x [n, dIn] (a tensor may have leading dims), down [dIn, r], up [r, dOut], h [n, dOut].
// W's layout says how it is stored ("in_out" [dIn, dOut], "out_in" [dOut, dIn]); its blocks are read in place by
// the kernels (quantLoraGemm), never expanded into a float32 copy except in the TypeScript fallback.

import { ArgumentError, ShapeError } from "../errors.js";
import { gemm, quantLoraGemm } from "../kernels/select.js";
import { checkResultSize, fmtShape } from "../shape.js";
import { type Operand, readOperand, shapeOf } from "./operand.js";
import { type QuantMatrix, quantKernelType, readQuantMatrix } from "./quant.js";

/** A validated quantized weight with its logical dims. */
export interface QuantWeight {
  q: Required<QuantMatrix>;
  dIn: number;
  dOut: number;
  /** Stored [dOut, dIn]: the kernels read it with transB. */
  transW: boolean;
}

/** Validates W and returns its logical dims [dIn, dOut]. */
export function readQuantWeight(op: string, name: string, w: unknown): QuantWeight {
  const q = readQuantMatrix(op, name, w);
  const transW = q.layout === "out_in";
  return { q, dIn: transW ? q.cols : q.rows, dOut: transW ? q.rows : q.cols, transW };
}

function requireFloat32(op: string, name: string, o: Operand, wName: string): Float32Array {
  if (o.form === "nested" || !(o.data instanceof Float32Array)) {
    const got = o.form === "nested" ? "a nested number[][] (float64)" : "float64";
    throw new ArgumentError(
      "dtype_mismatch",
      `${op}: ${name} is ${got} but ${wName} is quantized; products over a quantized weight compute in float32 (pass Float32Array data)`,
      { name, dtype: got, expected: "float32" },
    );
  }
  return o.data;
}

function checkOut(op: string, out: unknown, len: number, shape: number[]): Float32Array {
  if (out === undefined) return new Float32Array(len);
  if (!(out instanceof Float32Array)) {
    throw new ArgumentError("dtype_mismatch", `${op}: options.out must be a Float32Array (quantized weight)`, {
      name: "out",
    });
  }
  if (out.length !== len) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: options.out has length ${out.length}, expected ${len} for ${fmtShape(shape)}`,
      { name: "out", length: out.length, expected: len },
    );
  }
  return out;
}

function wrap(x: Operand, data: Float32Array, n: number, cols: number): unknown {
  if (x.form === "tensor") return { data, dims: [...x.lead, cols] };
  return { data, rows: n, cols };
}

/** matmul(a, b) with b quantized: c = a·op(b), op(b) = b ("in_out") or bᵀ ("out_in"). */
export function quantMatmul(
  op: string,
  a: unknown,
  b: unknown,
  options: { out?: unknown; transA?: unknown; transB?: unknown; threads?: number },
): unknown {
  const w = readQuantWeight(op, "b", b);
  if (options.transA === true || options.transB === true) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.transA/transB are not supported with a quantized b; b.layout says how b is stored ("out_in" reads it transposed)`,
      { name: options.transA === true ? "transA" : "transB" },
    );
  }
  const A = readOperand(op, "a", a, { allowLeadDims: true, allowZeroCols: true });
  const x = requireFloat32(op, "a", A, "b");
  if (A.cols !== w.dIn) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: a has shape ${fmtShape(shapeOf(A))}, expected [m, ${w.dIn}] because b is ${w.q.type} ${fmtShape([w.q.rows, w.q.cols])} with layout "${w.q.layout}" (k = ${w.dIn})`,
      { name: "a", shape: shapeOf(A), expected: ["m", w.dIn] },
    );
  }
  checkResultSize(op, "the result", [...(A.form === "tensor" ? A.lead : [A.rows]), w.dOut]); // before allocating
  const out = checkOut(op, options.out, A.rows * w.dOut, [A.rows, w.dOut]);
  const t = quantKernelType(w.q.type);
  quantLoraGemm(out, x, w.q.bytes, t, null, null, A.rows, w.dIn, w.dOut, 0, 0, w.transW, options.threads);
  return wrap(A, out, A.rows, w.dOut);
}

/** loraForward / lowRankForward with W quantized: h = x·W + s·(x·down)·up. */
export function quantLoraForward(
  op: string,
  xIn: unknown,
  wIn: unknown,
  downIn: unknown,
  upIn: unknown,
  names: { down: string; up: string },
  scaling: (r: number) => number,
  outIn: unknown,
): unknown {
  const w = readQuantWeight(op, "W", wIn);
  const xo = readOperand(op, "x", xIn, { allowLeadDims: true });
  const x = requireFloat32(op, "x", xo, "W");
  const downO = readOperand(op, names.down, downIn, { allowZeroCols: true });
  const down = requireFloat32(op, names.down, downO, "W");
  const upO = readOperand(op, names.up, upIn);
  const up = requireFloat32(op, names.up, upO, "W");
  const { dIn, dOut } = w;
  if (xo.cols !== dIn) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: x has shape ${fmtShape(shapeOf(xo))}, expected [n, ${dIn}] because W is ${w.q.type} ${fmtShape([w.q.rows, w.q.cols])} with layout "${w.q.layout}" (dIn = ${dIn})`,
      { name: "x", shape: shapeOf(xo), expected: ["n", dIn] },
    );
  }
  const r = Math.max(downO.cols, 0);
  if (downO.rows !== dIn || r === 0) {
    throw new ShapeError(
      r === 0 ? "invalid_rank" : "shape_mismatch",
      `${op}: ${names.down} has shape ${fmtShape(shapeOf(downO))}, expected [${dIn}, r] with r ≥ 1 (dIn = ${dIn})`,
      { name: names.down, shape: shapeOf(downO), expected: [dIn, "r"] },
    );
  }
  if (upO.rows !== r || upO.cols !== dOut) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${names.up} has shape ${fmtShape(shapeOf(upO))}, expected [${r}, ${dOut}] (r = ${r}, dOut = ${dOut})`,
      { name: names.up, shape: shapeOf(upO), expected: [r, dOut] },
    );
  }
  const s = scaling(r);
  const n = xo.rows;
  checkResultSize(op, "h", [...(xo.form === "tensor" ? xo.lead : [n]), dOut]); // before anything is allocated
  const out = checkOut(op, outIn, n * dOut, [n, dOut]);
  const t = s === 0 || n === 0 ? null : gemm(new Float32Array(n * r), x, down, n, dIn, r, false, false, 1, 0);
  quantLoraGemm(out, x, w.q.bytes, quantKernelType(w.q.type), t, up, n, dIn, dOut, r, s, w.transW);
  return wrap(xo, out, n, dOut);
}
