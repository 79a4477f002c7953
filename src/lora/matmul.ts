// Public GEMM op: c = op(a)·op(b) for one dtype (float32 or float64), row-major. op(a) is [m, k]: a, or with transA
// a stored [k, m]; op(b) is [k, n]: b, or with transB b stored [n, k] (PEFT's [out, in] weights read in place).
// Validates once, then calls the selected kernel (WebAssembly SIMD for large float32 products, TypeScript otherwise).

import { ArgumentError, ShapeError } from "../errors.js";
import { gemm } from "../kernels/select.js";
import { type FloatArray, fromNested, type Matrix, type TensorLike, toNested } from "../matrix.js";
import { checkResultSize, fmtShape } from "../shape.js";
import { type MatrixInput, type Operand, readOperand } from "./operand.js";
import { isQuantMatrix, type QuantMatrix } from "./quant.js";
import { quantMatmul } from "./quant-ops.js";
import { describeArray, localFloatArray, sharesMemory } from "./typed.js";

/** Options of matmul. */
export interface MatmulOptions {
  /** Output buffer of m·n elements in the inputs' dtype (typed inputs only); written and returned as data. */
  out?: FloatArray;
  /** a is stored transposed, [k, m]. */
  transA?: boolean;
  /** b is stored transposed, [n, k]. */
  transB?: boolean;
  /** Threads a large float32 product may use (default: configureKernels / available cores); never changes results. */
  threads?: number;
}

type Nested = readonly (readonly number[])[];

/**
 * Matrix product c = op(a)·op(b), computed in the inputs' dtype (nested arrays: float64).
 * b may be a QuantMatrix (Q8_0/Q4_0; a float32; b.layout "out_in" reads it as [n, k]; see docs/quant.md).
 * @param a [m, k] ([k, m] with transA)   @param b [k, n] ([n, k] with transB)
 * @returns c [m, n] in the form of a: number[][], {data, rows, cols} or {data, dims}
 * @throws {ShapeError} inner dimensions differ ("shape_mismatch"), malformed matrices, wrong out length
 * @throws {ArgumentError} mixed dtypes ("dtype_mismatch"), bad options ("invalid_argument")
 * @example matmul([[1, 2]], [[3], [4]]) // [[11]]
 */
export function matmul(a: Nested, b: Nested, options?: MatmulOptions): number[][];
export function matmul<T extends FloatArray>(
  a: Matrix<T>,
  b: Matrix<T> | TensorLike<T>,
  options?: MatmulOptions,
): Matrix<T>;
export function matmul<T extends FloatArray>(
  a: TensorLike<T>,
  b: Matrix<T> | TensorLike<T>,
  options?: MatmulOptions,
): TensorLike<T>;
export function matmul<T extends Float32Array>(
  a: Matrix<T> | TensorLike<T>,
  b: QuantMatrix,
  options?: MatmulOptions,
): Matrix<Float32Array> | TensorLike<Float32Array>;
export function matmul(a: MatrixInput, b: MatrixInput, options?: MatmulOptions): unknown;
export function matmul(a: unknown, b: unknown, options: MatmulOptions = {}): unknown {
  options ??= {}; // null: the defaults, as undefined
  const op = "matmul";
  if (isQuantMatrix(b)) return quantMatmul(op, a, b, { ...options, threads: readThreads(op, options.threads) });
  const transA = readFlag(op, "transA", options.transA);
  const transB = readFlag(op, "transB", options.transB);
  const threads = readThreads(op, options.threads);
  const A = readOperand(op, "a", a, { allowZeroCols: true });
  const B = readOperand(op, "b", b, { allowZeroCols: true });
  if ((A.form === "nested") !== (B.form === "nested") || A.data.constructor !== B.data.constructor) {
    throw new ArgumentError(
      "dtype_mismatch",
      `${op}: b is ${dtypeLabel(B)} but a is ${dtypeLabel(A)}; pass both in one dtype (lorakit never converts silently)`,
      { name: "b", dtype: dtypeLabel(B), expected: dtypeLabel(A) },
    );
  }
  // A nested matrix with no rows has no column count: take the one that makes the shapes agree.
  const aRows = A.rows;
  const aCols = A.cols >= 0 ? A.cols : transA ? 0 : bInner(B, transB);
  const [m, k] = transA ? [aCols, aRows] : [aRows, aCols];
  const bCols = B.cols >= 0 ? B.cols : transB ? k : 0;
  const [kb, n] = transB ? [bCols, B.rows] : [B.rows, bCols];
  if (kb !== k) {
    const want = transB ? `[n, ${k}]` : `[${k}, n]`;
    throw new ShapeError(
      "shape_mismatch",
      `${op}: b has shape ${fmtShape([B.rows, bCols])}, expected ${want} because a is ${fmtShape([aRows, aCols])}${transA ? " (transA)" : ""} (k = ${k})${transB ? " and transB is set" : ""}`,
      { name: "b", shape: [B.rows, bCols], k },
    );
  }
  checkResultSize(op, "the result", [m, n]); // before anything is allocated
  const aData = A.nested ? fromNested(A.nested, aCols).data : A.data;
  const bData = B.nested ? fromNested(B.nested, bCols).data : B.data;
  const out = prepareOut(op, A, aData, bData, m * n, m, n, options.out);
  gemm(out, aData, bData, m, k, n, transA, transB, 1, 0, threads);
  const data = options.out ?? out; // the caller's out (out may be its view in this realm)
  const c = { data, rows: m, cols: n };
  if (A.form === "nested") return toNested(c);
  if (A.form === "tensor") return { data, dims: [m, n] };
  return c;
}

function bInner(B: Operand, transB: boolean): number {
  return transB ? Math.max(B.cols, 0) : B.rows;
}

function dtypeLabel(o: Operand): string {
  if (o.form === "nested") return "a nested number[][] (float64)";
  return o.data instanceof Float32Array ? "float32" : "float64";
}

function readFlag(op: string, name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") {
    throw new ArgumentError("invalid_argument", `${op}: options.${name} must be true or false, got ${String(v)}`, {
      name,
    });
  }
  return v;
}

function readThreads(op: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new ArgumentError("invalid_argument", `${op}: options.threads must be a positive integer, got ${String(v)}`, {
      name: "threads",
    });
  }
  return v;
}

function prepareOut(
  op: string,
  A: Operand,
  aData: FloatArray,
  bData: FloatArray,
  len: number,
  m: number,
  n: number,
  given: FloatArray | undefined,
): FloatArray {
  const Ctor = aData.constructor as { new (len: number): FloatArray };
  if (given === undefined) return new Ctor(len);
  if (A.form === "nested") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.out is only for typed inputs; a is a nested number[][]`,
      {
        name: "out",
      },
    );
  }
  const out = localFloatArray(given);
  if (out === null || out.constructor !== aData.constructor) {
    throw new ArgumentError(
      "dtype_mismatch",
      `${op}: options.out is ${describeArray(given)}, expected a ${aData.constructor.name} like a`,
      { name: "out" },
    );
  }
  if (out.length !== len) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: options.out has length ${out.length}, expected ${len} for c ${fmtShape([m, n])}`,
      { name: "out", length: out.length, expected: len },
    );
  }
  for (const [name, d] of [
    ["a", aData],
    ["b", bData],
  ] as const) {
    if (sharesMemory(out, d)) {
      throw new ArgumentError(
        "invalid_argument",
        `${op}: options.out overlaps the memory of ${name}; pass a separate buffer`,
        {
          name: "out",
        },
      );
    }
  }
  return out;
}
