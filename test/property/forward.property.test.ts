// Properties of loraForward over random shapes (0 and 1 included) and values, fixed seed.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loraReference } from "../../src/kernels/reference.js";
import { loraForward } from "../../src/lora/forward.js";
import { closeMismatch, loraBound, U_F32, U_F64 } from "../helpers/close.js";
import { SEED } from "../helpers/seed.js";

// Magnitudes below 2^-20 are flushed to 0: the γ_K·Σ|a||b| bound assumes no underflow, and with |v| ≥ 2^-20 no
// product or partial sum of these sizes can reach float32's subnormal range (2^-126).
const value = fc
  .float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-8), max: Math.fround(8) })
  .map((v) => (Math.abs(v) < 2 ** -20 ? 0 : v));
const dims = fc.record({
  n: fc.integer({ min: 0, max: 9 }),
  dIn: fc.integer({ min: 0, max: 12 }),
  dOut: fc.integer({ min: 0, max: 12 }),
  r: fc.integer({ min: 1, max: 5 }),
});
const problem = dims.chain((d) =>
  fc.record({
    d: fc.constant(d),
    x: fc.array(value, { minLength: d.n * d.dIn, maxLength: d.n * d.dIn }),
    W: fc.array(value, { minLength: d.dIn * d.dOut, maxLength: d.dIn * d.dOut }),
    down: fc.array(value, { minLength: d.dIn * d.r, maxLength: d.dIn * d.r }),
    up: fc.array(value, { minLength: d.r * d.dOut, maxLength: d.r * d.dOut }),
    alpha: fc.double({ min: -16, max: 16, noNaN: true }).map((v) => (Math.abs(v) < 2 ** -20 ? 0 : v)),
  }),
);
type Problem = typeof problem extends fc.Arbitrary<infer P> ? P : never;

function views<C extends Float32ArrayConstructor | Float64ArrayConstructor>(p: Problem, Ctor: C) {
  const { n, dIn, dOut, r } = p.d;
  return {
    x: { data: Ctor.from(p.x) as InstanceType<C>, rows: n, cols: dIn },
    W: { data: Ctor.from(p.W) as InstanceType<C>, rows: dIn, cols: dOut },
    B: { data: Ctor.from(p.down) as InstanceType<C>, rows: dIn, cols: r },
    A: { data: Ctor.from(p.up) as InstanceType<C>, rows: r, cols: dOut },
  };
}

describe.each([
  ["float64", Float64Array, U_F64],
  ["float32", Float32Array, U_F32],
] as const)("loraForward %s", (_name, Ctor, u) => {
  it("equals the float64 reference within the error bound", () => {
    fc.assert(
      fc.property(problem, (p) => {
        const { x, W, B, A } = views(p, Ctor);
        const { n, dIn, dOut, r } = p.d;
        const s = p.alpha / r;
        const ref = loraReference(x.data, W.data, B.data, A.data, s, n, dIn, dOut, r);
        const h = loraForward(x, W, B, A, p.alpha);
        const bound = loraBound(u, dIn, r, s, ref.gaugeBase, ref.gaugeLowRank, ref.h);
        expect(closeMismatch(h.data, ref.h, { bound, shape: [n, dOut] })).toBeNull();
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("B = 0, A = 0 or alpha = 0 gives exactly x·W, bit for bit", () => {
    fc.assert(
      fc.property(problem, (p) => {
        const { x, W, B, A } = views(p, Ctor);
        const base = loraForward(x, W, { ...B, data: new Ctor(B.data.length) }, A, p.alpha).data;
        expect(loraForward(x, W, B, { ...A, data: new Ctor(A.data.length) }, p.alpha).data).toEqual(base);
        expect(loraForward(x, W, B, A, 0).data).toEqual(base);
        // and x·W itself: with W alone the reference product is exact for these small integers-free checks
        const ref = loraReference(x.data, W.data, B.data, A.data, 0, p.d.n, p.d.dIn, p.d.dOut, p.d.r);
        const bound = loraBound(u, p.d.dIn, p.d.r, 0, ref.gaugeBase, ref.gaugeLowRank, ref.h);
        expect(closeMismatch(base, ref.h, { bound })).toBeNull();
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it("the low-rank term is linear in alpha and equals x·(W + s·B·A)", () => {
    fc.assert(
      fc.property(problem, (p) => {
        const { x, W, B, A } = views(p, Ctor);
        const { n, dIn, dOut, r } = p.d;
        const base = loraForward(x, W, B, A, 0).data;
        const h1 = loraForward(x, W, B, A, p.alpha).data;
        const h2 = loraForward(x, W, B, A, 2 * p.alpha).data;
        const s = p.alpha / r;
        const ref = loraReference(x.data, W.data, B.data, A.data, 2 * s, n, dIn, dOut, r);
        // h2 − base ≈ 2·(h1 − base), within the bound of both evaluations
        const bound = loraBound(u, dIn, r, 2 * s, ref.gaugeBase, ref.gaugeLowRank, ref.h).map((b) => 4 * b);
        const lhs = Float64Array.from(h2, (v, i) => v - base[i]!);
        const rhs = Float64Array.from(h1, (v, i) => 2 * (v - base[i]!));
        expect(closeMismatch(lhs, rhs, { bound })).toBeNull();
        // merged form: W' = W + s·B·A computed in float64, then x·W'
        const merged = new Float64Array(dIn * dOut);
        for (let i = 0; i < dIn; i++)
          for (let j = 0; j < dOut; j++) {
            let acc = W.data[i * dOut + j]!;
            for (let q = 0; q < r; q++) acc += s * B.data[i * r + q]! * A.data[q * dOut + j]!;
            merged[i * dOut + j] = acc;
          }
        const viaMerged = loraReference(x.data, merged, B.data, A.data, 0, n, dIn, dOut, r).h;
        const b1 = loraBound(u, dIn, r, s, ref.gaugeBase, ref.gaugeLowRank, ref.h).map((b) => 2 * b);
        expect(closeMismatch(h1, viaMerged, { bound: b1 })).toBeNull();
      }),
      { seed: SEED, numRuns: 100 },
    );
  });
});

describe("loraForward nested and rsLoRA", () => {
  it("nested input equals the float64 view path exactly", () => {
    fc.assert(
      fc.property(problem, (p) => {
        fc.pre(p.d.dIn > 0 && p.d.dOut > 0);
        const { n, dIn, dOut, r } = p.d;
        const nest = (a: number[], rows: number, cols: number) =>
          Array.from({ length: rows }, (_, i) => a.slice(i * cols, (i + 1) * cols));
        const h = loraForward(
          nest(p.x, n, dIn),
          nest(p.W, dIn, dOut),
          nest(p.down, dIn, r),
          nest(p.up, r, dOut),
          p.alpha,
        );
        const { x, W, B, A } = views(p, Float64Array);
        expect(h.flat()).toEqual(Array.from(loraForward(x, W, B, A, p.alpha).data));
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it("rsLoRA scales by alpha / sqrt(r): equals standard scaling with alpha·sqrt(r)", () => {
    fc.assert(
      fc.property(problem, (p) => {
        const { x, W, B, A } = views(p, Float64Array);
        const rs = loraForward(x, W, B, A, p.alpha, { scaling: "rslora" }).data;
        const viaScale = loraForward(x, W, B, A, p.alpha, { scale: p.alpha / Math.sqrt(p.d.r) }).data;
        expect(rs).toEqual(viaScale);
      }),
      { seed: SEED, numRuns: 50 },
    );
  });
});
