// Row-major typed matrix views. A Matrix is {data, rows, cols} over data[0 .. rows·cols); element (i, j) is
// data[i·cols + j]. Tensors in the ONNX Runtime / transformers.js shape are {data, dims} with dims [..., cols].

/** The float typed arrays lorakit computes with. */
export type FloatArray = Float32Array | Float64Array;

/** A row-major matrix view over a typed array. */
export interface Matrix<T extends FloatArray = FloatArray> {
  data: T;
  rows: number;
  cols: number;
}

/** A tensor shaped like ONNX Runtime's and transformers.js's: row-major data with any number of dims. */
export interface TensorLike<T extends FloatArray = FloatArray> {
  data: T;
  dims: readonly number[];
}

/** Allocates a zero matrix of the given dtype's array type. */
export function zerosLike<T extends FloatArray>(like: T, rows: number, cols: number): Matrix<T> {
  const Ctor = like.constructor as { new (n: number): T };
  return { data: new Ctor(rows * cols), rows, cols };
}

/** Copies a nested number[][] (already validated: rectangular, finite) into a Float64Array matrix. */
export function fromNested(rows: readonly (readonly number[])[], cols: number): Matrix<Float64Array> {
  const m = rows.length;
  const data = new Float64Array(m * cols);
  for (let i = 0; i < m; i++) {
    const row = rows[i]!;
    for (let j = 0; j < cols; j++) data[i * cols + j] = row[j]!;
  }
  return { data, rows: m, cols };
}

/** Copies a matrix view into a fresh nested number[][]. */
export function toNested(m: Matrix): number[][] {
  const out: number[][] = new Array(m.rows);
  for (let i = 0; i < m.rows; i++) out[i] = Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols));
  return out;
}

/** Name of a typed array's element type as used in messages. */
export function dtypeName(a: FloatArray): "float32" | "float64" {
  return a instanceof Float32Array ? "float32" : "float64";
}
