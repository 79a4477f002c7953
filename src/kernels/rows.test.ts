// The layer-output epilogues in WebAssembly (assembly/rows.ts) against the TypeScript loops they replace, bit for
// bit: the bias add (addRowVector) and the LoRA term's scaled add (addLowRank's epilogue, addScaled), over sizes
// 0, 1, odd and not multiples of four, with ±0, subnormal, infinite and NaN elements, resident and copied operands.
import { describe, expect, it } from "vitest";
import { fill } from "../../test/helpers/random.js";
import { addLowRank, addRowVector, kernelFloat32Array, kernelInfo } from "./select.js";
import { WasmGemm } from "./wasm/runtime.js";

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const SPECIAL = [0, -0, 1e-45, -1e-40, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 3.4e38, -3.4e38];

/** Random values with the special ones sprinkled in. */
function values(n: number, seed: number): Float32Array {
  const a = fill(new Float32Array(n), seed);
  for (let i = 0; i < n; i += 5) a[i] = SPECIAL[(i / 5 + seed) % SPECIAL.length]!;
  return a;
}

describe("rows.ts epilogues equal the TypeScript loops bit for bit", () => {
  const w = WasmGemm.createSync(kernelInfo().backend === "wasm-relaxed-simd" ? "relaxed" : "simd", true);

  it("addRowVector: h[i, j] + v[j]", () => {
    for (const [rows, d] of [
      [0, 5],
      [1, 1],
      [1, 3],
      [3, 7],
      [5, 16],
      [4, 33],
      [9, 2304],
    ] as const) {
      for (const resident of [false, true]) {
        const h0 = values(rows * d, rows + d);
        const v = values(d, 7 * d + 1);
        const want = h0.slice();
        for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) want[i * d + j] = want[i * d + j]! + v[j]!;
        const h = resident ? w.allocResident(rows * d)! : new Float32Array(rows * d);
        h.set(h0);
        expect(w.addRowVector(h, rows, d, v)).toBe(h);
        expect(bits(h)).toEqual(bits(want));
      }
    }
  });

  it("addScaled: d = s·low[i] in float64; out[i] + d rounded once where d ≠ 0, else out[i] untouched", () => {
    for (const n of [0, 1, 2, 3, 4, 5, 17, 1027]) {
      for (const s of [0.75, 1 / 3, -2, 1e-300, 0]) {
        for (const resident of [false, true]) {
          const o0 = values(n, n + 3);
          const low = values(n, 2 * n + 11);
          const want = o0.slice();
          for (let i = 0; i < n; i++) {
            const d = s * low[i]!;
            if (d !== 0) want[i] = want[i]! + d;
          }
          const out = resident ? w.allocResident(n)! : new Float32Array(n);
          out.set(o0);
          expect(w.addScaled(out, low, n, s)).toBe(out);
          expect(bits(out)).toEqual(bits(want));
        }
      }
    }
  });

  it("through select.ts: addRowVector on a view, and addLowRank, as the loops", () => {
    const [rows, d] = [6, 333];
    const h0 = values(rows * d, 5);
    const v = values(d, 6);
    const h = h0.slice();
    addRowVector(h.subarray(d, 5 * d), 4, d, v); // rows 1–4 only
    h0.forEach((x, i) => {
      const row = Math.floor(i / d);
      if (row >= 1 && row < 5) h0[i] = x + v[i % d]!;
    });
    expect(bits(h)).toEqual(bits(h0));
    // addLowRank's epilogue: out + s·(t·up) with the product from the same kernel, so equal to t·up then the loop
    const [n, r, dOut, s] = [37, 5, 67, 0.3];
    const t = fill(kernelFloat32Array(n * r), 1);
    const up = fill(new Float32Array(r * dOut), 2);
    const out0 = values(n * dOut, 3);
    const low = new Float32Array(n * dOut);
    w.gemm(low, t, up, n, r, dOut, false, false, 1, 0);
    const want = out0.slice();
    for (let i = 0; i < want.length; i++) {
      const dd = s * low[i]!;
      if (dd !== 0) want[i] = want[i]! + dd;
    }
    expect(bits(addLowRank(out0.slice(), t, up, n, r, dOut, s))).toEqual(bits(want));
  });
});
