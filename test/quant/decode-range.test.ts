// The decode kernels (n < 4 rows) over Q8_0 / Q4_0 weights at the edges of their numerics: the fast kernels
// (quant-gemv.ts) scale the quants by 2^24 / 2^28 and the f16 scales by the inverse, which is exact only while
// every x of a row is 0 or within [2^-64, 2^64]; other rows take the widening kernels. Both must match the float64
// reference on the dequantized weight within the float32 bound, at and beyond the range's ends, with every kind of
// finite f16 scale (±0, subnormal, the largest, negative), and ±Inf / NaN in x must propagate as in float32.

import { describe, expect, it } from "vitest";
import { matmul, type QuantMatrix, quantizeMatrix } from "../../src/index.js";
import { expectClose } from "../helpers/close.js";
import { fill } from "../helpers/random.js";
import { dequantizedAt, type Layout, reference } from "./reference.js";

const CASES = (["q8_0", "q4_0"] as const).flatMap((t) =>
  (["in_out", "out_in"] as Layout[]).map((l) => [t, l] as const),
);

function weight(type: "q8_0" | "q4_0", layout: Layout, dIn: number, dOut: number, scales?: number[]) {
  const [rows, cols] = layout === "in_out" ? [dIn, dOut] : [dOut, dIn];
  const q = quantizeMatrix({ data: fill(new Float32Array(rows * cols), 3 + dIn), rows, cols }, type, { layout });
  if (scales) {
    // overwrite block b's f16 scale with scales[b % length] (little-endian half bits)
    const bb = type === "q8_0" ? 34 : 18;
    for (let b = 0; b < q.bytes.length / bb; b++) {
      const h = scales[b % scales.length]!;
      q.bytes[b * bb] = h & 0xff;
      q.bytes[b * bb + 1] = h >> 8;
    }
  }
  return { q, at: dequantizedAt(q, layout, dIn, dOut).at };
}

function decode(q: QuantMatrix, x: Float32Array, n: number, dIn: number) {
  return matmul({ data: x, rows: n, cols: dIn }, q).data;
}

describe("quantized decode at the edges of the fast kernels' range", () => {
  it.each(CASES)("%s %s: rows of x at, inside and beyond [2^-64, 2^64] match the reference", (type, layout) => {
    const [dIn, dOut] = [160, 96]; // 5 blocks per stored row on the out_in side: the scale tail runs too
    const { q, at } = weight(type, layout, dIn, dOut);
    const rows: Float32Array[] = [];
    const unit = fill(new Float32Array(dIn), 9);
    // fast kernels: |x| up to 2^64, |x| from 2^-64 (and zeros); widening kernels: beyond either end
    rows.push(unit.map((v) => v * 2 ** 64));
    rows.push(unit.map((v) => Math.sign(v) * (1 + Math.abs(v)) * 2 ** -64));
    rows[0]![7] = 2 ** 64;
    rows[1]![7] = -(2 ** -64);
    rows.push(unit.map((v, p) => (p % 3 === 0 ? 0 : v)));
    rows.push(unit.map((v) => v * 2 ** 70));
    rows.push(unit.map((v) => Math.sign(v) * (1 + Math.abs(v)) * 2 ** -70));
    rows.push(unit.map((v, p) => (p === 11 ? 2 ** 65 : v)));
    rows.push(unit.map((v) => v * 2 ** 100)); // would overflow the fast kernels' 2^24/2^28-scaled block sums
    rows.push(unit.map((v) => Math.sign(v) * (1 + Math.abs(v)) * 2 ** -110)); // would underflow x·d·2^-28
    for (let i = 0; i < rows.length; i += 3) {
      const n = Math.min(3, rows.length - i);
      const x = new Float32Array(n * dIn);
      for (let r = 0; r < n; r++) x.set(rows[i + r]!, r * dIn);
      const ref = reference(x, at, n, dIn, dOut);
      expectClose(decode(q, x, n, dIn), ref.h, { bound: ref.bound, shape: [n, dOut] });
      for (let r = 0; r < n; r++) {
        const one = reference(x.subarray(r * dIn, (r + 1) * dIn), at, 1, dIn, dOut);
        expectClose(decode(q, x.slice(r * dIn, (r + 1) * dIn), 1, dIn), one.h, { bound: one.bound });
      }
    }
  });

  it.each(CASES)(
    "%s %s: ±0, subnormal, largest and negative f16 scales decode like the dequantized weight",
    (type, layout) => {
      // 0x0000 +0, 0x8000 −0, 0x0001 / 0x03ff subnormal, 0x0400 smallest normal, 0x7bff 65504, 0xbc00 −1, 0x3555 ≈ 1/3
      const scales = [0x0001, 0x3555, 0x8000, 0x7bff, 0x03ff, 0x0000, 0xbc00, 0x0400, 0xc900];
      const [dIn, dOut] = layout === "out_in" ? [288, 7] : [7, 288];
      const { q, at } = weight(type, layout, dIn, dOut, scales);
      const x = fill(new Float32Array(dIn), 12);
      const ref = reference(x, at, 1, dIn, dOut);
      expectClose(decode(q, x, 1, dIn), ref.h, { bound: ref.bound });
    },
  );

  it.each(CASES)("%s %s: ±Inf and NaN in x propagate as in the float32 product", (type, layout) => {
    const [dIn, dOut] = [64, 64];
    const { q, at } = weight(type, layout, dIn, dOut);
    for (const bad of [Infinity, -Infinity, NaN]) {
      const x = fill(new Float32Array(dIn), 13);
      x[5] = bad;
      const ref = reference(x, at, 1, dIn, dOut);
      const c = decode(q, x, 1, dIn);
      expectClose(c, ref.h, { bound: ref.bound });
      expect(c.some((v) => !Number.isFinite(v))).toBe(true);
    }
  });
});
