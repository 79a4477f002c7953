// The exactly-zero low-rank term rule: when up is all zero or the scaling is 0, the term is skipped and h = x·W bit
// for bit, even where x·down overflows to ±Infinity (Infinity·0 would otherwise make NaN). Checked on every path:
// loraForward (nested float64 and typed float32, TypeScript and WebAssembly sizes), lowRankForward, and LoraLinear
// (fused single adapter, several adapters, a mixed batch, DoRA) with up = 0, its default initialisation.

import { describe, expect, it } from "vitest";
import { WASM_MIN_MACS } from "../kernels/select.js";
import { explainLoraForward } from "./explain.js";
import { loraForward, lowRankForward } from "./forward.js";
import { LoraLinear } from "./layer.js";
import { matmul } from "./matmul.js";

const bits = (a: Float32Array | Float64Array) =>
  Array.from(a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a);

describe("exactly-zero low-rank term", () => {
  it("float32 x = 3e38, W = 1, B = 10, A = 0: h = x·W (x·B overflows)", () => {
    const m = (v: number) => ({ data: Float32Array.of(v), rows: 1, cols: 1 });
    const h = loraForward(m(3e38), m(1), m(10), m(0), 1);
    expect(h.data[0]).toBe(Math.fround(3e38));
    // alpha = 0 with a non-zero up: skipped the same way
    expect(loraForward(m(3e38), m(1), m(10), m(5), 0).data[0]).toBe(Math.fround(3e38));
  });

  it("explainLoraForward shows the skipped term as exact zeros, not NaN", () => {
    const e = explainLoraForward([[1e300]], [[1]], [[1e10]], [[0]], 1);
    expect(e.lowRank.xB).toEqual([[Number.POSITIVE_INFINITY]]);
    expect(e.lowRank.xBA).toEqual([[0]]);
    expect(e.combined.scaledLowRank).toEqual([[0]]);
    expect(e.combined.output).toEqual([[1e300]]);
    const off = explainLoraForward([[1e300]], [[1]], [[1e10]], [[2]], 0);
    expect(off.combined.scaledLowRank).toEqual([[0]]);
    expect(off.combined.output).toEqual([[1e300]]);
  });

  it("nested float64 1e300: h = x·W", () => {
    expect(loraForward([[1e300, 1]], [[1], [2]], [[1e300], [0]], [[0]], 4)).toEqual([[1e300 + 2]]);
    expect(loraForward([[1e300]], [[1]], [[1e10]], [[0]], 1)).toEqual([[1e300]]);
  });

  it("WebAssembly sizes, lowRankForward and loraForward: bit-identical to matmul(x, W)", () => {
    const [n, dIn, dOut, r] = [32, 64, 48, 4];
    expect(n * dIn * dOut).toBeGreaterThanOrEqual(WASM_MIN_MACS);
    const x = {
      data: Float32Array.from({ length: n * dIn }, (_, i) => (i % 3 === 0 ? 3e38 : (i % 7) - 3)),
      rows: n,
      cols: dIn,
    };
    const W = {
      data: Float32Array.from({ length: dIn * dOut }, (_, i) => ((i % 5) - 2) * 1e-3),
      rows: dIn,
      cols: dOut,
    };
    const down = { data: new Float32Array(dIn * r).fill(10), rows: dIn, cols: r };
    const up = { data: new Float32Array(r * dOut), rows: r, cols: dOut };
    up.data[0] = -0;
    const base = matmul(x, W).data;
    expect(base.every(Number.isFinite)).toBe(true);
    expect(bits(loraForward(x, W, down, up, 8).data)).toEqual(bits(base));
    expect(bits(lowRankForward(x, W, { down, up, scaling: 2 }).data)).toEqual(bits(base));
    const someUp = { data: new Float32Array(r * dOut).fill(1), rows: r, cols: dOut };
    expect(bits(lowRankForward(x, W, { down, up: someUp, scaling: 0 }).data)).toEqual(bits(base));
  });

  for (const dims of [
    [1, 1, 1],
    [32, 64, 48],
  ] as const) {
    it(`LoraLinear with up = 0 (default init), [n, dIn, dOut] = [${dims.join(", ")}]: fused, several, mixed, DoRA`, () => {
      const [n, dIn, dOut] = dims;
      const weight = {
        data: Float32Array.from({ length: dIn * dOut }, (_, i) => ((i % 5) + 1) * 1e-3),
        rows: dIn,
        cols: dOut,
      };
      const x = {
        data: Float32Array.from({ length: n * dIn }, (_, i) => (i % 2 === 0 ? 3e38 : 1)),
        rows: n,
        cols: dIn,
      };
      const base = matmul(x, weight).data;
      expect(base.every(Number.isFinite)).toBe(true);
      const layer = new LoraLinear({ weight });
      // the default initialisation (up = 0) on the WebAssembly size; down = 10 given on the tiny one, where a
      // random down would not make x·down overflow
      const given = (r: number) => ({
        down: { data: new Float32Array(dIn * r).fill(10), rows: dIn, cols: r },
        up: { data: new Float32Array(r * dOut), rows: r, cols: dOut },
        alpha: 2 * r,
      });
      const tiny = n === 1;
      layer.addAdapter("a", tiny ? given(4) : { r: 4, alpha: 8 }).addAdapter("b", tiny ? given(2) : { r: 2, alpha: 2 });
      layer.addAdapter("d", { ...(tiny ? given(2) : { r: 2, alpha: 2 }), useDora: true });
      layer.setActive(["a"]); // one plain adapter: the fused product
      expect(bits(layer.forward(x).data)).toEqual(bits(base));
      layer.setActive(["a", "b"]); // the term of each added after x·W
      expect(bits(layer.forward(x).data)).toEqual(bits(base));
      const ids = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? null : i % 3 === 1 ? "a" : "b"));
      expect(bits(layer.forward(x, { adapterIds: ids }).data)).toEqual(bits(base));
      layer.setActive(["d"]);
      expect(bits(layer.forward(x).data)).toEqual(bits(base));
    });
  }
});
