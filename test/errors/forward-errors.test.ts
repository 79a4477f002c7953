// One test per error loraForward can raise: the class, the code and the message.
import { describe, expect, it } from "vitest";
import { ArgumentError, loraForward, ShapeError } from "../../src/index.js";
import { caught } from "../helpers/errors.js";

const x = [[1, 2]];
const W = [
  [1, 0],
  [0, 1],
];
const B = [[1], [1]];
const A = [[0.5, 0.5]];

const f32 = (rows: number, cols: number, n = rows * cols) => ({ data: new Float32Array(n), rows, cols });

describe("loraForward errors", () => {
  it.each([
    [
      "x is not an array of arrays",
      () => loraForward("x" as never, W, B, A, 2),
      ShapeError,
      "invalid_matrix",
      'loraForward: x is a string ("x"), expected a number[][] (array of rows), a {data, rows, cols} view or a {data, dims} tensor',
    ],
    [
      "a row that is not an array",
      () => loraForward([1, 2] as never, W, B, A, 2),
      ShapeError,
      "invalid_matrix",
      "loraForward: x row 0 is a number, expected an array of numbers (x must be an array of arrays)",
    ],
    [
      "an empty row",
      () => loraForward(x, [[1, 0], []], B, A, 2),
      ShapeError,
      "invalid_matrix",
      "loraForward: W row 1 is empty, expected at least one number",
    ],
    [
      "a ragged row",
      () => loraForward(x, W, B, [[0.5, 0.5, 1]].concat([[1]]) as never, 2),
      ShapeError,
      "invalid_matrix",
      "loraForward: A row 1 has 1 entries, expected 3 like row 0 (ragged rows)",
    ],
    [
      "a non-number entry",
      () => loraForward([[1, "2"]] as never, W, B, A, 2),
      ArgumentError,
      "invalid_value",
      'loraForward: x[0, 1] is a string ("2"), expected a finite number',
    ],
    [
      "a non-finite entry",
      () =>
        loraForward(
          x,
          [
            [1, 0],
            [0, Number.NaN],
          ],
          B,
          A,
          2,
        ),
      ArgumentError,
      "non_finite",
      "loraForward: W[1, 1] is NaN, expected a finite number",
    ],
    [
      "an infinite entry",
      () => loraForward(x, W, [[1], [Number.POSITIVE_INFINITY]], A, 2),
      ArgumentError,
      "non_finite",
      "loraForward: B[1, 0] is Infinity, expected a finite number",
    ],
    [
      "x columns ≠ W rows",
      () =>
        loraForward(
          x,
          [
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
          ],
          B,
          A,
          2,
        ),
      ShapeError,
      "shape_mismatch",
      "loraForward: W has shape [3, 3], expected [2, dOut] because x is [1, 2] (dIn = 2)",
    ],
    [
      "B rows ≠ dIn",
      () => loraForward(x, W, [[1], [1], [1]], A, 2),
      ShapeError,
      "shape_mismatch",
      "loraForward: B has shape [3, 1], expected [2, r] because x is [1, 2] (dIn = 2)",
    ],
    [
      "B columns ≠ A rows",
      () =>
        loraForward(
          x,
          W,
          B,
          [
            [0.5, 0.5],
            [1, 1],
          ],
          2,
        ),
      ShapeError,
      "shape_mismatch",
      "loraForward: A has shape [2, 2], expected [1, dOut] because B is [2, 1] (r = 1)",
    ],
    [
      "A columns ≠ dOut",
      () => loraForward(x, W, B, [[0.5, 0.5, 0.5]], 2),
      ShapeError,
      "shape_mismatch",
      "loraForward: A has shape [1, 3], expected [1, 2] because W is [2, 2] (dOut = 2)",
    ],
    [
      "r = 0 (nested)",
      () => loraForward(x, W, [[], []], [], 2),
      ShapeError,
      "invalid_rank",
      "loraForward: B has shape [2, 0], so r = 0; expected r ≥ 1 (r is the column count of B)",
    ],
    [
      "r = 0 (typed)",
      () => loraForward(f32(1, 2), f32(2, 2), f32(2, 0), f32(0, 2), 2),
      ShapeError,
      "invalid_rank",
      "loraForward: B has shape [2, 0], so r = 0",
    ],
    [
      "alpha not finite",
      () => loraForward(x, W, B, A, Number.NaN),
      ArgumentError,
      "invalid_argument",
      "loraForward: alpha must be a finite number, got NaN",
    ],
    [
      "alpha not a number",
      () => loraForward(x, W, B, A, "2" as never),
      ArgumentError,
      "invalid_argument",
      'loraForward: alpha must be a finite number, got a string ("2")',
    ],
    [
      "unknown scaling rule",
      () => loraForward(x, W, B, A, 2, { scaling: "dora" as never }),
      ArgumentError,
      "invalid_argument",
      'loraForward: options.scaling is "dora", expected "standard" or "rslora"',
    ],
    [
      "scale not finite",
      () => loraForward(x, W, B, A, 2, { scale: Number.POSITIVE_INFINITY }),
      ArgumentError,
      "invalid_argument",
      "loraForward: options.scale must be a finite number, got Infinity",
    ],
    [
      "view data length ≠ rows·cols",
      () => loraForward(f32(1, 2, 3), f32(2, 2), f32(2, 1), f32(1, 2), 2),
      ShapeError,
      "data_length_mismatch",
      "loraForward: x.data has length 3, expected 2 for shape [1, 2]",
    ],
    [
      "tensor data length ≠ Π dims",
      () => loraForward({ data: new Float32Array(5), dims: [1, 3, 2] }, f32(2, 2), f32(2, 1), f32(1, 2), 2),
      ShapeError,
      "data_length_mismatch",
      "loraForward: x.data has length 5, expected 6 for dims [1, 3, 2]",
    ],
    [
      "W tensor with 3 dims",
      () => loraForward(f32(1, 2), { data: new Float32Array(4), dims: [1, 2, 2] }, f32(2, 1), f32(1, 2), 2),
      ShapeError,
      "invalid_matrix",
      "loraForward: W has dims [1, 2, 2], expected 2 dims [rows, cols]",
    ],
    [
      "non-float data",
      () => loraForward({ data: new Int32Array(2), rows: 1, cols: 2 } as never, W, B, A, 2),
      ShapeError,
      "invalid_matrix",
      "loraForward: x.data is a Int32Array, expected a Float32Array or Float64Array",
    ],
    [
      "bad rows/cols",
      () => loraForward({ data: new Float32Array(2), rows: 1.5, cols: 2 } as never, W, B, A, 2),
      ShapeError,
      "invalid_matrix",
      "loraForward: x has rows 1.5 and cols 2, expected non-negative integers",
    ],
    [
      "mixed float32 and float64",
      () => loraForward(f32(1, 2), { data: new Float64Array(4), rows: 2, cols: 2 }, f32(2, 1), f32(1, 2), 2),
      ArgumentError,
      "dtype_mismatch",
      "loraForward: W is float64 but x is float32; pass all four matrices in one dtype",
    ],
    [
      "nested mixed with typed",
      () => loraForward(f32(1, 2), W as never, f32(2, 1), f32(1, 2), 2),
      ArgumentError,
      "dtype_mismatch",
      "loraForward: W is a nested number[][] (float64) but x is float32",
    ],
    [
      "out with the wrong length",
      () => loraForward(f32(1, 2), f32(2, 2), f32(2, 1), f32(1, 2), 2, { out: new Float32Array(3) }),
      ShapeError,
      "data_length_mismatch",
      "loraForward: options.out has length 3, expected 2 for h [1, 2]",
    ],
    [
      "out of another dtype",
      () => loraForward(f32(1, 2), f32(2, 2), f32(2, 1), f32(1, 2), 2, { out: new Float64Array(2) }),
      ArgumentError,
      "dtype_mismatch",
      "loraForward: options.out is a Float64Array, expected a Float32Array like x",
    ],
    [
      "out overlapping an input",
      () => {
        const xs = f32(1, 2);
        return loraForward(xs, f32(2, 2), f32(2, 1), f32(1, 2), 2, { out: xs.data });
      },
      ArgumentError,
      "invalid_argument",
      "loraForward: options.out overlaps the memory of x; pass a separate buffer",
    ],
    [
      "out with nested input",
      () => loraForward(x, W, B, A, 2, { out: new Float64Array(2) }),
      ArgumentError,
      "invalid_argument",
      "loraForward: options.out is only for typed inputs; x is a nested number[][]",
    ],
  ] as const)("%s", (_name, f, Cls, code, message) => {
    const e = caught(f);
    expect(e).toBeInstanceOf(Cls);
    expect(e.code).toBe(code);
    expect(e.message.startsWith(message)).toBe(true);
    if (!e.message.startsWith(message)) expect(e.message).toBe(message); // shows the diff
  });

  it("errors carry machine-readable details", () => {
    const e = caught(() =>
      loraForward(
        x,
        W,
        B,
        [
          [0.5, 0.5],
          [1, 1],
        ],
        2,
      ),
    );
    expect(e.details).toEqual({ name: "A", shape: [2, 2], expected: [1, "dOut"] });
    expect(e.name).toBe("ShapeError");
  });
});
