// Products over Q8_0 / Q4_0 weights (matmul, loraForward, lowRankForward; both layouts; every kernel path: the
// WebAssembly GEMV for n < 4, the packed GEMM for n ≥ 4, the TypeScript fallback, threads) against a float64
// reference computed from the dequantized weight, within the float32 error bound of that product. The packed
// path must also equal the float32 GEMM on the dequantized weight bit for bit.

import { afterEach, describe, expect, it } from "vitest";
import {
  configureKernels,
  dequantizeMatrix,
  kernelInfo,
  loraForward,
  lowRankForward,
  matmul,
  type QuantMatrix,
  quantizeMatrix,
} from "../../src/index.js";
import { expectClose } from "../helpers/close.js";
import { fill } from "../helpers/random.js";
import { dequantizedAt, type Layout, reference } from "./reference.js";

const TYPES = ["q8_0", "q4_0"] as const;
const LAYOUTS: Layout[] = ["in_out", "out_in"];
const BLOCK_AXIS = [0, 32, 64, 96, 288];
const FREE_AXIS = [0, 1, 3, 5, 17, 33];
const ROWS = [0, 1, 2, 3, 5, 17];

afterEach(() => {
  configureKernels();
});

function quantWeight(type: "q8_0" | "q4_0", layout: Layout, dIn: number, dOut: number, seed: number) {
  const [rows, cols] = layout === "in_out" ? [dIn, dOut] : [dOut, dIn];
  const q = quantizeMatrix({ data: fill(new Float32Array(rows * cols), seed), rows, cols }, type, { layout });
  return { q, ...dequantizedAt(q, layout, dIn, dOut) };
}

const backends = ["auto", "typescript"] as const;

describe.each(backends)("quantized products, backend %s", (backend) => {
  it.each(TYPES.flatMap((t) => LAYOUTS.map((l) => [t, l] as const)))(
    "%s %s: matmul and loraForward over the shape sweep",
    (type, layout) => {
      configureKernels({ backend });
      let checked = 0;
      for (const blockAxis of BLOCK_AXIS)
        for (const free of FREE_AXIS) {
          const [dIn, dOut] = layout === "in_out" ? [free, blockAxis] : [blockAxis, free];
          for (const n of ROWS) {
            const { q, at } = quantWeight(type, layout, dIn, dOut, 7 + dIn + 3 * dOut);
            const x = fill(new Float32Array(n * dIn), 11 + n);
            const c = matmul({ data: x, rows: n, cols: dIn }, q);
            const ref = reference(x, at, n, dIn, dOut);
            expectClose(c.data, ref.h, { bound: ref.bound, shape: [n, dOut] });
            const r = 1 + (n % 3);
            const down = fill(new Float32Array(dIn * r), 5);
            const up = fill(new Float32Array(r * dOut), 6);
            const h = loraForward(
              { data: x, rows: n, cols: dIn },
              q,
              { data: down, rows: dIn, cols: r },
              { data: up, rows: r, cols: dOut },
              2 * r,
            );
            const refL = reference(x, at, n, dIn, dOut, { down, up, r, s: 2 });
            expectClose(h.data, refL.h, { bound: refL.bound, shape: [n, dOut] });
            checked++;
          }
        }
      expect(checked).toBe(BLOCK_AXIS.length * FREE_AXIS.length * ROWS.length);
    },
  );
});

describe("quantized products: kernel paths", () => {
  it("uses WebAssembly here (so the sweep above covered the SIMD kernels)", () => {
    expect(kernelInfo().backend).not.toBe("typescript");
  });

  it.each(TYPES.flatMap((t) => LAYOUTS.map((l) => [t, l] as const)))(
    "%s %s: n ≥ 4 equals the float32 GEMM on the dequantized weight bit for bit",
    (type, layout) => {
      const [n, dIn, dOut, r] = [37, 320, 96, 8];
      const { q, wd } = quantWeight(type, layout, dIn, dOut, 3);
      const x = fill(new Float32Array(n * dIn), 4);
      const [rows, cols] = layout === "in_out" ? [dIn, dOut] : [dOut, dIn];
      const c = matmul({ data: x, rows: n, cols: dIn }, q);
      const f = matmul({ data: x, rows: n, cols: dIn }, { data: wd, rows, cols }, { transB: layout === "out_in" });
      expect(Buffer.from(c.data.buffer).equals(Buffer.from(f.data.buffer))).toBe(true);
      if (layout === "in_out") {
        const down = fill(new Float32Array(dIn * r), 8);
        const up = fill(new Float32Array(r * dOut), 9);
        const adapter = {
          down: { data: down, rows: dIn, cols: r },
          up: { data: up, rows: r, cols: dOut },
          scaling: 0.5,
        };
        const hq = lowRankForward({ data: x, rows: n, cols: dIn }, q, adapter);
        const hf = lowRankForward({ data: x, rows: n, cols: dIn }, { data: wd, rows, cols }, adapter);
        expect(Buffer.from(hq.data.buffer).equals(Buffer.from(hf.data.buffer))).toBe(true);
      }
    },
  );

  it.each(TYPES.flatMap((t) => LAYOUTS.map((l) => [t, l] as const)))(
    "%s %s: threads never change a bit (decode and batch)",
    (type, layout) => {
      for (const [n, dIn, dOut] of [
        [1, 4096, 1056],
        [2, 2048, 2080],
        [9, 1024, 512],
      ] as const) {
        const { q, at } = quantWeight(type, layout, dIn, dOut, 21);
        const x = fill(new Float32Array(n * dIn), 22);
        const one = matmul({ data: x, rows: n, cols: dIn }, q, { threads: 1 });
        const two = matmul({ data: x, rows: n, cols: dIn }, q, { threads: 2 });
        expect(Buffer.from(one.data.buffer).equals(Buffer.from(two.data.buffer))).toBe(true);
        const ref = reference(x, at, n, dIn, dOut);
        expectClose(one.data, ref.h, { bound: ref.bound, shape: [n, dOut] });
      }
    },
  );

  it("a zero low-rank term leaves h equal to matmul bit for bit (alpha = 0 and up = 0)", () => {
    for (const layout of LAYOUTS) {
      const [n, dIn, dOut, r] = [2, 64, 64, 4];
      const { q } = quantWeight("q4_0", layout, dIn, dOut, 1);
      const xm = { data: fill(new Float32Array(n * dIn), 2), rows: n, cols: dIn };
      const down = { data: fill(new Float32Array(dIn * r), 3), rows: dIn, cols: r };
      const up = { data: new Float32Array(r * dOut), rows: r, cols: dOut };
      const c = matmul(xm, q);
      expect(loraForward(xm, q, down, up, 8).data).toEqual(c.data);
      expect(loraForward(xm, q, down, { ...up, data: fill(new Float32Array(r * dOut), 4) }, 0).data).toEqual(c.data);
    }
  });

  it("accepts {data, dims} tensors for x with leading dims and writes options.out", () => {
    const { q, at } = quantWeight("q8_0", "out_in", 64, 3, 5);
    const x = fill(new Float32Array(2 * 3 * 64), 6);
    const out = new Float32Array(6 * 3);
    const c = matmul({ data: x, dims: [2, 3, 64] }, q, { out });
    expect(c.data).toBe(out);
    expect((c as { dims: readonly number[] }).dims).toEqual([2, 3, 3]);
    const ref = reference(x, at, 6, 64, 3);
    expectClose(out, ref.h, { bound: ref.bound });
  });

  it("the dequantized reference of a QuantMatrix is exact for hand-made blocks (Q8_0, Q4_0 nibble order)", () => {
    // Q8_0: d = 0.5 (f16 0x3800), q = j − 16 → (j − 16)/2; Q4_0: d = −2 (0xc000), byte j = j | (15 − j) << 4
    const q8 = new Uint8Array(34);
    q8[0] = 0x00;
    q8[1] = 0x38;
    for (let j = 0; j < 32; j++) q8[2 + j] = (j - 16) & 0xff;
    const q4 = new Uint8Array(18);
    q4[1] = 0xc0;
    for (let j = 0; j < 16; j++) q4[2 + j] = j | ((15 - j) << 4);
    const m8: QuantMatrix = { type: "q8_0", bytes: q8, rows: 1, cols: 32 };
    const m4: QuantMatrix = { type: "q4_0", bytes: q4, rows: 1, cols: 32 };
    expect(Array.from(dequantizeMatrix(m8).data)).toEqual(Array.from({ length: 32 }, (_, j) => (j - 16) / 2));
    const want4 = Array.from({ length: 32 }, (_, j) => (j < 16 ? (j - 8) * -2 : (15 - (j - 16) - 8) * -2));
    expect(Array.from(dequantizeMatrix(m4).data)).toEqual(want4);
    // and the kernels read the same values: x = e_j picks column j of the in_out [32, 1]… via out_in [1, 32]
    for (const [m, want] of [
      [m8, Array.from(dequantizeMatrix(m8).data)],
      [m4, want4],
    ] as const) {
      const eye = new Float32Array(32 * 32);
      for (let j = 0; j < 32; j++) eye[j * 33] = 1;
      const c = matmul({ data: eye, rows: 32, cols: 32 }, { ...m, layout: "out_in" });
      const z = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0); // a sum of ±0 terms is +0
      expect(z(c.data)).toEqual(z(want));
      const c1 = matmul({ data: eye.subarray(0, 32 * 3), rows: 3, cols: 32 }, { ...m, layout: "out_in" });
      expect(z(c1.data)).toEqual(z(want.slice(0, 3)));
    }
  });
});
