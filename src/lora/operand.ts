// Validation of matrix arguments at the op boundary. Accepts nested number[][] (float64), {data, rows, cols}
// views and {data, dims} tensors (ONNX Runtime / transformers.js shape), and turns each into a flat row-major
// Operand. Checks structure only; shape agreement between operands is the caller's job.

import { ArgumentError, ShapeError } from "../errors.js";
import type { FloatArray } from "../matrix.js";
import { fmtShape, isDim, numel } from "../shape.js";
import { localFloatArray, typedArrayName } from "./typed.js";

/** Any accepted matrix argument. */
export type MatrixInput =
  | readonly (readonly number[])[]
  | { data: FloatArray; rows: number; cols: number }
  | { data: FloatArray; dims: readonly number[] };

/** A validated operand: data is row-major [rows, cols]; lead is the leading dims of a tensor (rows = Π lead). */
export interface Operand {
  data: FloatArray;
  rows: number;
  /** Column count; -1 for a nested matrix with no rows (unknown until another operand says). */
  cols: number;
  form: "nested" | "matrix" | "tensor";
  lead: number[];
  /** Original nested rows, kept so conversion can happen after all checks pass. */
  nested?: readonly (readonly number[])[];
}

export interface ReadOptions {
  /** Accept a tensor with more than two dims and fold the leading ones into rows (x only). */
  allowLeadDims?: boolean;
  /** Accept nested rows that are all empty (a rank-0 B is then reported by the rank check). */
  allowZeroCols?: boolean;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (ArrayBuffer.isView(v)) return `a ${typedArrayName(v) ?? "DataView"}`;
  return typeof v === "string" ? `a string (${JSON.stringify(v).slice(0, 20)})` : `a ${typeof v}`;
}

/** Validates one matrix argument named `name` for op `op`. Throws ShapeError / ArgumentError. */
export function readOperand(op: string, name: string, v: unknown, opts: ReadOptions = {}): Operand {
  if (Array.isArray(v)) return readNested(op, name, v, opts);
  if (v !== null && typeof v === "object" && "data" in v) {
    const raw = (v as { data: unknown }).data;
    const data = localFloatArray(raw); // a typed array of another realm is re-viewed in this one
    if (data === null) {
      throw new ShapeError(
        "invalid_matrix",
        `${op}: ${name}.data is ${describe(raw)}, expected a Float32Array or Float64Array`,
        { name },
      );
    }
    if ("dims" in v) return readTensor(op, name, data, (v as { dims: unknown }).dims, opts);
    return readView(op, name, data, v as unknown as { rows: unknown; cols: unknown });
  }
  throw new ShapeError(
    "invalid_matrix",
    `${op}: ${name} is ${describe(v)}, expected a number[][] (array of rows), a {data, rows, cols} view or a {data, dims} tensor`,
    { name },
  );
}

function readNested(op: string, name: string, rows: readonly unknown[], opts: ReadOptions): Operand {
  let cols = -1;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (!Array.isArray(row)) {
      throw new ShapeError(
        "invalid_matrix",
        `${op}: ${name} row ${i} is ${describe(row)}, expected an array of numbers (${name} must be an array of arrays)`,
        {
          name,
          row: i,
        },
      );
    }
    if (row.length === 0 && !opts.allowZeroCols) {
      throw new ShapeError("invalid_matrix", `${op}: ${name} row ${i} is empty, expected at least one number`, {
        name,
        row: i,
      });
    }
    if (cols === -1) cols = row.length;
    else if (row.length !== cols) {
      throw new ShapeError(
        "invalid_matrix",
        `${op}: ${name} row ${i} has ${row.length} entries, expected ${cols} like row 0 (ragged rows)`,
        {
          name,
          row: i,
          length: row.length,
          expected: cols,
        },
      );
    }
    for (let j = 0; j < row.length; j++) {
      const e: unknown = row[j];
      if (typeof e !== "number") {
        throw new ArgumentError(
          "invalid_value",
          `${op}: ${name}[${i}, ${j}] is ${describe(e)}, expected a finite number`,
          { name, index: [i, j] },
        );
      }
      if (!Number.isFinite(e)) {
        throw new ArgumentError("non_finite", `${op}: ${name}[${i}, ${j}] is ${e}, expected a finite number`, {
          name,
          index: [i, j],
          value: e,
        });
      }
    }
  }
  return {
    data: new Float64Array(0),
    rows: rows.length,
    cols,
    form: "nested",
    lead: [rows.length],
    nested: rows as number[][],
  };
}

function readView(op: string, name: string, data: FloatArray, v: { rows: unknown; cols: unknown }): Operand {
  const { rows, cols } = v;
  if (!isDim(rows) || !isDim(cols)) {
    throw new ShapeError(
      "invalid_matrix",
      `${op}: ${name} has rows ${String(rows)} and cols ${String(cols)}, expected non-negative integers`,
      { name },
    );
  }
  if (data.length !== rows * cols) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: ${name}.data has length ${data.length}, expected ${rows * cols} for shape ${fmtShape([rows, cols])}`,
      {
        name,
        length: data.length,
        shape: [rows, cols],
      },
    );
  }
  return { data, rows, cols, form: "matrix", lead: [rows] };
}

function readTensor(op: string, name: string, data: FloatArray, dims: unknown, opts: ReadOptions): Operand {
  if (!Array.isArray(dims) || !dims.every(isDim)) {
    throw new ShapeError(
      "invalid_matrix",
      `${op}: ${name}.dims is ${describe(dims)}, expected an array of non-negative integers`,
      { name },
    );
  }
  const ok = opts.allowLeadDims ? dims.length >= 1 : dims.length === 2;
  if (!ok) {
    const want = opts.allowLeadDims ? "at least 1 dim [..., dIn]" : "2 dims [rows, cols]";
    throw new ShapeError("invalid_matrix", `${op}: ${name} has dims ${fmtShape(dims)}, expected ${want}`, {
      name,
      dims,
    });
  }
  const expected = numel(dims);
  if (data.length !== expected) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: ${name}.data has length ${data.length}, expected ${expected} for dims ${fmtShape(dims)}`,
      {
        name,
        length: data.length,
        shape: dims,
      },
    );
  }
  const cols = dims[dims.length - 1]!;
  const lead = dims.slice(0, -1);
  return { data, rows: numel(lead), cols, form: "tensor", lead };
}

/** Shape of an operand for messages: tensors show their dims, matrices [rows, cols]. */
export function shapeOf(o: Operand): number[] {
  if (o.form === "tensor") return [...o.lead, o.cols];
  return [o.rows, Math.max(o.cols, 0)];
}

/** Checks that a scalar argument is a finite number. */
export function requireFinite(op: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: ${name} must be a finite number, got ${typeof v === "number" ? String(v) : describe(v)}`,
      {
        name,
        value: v,
      },
    );
  }
  return v;
}
