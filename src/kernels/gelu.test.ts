// GPT-2's gelu_new in WebAssembly (assembly/gelu.ts via select.ts geluNew) against float64. The bound follows the
// float32 evaluation: u = √(2/π)(x + 0.044715x³) carries up to ~7 roundings (relative), which e^(−2u) turns into a
// relative error of 7·2^−24·|2u|; the polynomial, the scaling and the division add a few more units; results whose
// true magnitude is under 1e−37 (e^(−2u) past float32's range) may come out as ±0.
import { describe, expect, it } from "vitest";
import { fill } from "../../test/helpers/random.js";
import { geluNew, kernelInfo } from "./select.js";

const reference = (v: number) => {
  const u = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v);
  return { r: v / (1 + Math.exp(-2 * u)), t: Math.min(Math.abs(2 * u), 88) };
};

describe("geluNew", () => {
  it("runs in WebAssembly here", () => {
    expect(["wasm-simd", "wasm-relaxed-simd"]).toContain(kernelInfo().backend);
  });

  it("is within the derived bound of float64 over 1e−2 … 1e2 in magnitude, lengths 0, 1, odd and long", () => {
    for (const n of [0, 1, 2, 3, 5, 7, 4099]) {
      const x = fill(new Float32Array(n), n + 1);
      for (let i = 0; i < n; i++) x[i] = Math.fround(x[i]! * 10 ** ((i % 9) / 2 - 2)); // magnitudes 1e−2 … 1e2
      const y = geluNew(x.slice());
      for (let i = 0; i < n; i++) {
        const { r, t } = reference(x[i]!);
        const bound = (4 + 8 * t) * 2 ** -24 * Math.abs(r) + 1e-37;
        expect(Math.abs(y[i]! - r), `x = ${x[i]}`).toBeLessThanOrEqual(bound);
      }
    }
  });

  it("gives a row the same bits alone as inside a longer array (every element takes the same lanes)", () => {
    const x = fill(new Float32Array(3 * 37), 5);
    const all = geluNew(x.slice());
    for (let row = 0; row < 3; row++)
      expect(geluNew(x.slice(row * 37, (row + 1) * 37))).toEqual(all.slice(row * 37, (row + 1) * 37));
  });

  it("follows 0.5·x·(1 + tanh u) at the edges: ±0, ±Infinity, NaN, huge values", () => {
    const y = geluNew(Float32Array.from([0, -0, Infinity, -Infinity, Number.NaN, 1e20, -1e20, 3e38, -3e38]));
    expect(Object.is(y[0], 0)).toBe(true);
    expect(Object.is(y[1], -0)).toBe(true);
    expect(y[2]).toBe(Infinity);
    expect(y[3]).toBeNaN(); // −Infinity · (1 + tanh(−Infinity)) = −Infinity · 0
    expect(y[4]).toBeNaN();
    expect(y[5]).toBe(Math.fround(1e20));
    expect(Math.abs(y[6]!)).toBe(0);
    expect(y[7]).toBe(Math.fround(3e38));
    expect(Math.abs(y[8]!)).toBe(0);
  });
});
