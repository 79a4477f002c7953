import { describe, expect, it } from "vitest";
import { closeMismatch, gemmBound, U_F32, U_F64 } from "../../test/helpers/close.js";
import { fill } from "../../test/helpers/random.js";
import { gemmReference } from "./reference.js";
import { addLowRankScalar, gemmScalar } from "./scalar.js";

const SIZES = [0, 1, 2, 3, 5, 9, 17, 64];
const SHAPES: [number, number, number][] = [];
for (const m of SIZES) for (const k of [0, 1, 3, 17, 130]) for (const n of [0, 1, 5, 9, 64]) SHAPES.push([m, k, n]);

describe.each([
  ["float32", Float32Array, U_F32],
  ["float64", Float64Array, U_F64],
] as const)("gemmScalar %s matches the float64 reference", (_name, Ctor, u) => {
  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])("transA=%s transB=%s over the shape sweep", (transA, transB) => {
    for (const [m, k, n] of SHAPES) {
      const a = fill(new Ctor(m * k), m * 31 + k);
      const b = fill(new Ctor(k * n), n * 17 + k);
      const out = fill(new Ctor(m * n), 99); // garbage that beta = 0 must ignore
      const ref = new Float64Array(m * n);
      const gauge = new Float64Array(m * n);
      gemmReference(ref, gauge, a, b, m, k, n, transA, transB);
      const got = gemmScalar(out, a, b, m, k, n, transA, transB, 1, 0);
      expect(got).toBe(out);
      const bad = closeMismatch(got, ref, { bound: gemmBound(u, k, gauge, ref), shape: [m, n] });
      expect(bad, `m=${m} k=${k} n=${n}: ${bad}`).toBeNull();
    }
  });

  it("beta = 1 accumulates and alpha scales", () => {
    const a = fill(new Ctor(3 * 4), 1);
    const b = fill(new Ctor(4 * 5), 2);
    const c0 = fill(new Ctor(15), 3);
    const ref = gemmReference(new Float64Array(15), null, a, b, 3, 4, 5);
    const got = gemmScalar(Ctor.from(c0), a, b, 3, 4, 5, false, false, -2, 1);
    const want = Float64Array.from(ref, (v, i) => c0[i]! - 2 * v);
    expect(closeMismatch(got, want, { atol: 64 * u, rtol: 0 })).toBeNull();
  });

  it("leaves its inputs unchanged", () => {
    const a = fill(new Ctor(6), 5);
    const b = fill(new Ctor(6), 6);
    const a0 = Ctor.from(a);
    const b0 = Ctor.from(b);
    gemmScalar(new Ctor(4), a, b, 2, 3, 2, false, false, 1, 0);
    expect(a).toEqual(a0);
    expect(b).toEqual(b0);
  });
});

describe("addLowRankScalar", () => {
  it("adds s·t·up and matches the reference", () => {
    const t = fill(new Float64Array(3 * 2), 7);
    const up = fill(new Float64Array(2 * 4), 8);
    const out = fill(new Float64Array(12), 9);
    const before = Float64Array.from(out);
    const low = gemmReference(new Float64Array(12), null, t, up, 3, 2, 4);
    addLowRankScalar(out, t, up, 3, 2, 4, 0.5);
    expect(
      closeMismatch(
        out,
        Float64Array.from(before, (v, i) => v + 0.5 * low[i]!),
        { atol: 1e-15, rtol: 1e-15 },
      ),
    ).toBeNull();
  });

  it("an exactly zero addend leaves out bit-for-bit unchanged (even -0)", () => {
    const out = Float64Array.from([-0, 1, -0, 2]);
    addLowRankScalar(out, Float64Array.from([0, 0]), Float64Array.from([1, 2]), 2, 1, 2, 3);
    expect(Object.is(out[0], -0) && Object.is(out[2], -0)).toBe(true);
    addLowRankScalar(out, Float64Array.from([1, 1]), Float64Array.from([1, 2]), 2, 1, 2, 0);
    expect(Array.from(out)).toEqual([-0, 1, -0, 2]);
  });
});
