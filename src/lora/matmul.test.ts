// matmul: results against the float64 reference (float32 via WebAssembly and TypeScript, float64, transposes,
// threads, out) and one test per error code it raises.

import { describe, expect, it } from "vitest";
import { expectClose, gemmBound, U_F32, U_F64 } from "../../test/helpers/close.js";
import { caught } from "../../test/helpers/errors.js";
import { gemmReference } from "../kernels/reference.js";
import { matmul } from "./matmul.js";

let state = 7;
function rand(len: number): Float64Array {
  const a = new Float64Array(len);
  for (let i = 0; i < len; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    a[i] = (state / 2 ** 32) * 2 - 1;
  }
  return a;
}

describe("matmul", () => {
  it("multiplies nested arrays in float64", () => {
    expect(matmul([[1, 2]], [[3], [4]])).toEqual([[11]]);
    expect(matmul([[1, 2]], [[3, 4]], { transB: true })).toEqual([[11]]);
    expect(matmul([], [[1, 2]])).toEqual([]);
  });

  it.each([
    ["float32", Float32Array, U_F32],
    ["float64", Float64Array, U_F64],
  ] as const)("%s: every transpose and thread count matches the reference", (_, Ctor, u) => {
    for (const [m, k, n] of [
      [1, 2, 2],
      [37, 65, 129],
      [256, 130, 160],
    ] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = { data: Ctor.from(rand(m * k)), rows: transA ? k : m, cols: transA ? m : k };
          const b = { data: Ctor.from(rand(k * n)), rows: transB ? n : k, cols: transB ? k : n };
          const ref = new Float64Array(m * n);
          const gauge = new Float64Array(m * n);
          gemmReference(ref, gauge, a.data, b.data, m, k, n, transA, transB);
          const c1 = matmul(a, b, { transA, transB, threads: 1 });
          expect([c1.rows, c1.cols]).toEqual([m, n]);
          expect(c1.data).toBeInstanceOf(Ctor);
          expectClose(c1.data, ref, { bound: gemmBound(u, k, gauge, ref), shape: [m, n] });
          const out = new Ctor(m * n);
          const c2 = matmul(a, b, { transA, transB, threads: 2, out });
          expect(c2.data).toBe(out);
          expect(c2.data).toEqual(c1.data);
        }
      }
    }
  });

  it("returns a tensor for a tensor", () => {
    const c = matmul(
      { data: new Float32Array([1, 2, 3, 4]), dims: [2, 2] },
      { data: new Float32Array([1, 0, 0, 1]), dims: [2, 2] },
    );
    expect(c).toEqual({ data: new Float32Array([1, 2, 3, 4]), dims: [2, 2] });
  });

  it("shape_mismatch: inner dimensions differ", () => {
    const e = caught(() => matmul([[1, 2, 3]], [[1], [2]]));
    expect(e.code).toBe("shape_mismatch");
    expect(e.message).toBe("matmul: b has shape [2, 1], expected [3, n] because a is [1, 3] (k = 3)");
    const t = caught(() => matmul([[1, 2]], [[1, 2, 3]], { transA: true, transB: true }));
    expect(t.code).toBe("shape_mismatch");
    expect(t.message).toBe(
      "matmul: b has shape [1, 3], expected [n, 1] because a is [1, 2] (transA) (k = 1) and transB is set",
    );
  });

  it("dtype_mismatch: mixed dtypes or an out of another dtype", () => {
    const a = { data: new Float32Array(4), rows: 2, cols: 2 };
    const b = { data: new Float64Array(4), rows: 2, cols: 2 };
    const e = caught(() => matmul(a, b));
    expect(e.code).toBe("dtype_mismatch");
    expect(e.message).toMatch(/^matmul: b is float64 but a is float32; pass both in one dtype/);
    const o = caught(() => matmul(a, a, { out: new Float64Array(4) }));
    expect(o.code).toBe("dtype_mismatch");
    expect(o.message).toBe("matmul: options.out is a Float64Array, expected a Float32Array like a");
  });

  it("data_length_mismatch: out of the wrong length", () => {
    const a = { data: new Float32Array(6), rows: 2, cols: 3 };
    const e = caught(() => matmul(a, a, { transB: true, out: new Float32Array(3) }));
    expect(e.code).toBe("data_length_mismatch");
    expect(e.message).toBe("matmul: options.out has length 3, expected 4 for c [2, 2]");
  });

  it("invalid_argument: bad options and an out that overlaps an input", () => {
    const a = { data: new Float32Array(4), rows: 2, cols: 2 };
    const cases: [() => unknown, string][] = [
      [() => matmul(a, a, { transA: 1 as unknown as boolean }), "matmul: options.transA must be true or false, got 1"],
      [
        () => matmul(a, a, { transB: "yes" as unknown as boolean }),
        "matmul: options.transB must be true or false, got yes",
      ],
      [() => matmul(a, a, { threads: 0 }), "matmul: options.threads must be a positive integer, got 0"],
      [() => matmul(a, a, { threads: 1.5 }), "matmul: options.threads must be a positive integer, got 1.5"],
      [
        () => matmul([[1]], [[1]], { out: new Float64Array(1) }),
        "matmul: options.out is only for typed inputs; a is a nested number[][]",
      ],
      [() => matmul(a, a, { out: a.data }), "matmul: options.out overlaps the memory of a; pass a separate buffer"],
    ];
    for (const [f, msg] of cases) {
      const e = caught(f);
      expect(e.code).toBe("invalid_argument");
      expect(e.message).toBe(msg);
    }
  });

  it("passes operand errors through (invalid_matrix)", () => {
    const e = caught(() => matmul({ data: new Float32Array(4), rows: -1, cols: 2 }, [[1]] as never));
    expect(e.code).toBe("invalid_matrix");
    expect(e.message).toBe("matmul: a has rows -1 and cols 2, expected non-negative integers");
  });
});
