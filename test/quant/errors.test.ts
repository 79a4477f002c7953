// Every refusal of the quantized-weight ops, with its code and message (STYLE.md §6.7).

import { describe, expect, it } from "vitest";
import {
  dequantizeMatrix,
  dequantizeQ4_0,
  dequantizeQ8_0,
  kernelBytes,
  loraForward,
  lowRankForward,
  matmul,
  type QuantMatrix,
  quantizeMatrix,
  quantizeQ4_0,
  quantizeQ8_0,
} from "../../src/index.js";
import { caught, codeAndMessage } from "../helpers/errors.js";
import { fill } from "../helpers/random.js";

const q: QuantMatrix = quantizeMatrix({ data: fill(new Float32Array(3 * 64), 1), rows: 3, cols: 64 }, "q4_0");
const x = { data: fill(new Float32Array(2 * 3), 2), rows: 2, cols: 3 };
const down = { data: fill(new Float32Array(3 * 2), 3), rows: 3, cols: 2 };
const up = { data: fill(new Float32Array(2 * 64), 4), rows: 2, cols: 64 };

describe("quantized weights: errors", () => {
  it("misaligned_blocks: a block axis that is not a multiple of 32 (QuantMatrix and quantizeMatrix)", () => {
    const bad = { ...q, cols: 48 };
    const e = caught(() => matmul(x, bad));
    expect(e.code).toBe("misaligned_blocks");
    expect(e.message).toBe(
      'matmul: b is q4_0 with stored shape [3, 48], expected a column count that is a multiple of 32 (blocks of 32 values run along each stored row; here that is dOut, layout "in_out")',
    );
    const e2 = caught(() => loraForward(x, { ...bad, rows: 48, cols: 3, layout: "out_in" }, down, up, 2));
    expect(e2.code).toBe("misaligned_blocks");
    expect(e2.message).toMatch(/loraForward: W is q4_0 with stored shape \[48, 3\].*here that is dIn, layout "out_in"/);
    const e3 = caught(() => quantizeMatrix({ data: new Float32Array(20), rows: 2, cols: 10 }, "q8_0"));
    expect(e3.code).toBe("misaligned_blocks");
    expect(e3.message).toBe(
      "quantizeMatrix: m has shape [2, 10], expected a column count that is a multiple of 32 (blocks run along each stored row)",
    );
  });

  it("data_length_mismatch: bytes that do not hold rows·cols/32 blocks", () => {
    const e = caught(() => matmul(x, { ...q, bytes: q.bytes.subarray(1) }));
    expect(e.code).toBe("data_length_mismatch");
    expect(e.message).toBe("matmul: b.bytes has 107 bytes, expected 108 for q4_0 [3, 64] (18 bytes per 32 values)");
  });

  it("unsupported_dtype: a block type other than q8_0 / q4_0", () => {
    const e = caught(() => matmul(x, { ...q, type: "q4_1" as "q4_0" }));
    expect(e.code).toBe("unsupported_dtype");
    expect(e.message).toBe('matmul: b.type is "q4_1", expected "q8_0" or "q4_0"');
  });

  it("invalid_matrix: bytes not a Uint8Array or bad dims", () => {
    const e = caught(() => dequantizeMatrix({ ...q, bytes: [1, 2] as unknown as Uint8Array }));
    expect(e.code).toBe("invalid_matrix");
    expect(e.message).toBe(
      "dequantizeMatrix: q is not a {type, bytes, rows, cols} quantized matrix (bytes a Uint8Array, rows and cols non-negative integers)",
    );
    expect(caught(() => matmul(x, { ...q, rows: -1 })).code).toBe("invalid_matrix");
  });

  it("invalid_argument: a bad layout, and transA/transB with a quantized b", () => {
    const e = caught(() => matmul(x, { ...q, layout: "rows" as "in_out" }));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toBe('matmul: b.layout is "rows", expected "in_out" or "out_in"');
    const e2 = caught(() => matmul(x, q, { transB: true }));
    expect(e2.code).toBe("invalid_argument");
    expect(e2.message).toBe(
      'matmul: options.transA/transB are not supported with a quantized b; b.layout says how b is stored ("out_in" reads it transposed)',
    );
  });

  it("dtype_mismatch: float64 or nested x", () => {
    const e = caught(() => matmul({ data: new Float64Array(6), rows: 2, cols: 3 } as never, q));
    expect(e.code).toBe("dtype_mismatch");
    expect(e.message).toBe(
      "matmul: a is float64 but b is quantized; products over a quantized weight compute in float32 (pass Float32Array data)",
    );
    const e2 = caught(() => loraForward([[1, 2, 3]], q as never, [[1], [1], [1]], [new Array(64).fill(0)], 1));
    expect(e2.code).toBe("dtype_mismatch");
    expect(e2.message).toMatch(/^loraForward: x is a nested number\[\]\[\] \(float64\) but W is quantized/);
  });

  it("shape_mismatch and invalid_rank: x, down and up against W", () => {
    const e = caught(() => matmul({ data: new Float32Array(4), rows: 2, cols: 2 }, q));
    expect(e.code).toBe("shape_mismatch");
    expect(e.message).toBe(
      'matmul: a has shape [2, 2], expected [m, 3] because b is q4_0 [3, 64] with layout "in_out" (k = 3)',
    );
    const e2 = caught(() => loraForward(x, q, { data: new Float32Array(4), rows: 2, cols: 2 }, up, 2));
    expect(e2.code).toBe("shape_mismatch");
    expect(e2.message).toBe("loraForward: B has shape [2, 2], expected [3, r] with r ≥ 1 (dIn = 3)");
    const e3 = caught(() =>
      lowRankForward(x, q, { down, up: { data: new Float32Array(2 * 32), rows: 2, cols: 32 }, scaling: 1 }),
    );
    expect(e3.code).toBe("shape_mismatch");
    expect(e3.message).toBe("lowRankForward: up has shape [2, 32], expected [2, 64] (r = 2, dOut = 64)");
    const e4 = caught(() => loraForward(x, q, { data: new Float32Array(0), rows: 3, cols: 0 }, up, 2));
    expect(e4.code).toBe("invalid_rank");
  });

  it("data_length_mismatch and dtype_mismatch: options.out", () => {
    const e = caught(() => matmul(x, q, { out: new Float32Array(3) }));
    expect(e.code).toBe("data_length_mismatch");
    expect(e.message).toBe("matmul: options.out has length 3, expected 128 for [2, 64]");
    const e2 = caught(() => loraForward(x, q, down, up, 2, { out: new Float64Array(128) }));
    expect(e2.code).toBe("dtype_mismatch");
    expect(e2.message).toBe("loraForward: options.out must be a Float32Array (quantized weight)");
  });

  it("too_large: a result over 2^30 elements is refused before anything is allocated", () => {
    const wide: QuantMatrix = { type: "q8_0", bytes: new Uint8Array(0), rows: 65536, cols: 0, layout: "out_in" };
    const e = caught(() => matmul({ data: new Float32Array(0), rows: 65536, cols: 0 }, wide));
    expect(e.code).toBe("too_large");
    expect(e.message).toBe(
      "matmul: the result would have shape [65536, 65536] (4294967296 elements), expected at most 1073741824 elements (2^30); split the call",
    );
  });

  it("invalid_argument: kernelBytes with a length that is not an integer ≥ 0", () => {
    const e = caught(() => kernelBytes(-1));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toBe("kernelBytes: length is -1, expected an integer ≥ 0");
    expect(kernelBytes(3)).toEqual(new Uint8Array(3));
  });

  it("invalid_value: a block whose scale float16 cannot hold (ggml would store Infinity); up to the limit is fine", () => {
    // plain numbers: 1e39 is finite as a double and becomes Infinity only when rounded to float32 in the block
    const block = (v: number) => Array.from({ length: 32 }, (_, i) => (i === 5 ? v : 1));
    for (const [f, per] of [
      [quantizeQ8_0, 127],
      [quantizeQ4_0, 8],
    ] as const) {
      expect(() => f(block(65504 * per))).not.toThrow();
      expect(() => f(block(-65504 * per))).not.toThrow();
      for (const v of [66000 * per, -66000 * per, 1e39]) {
        const e = caught(() => f([...block(1), ...block(v)]));
        expect(e.code).toBe("invalid_value");
        expect(e.message).toMatch(
          new RegExp(
            `^${f.name}: block 1 \\(values 32–63\\) has \\|x\\| up to .* whose scale .* is past float16's 65504; expected \\|x\\| ≤ ${65504 * per} in every block$`,
          ),
        );
      }
    }
    const e = caught(() => quantizeMatrix({ data: Float32Array.from(block(1e7)), rows: 1, cols: 32 }, "q8_0"));
    expect(e.code).toBe("invalid_value");
  });

  it("dequantizeQ8_0/Q4_0 and quantizeMatrix check their arguments", () => {
    const bytes = quantizeQ8_0(new Float32Array(64).fill(1));
    const cases: [() => unknown, string, string][] = [
      [
        () => dequantizeQ8_0(bytes, 96),
        "data_length_mismatch",
        "dequantizeQ8_0: bytes has 68 bytes, expected at least 102 for 96 values (34 bytes per 32)",
      ],
      [
        () => dequantizeQ8_0(bytes, 33),
        "invalid_argument",
        "dequantizeQ8_0: n is 33, expected a count of values that is a multiple of the block size 32",
      ],
      [
        () => dequantizeQ4_0(bytes, Number.NaN),
        "invalid_argument",
        "dequantizeQ4_0: n is NaN, expected a count of values that is a multiple of the block size 32",
      ],
      [
        () => dequantizeQ4_0(null as never, 32),
        "invalid_argument",
        "dequantizeQ4_0: bytes is null, expected a Uint8Array",
      ],
      [
        () => dequantizeQ8_0(bytes, 64, new Float32Array(3)),
        "data_length_mismatch",
        "dequantizeQ8_0: out is a Float32Array of 3, expected a Float32Array of at least 64 values",
      ],
      [() => quantizeQ8_0(null as never), "invalid_argument", "quantizeQ8_0: x is null, expected an array of numbers"],
      [
        () => quantizeMatrix({ data: new Float32Array(64), rows: 2, cols: 32 }, "q5_0" as never),
        "unsupported_dtype",
        'quantizeMatrix: type is "q5_0", expected "q8_0" or "q4_0"',
      ],
      [
        () => quantizeMatrix({ data: new Float32Array(32), rows: 2, cols: 32 }, "q8_0"),
        "data_length_mismatch",
        "quantizeMatrix: m.data has length 32, expected 64 for shape [2, 32]",
      ],
      [
        () => quantizeMatrix({ data: new Float32Array(64), rows: 2, cols: 32 }, "q8_0", { layout: "xx" as never }),
        "invalid_argument",
        'quantizeMatrix: options.layout is "xx", expected "in_out" or "out_in"',
      ],
      [
        () => quantizeMatrix(null as never, "q8_0"),
        "invalid_matrix",
        "quantizeMatrix: m is null, expected a number[][] (array of rows), a {data, rows, cols} view or a {data, dims} tensor",
      ],
    ];
    for (const [f, code, message] of cases) expect(codeAndMessage(f)).toEqual([code, message]);
    expect(Array.from(dequantizeQ8_0(bytes, 64), (v) => Math.abs(v - 1) < 1e-3)).toEqual(new Array(64).fill(true));
  });
});
