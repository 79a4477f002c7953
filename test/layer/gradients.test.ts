// Gradients of LoraLinear: central differences in float64 on random shapes (fast-check, SEED), the closed forms,
// loraBackward, dropout, accumulation, and no gradient for the base weight.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type FloatArray, LoraLinear, loraBackward, type Matrix } from "../../src/index.js";
import { gemmReference } from "../../src/kernels/reference.js";
import { expectClose } from "../helpers/close.js";
import { SEED } from "../helpers/seed.js";
import { CASES, type Case, makeInput, makeLayer, matrix, randomArray, reference } from "./cases.js";

const EPS = 1e-6;

/** L = Σ dH ⊙ forward(x), so ∂L/∂θ is what backward(dH) returns/accumulates. */
function loss(layer: LoraLinear, x: Matrix, dH: FloatArray): number {
  const h = layer.forward(x).data;
  let s = 0;
  for (let i = 0; i < h.length; i++) s += h[i]! * dH[i]!;
  return s;
}

function numericGrad(f: () => number, v: FloatArray): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i]!;
    v[i] = keep + EPS;
    const plus = f();
    v[i] = keep - EPS;
    const minus = f();
    v[i] = keep;
    g[i] = (plus - minus) / (2 * EPS);
  }
  return g;
}

function checkAgainstDifferences(layer: LoraLinear, x: Matrix, dH: FloatArray): void {
  const w0 = Array.from(layer.weight.data);
  layer.zeroGrad();
  layer.train();
  layer.forward(x);
  const dX = layer.backward({ data: dH, rows: x.rows, cols: layer.dOut });
  expect(Array.from(layer.weight.data)).toEqual(w0); // the base weight gets no update and no gradient
  layer.train(false);
  const f = () => loss(layer, x, dH);
  // DoRA's column norm is a constant for gradients: differentiate the reference with the norm held fixed
  const { norms } = reference(layer, x, layer.activeAdapters);
  const frozen = () => {
    const { h } = reference(layer, x, layer.activeAdapters, 1e-4, norms);
    return h.reduce((acc, v, i) => acc + v * dH[i]!, 0);
  };
  const tol = { atol: 1e-6, rtol: 1e-5 };
  expectClose(dX.data, numericGrad(f, x.data), tol);
  for (const p of layer.parameters()) expectClose(p.grad, numericGrad(frozen, p.value), tol);
}

const float64Cases = CASES.filter((c) => c.dtype === "float64" && c.n > 0 && c.n * c.dIn * c.dOut < 400);

describe.each(float64Cases)("central differences: $name", (c: Case) => {
  it("dX, dDown, dUp and dMagnitude match", () => {
    const layer = makeLayer(c);
    checkAgainstDifferences(layer, makeInput(c), randomArray("float64", c.n * c.dOut, 77));
  });
});

describe("gradients on random shapes", () => {
  it("central differences hold for random shapes, adapters, layouts and bias (fast-check)", () => {
    const shape = fc.record({
      n: fc.integer({ min: 1, max: 4 }),
      dIn: fc.integer({ min: 1, max: 5 }),
      dOut: fc.integer({ min: 1, max: 5 }),
      r1: fc.integer({ min: 1, max: 3 }),
      r2: fc.integer({ min: 1, max: 3 }),
      dora: fc.boolean(),
      order: fc.boolean(),
      layout: fc.constantFrom("in_out" as const, "out_in" as const),
      bias: fc.boolean(),
      seed: fc.integer({ min: 1, max: 1_000_000 }),
    });
    fc.assert(
      fc.property(shape, (s) => {
        const c: Case = {
          name: "random",
          n: s.n,
          dIn: s.dIn,
          dOut: s.dOut,
          layout: s.layout,
          dtype: "float64",
          bias: s.bias,
          adapters: [
            { name: "p", r: s.r1, alpha: 3 },
            { name: "q", r: s.r2, alpha: 2, useDora: s.dora, scaling: "rslora" },
          ],
        };
        const layer = makeLayer(c, s.seed);
        if (s.order) layer.setActive(["q", "p"]);
        checkAgainstDifferences(layer, makeInput(c, s.seed + 5), randomArray("float64", s.n * s.dOut, s.seed + 6));
      }),
      { seed: SEED, numRuns: 40 },
    );
  });
});

describe("closed forms", () => {
  it("dUp = s·(x·down)ᵀ·dH, dDown = s·xᵀ·(dH·upᵀ), dX = dH·Wᵀ + s·(dH·upᵀ)·downᵀ; the layer equals loraBackward", () => {
    for (const layout of ["in_out", "out_in"] as const) {
      const [n, dIn, dOut, r] = [5, 7, 4, 3];
      const W = layout === "in_out" ? matrix("float64", dIn, dOut, 1) : matrix("float64", dOut, dIn, 1);
      const down = matrix("float64", dIn, r, 2);
      const up = matrix("float64", r, dOut, 3);
      const x = matrix("float64", n, dIn, 4);
      const dH = matrix("float64", n, dOut, 5);
      const s = 2.5;
      const t = gemmReference(new Float64Array(n * r), null, x.data, down.data, n, dIn, r); // x·down
      const dUp = gemmReference(new Float64Array(r * dOut), null, t, dH.data, r, n, dOut, true).map((v) => s * v);
      const u = gemmReference(new Float64Array(n * r), null, dH.data, up.data, n, dOut, r, false, true); // dH·upᵀ
      const dDown = gemmReference(new Float64Array(dIn * r), null, x.data, u, dIn, n, r, true).map((v) => s * v);
      const dXb = gemmReference(
        new Float64Array(n * dIn),
        null,
        dH.data,
        W.data,
        n,
        dOut,
        dIn,
        false,
        layout === "in_out",
      );
      const dXl = gemmReference(new Float64Array(n * dIn), null, u, down.data, n, r, dIn, false, true);
      const dX = dXb.map((v, i) => v + s * dXl[i]!);
      const op = loraBackward(x, W, { down, up, scaling: s }, dH, { layout });
      const tol = { atol: 1e-13, rtol: 1e-12 };
      expectClose(op.dUp.data, dUp, tol);
      expectClose(op.dDown.data, dDown, tol);
      expectClose(op.dX.data, dX, tol);
      expect([op.dX.rows, op.dX.cols, op.dDown.rows, op.dDown.cols, op.dUp.rows, op.dUp.cols]).toEqual([
        n,
        dIn,
        dIn,
        r,
        r,
        dOut,
      ]);

      const layer = new LoraLinear({ weight: W, layout });
      layer.addAdapter("a", { down, up, scale: s });
      layer.train().forward(x);
      expectClose(layer.backward(dH).data, dX, tol);
      const [pd, pu] = layer.parameters();
      expect([pd!.role, pu!.role]).toEqual(["down", "up"]);
      expectClose(pd!.grad, dDown, tol);
      expectClose(pu!.grad, dUp, tol);
    }
  });

  it("float32 gradients agree with the float64 closed forms", () => {
    const c: Case = {
      name: "f32",
      n: 6,
      dIn: 9,
      dOut: 5,
      layout: "in_out",
      dtype: "float32",
      bias: true,
      adapters: [{ name: "a", r: 3, alpha: 6 }],
    };
    const c64: Case = { ...c, dtype: "float64" };
    const [l32, l64] = [makeLayer(c), makeLayer(c64)];
    const dH32 = randomArray("float32", 30, 8);
    const dH64 = Float64Array.from(dH32);
    l32.train().forward(makeInput(c));
    l64.train().forward({ data: Float64Array.from(makeInput(c).data), rows: 6, cols: 9 });
    expectClose(
      l32.backward({ data: dH32, rows: 6, cols: 5 }).data,
      l64.backward({ data: dH64, rows: 6, cols: 5 }).data,
      { atol: 1e-5, rtol: 1e-5 },
    );
    const [p32, p64] = [l32.parameters(), l64.parameters()];
    for (const [i, p] of p32.entries()) expectClose(p.grad, p64[i]!.grad, { atol: 1e-5, rtol: 1e-5 });
  });
});

describe("gradient bookkeeping", () => {
  const setup = () => {
    const layer = new LoraLinear({ weight: matrix("float64", 4, 3, 1) });
    layer.addAdapter("a", { down: matrix("float64", 4, 2, 2), up: matrix("float64", 2, 3, 3) });
    layer.addAdapter("d", { down: matrix("float64", 4, 2, 4), up: matrix("float64", 2, 3, 5), useDora: true });
    layer.setActive(["a", "d"]);
    return layer;
  };

  it("backward accumulates; zeroGrad clears; parameters are live arrays of active, unmerged adapters", () => {
    const layer = setup().train();
    const x = matrix("float64", 2, 4, 6);
    const dH = matrix("float64", 2, 3, 7);
    layer.forward(x);
    layer.backward(dH);
    const once = layer.parameters().map((p) => Array.from(p.grad));
    layer.backward(dH);
    for (const [i, p] of layer.parameters().entries()) {
      expectClose(
        p.grad,
        once[i]!.map((v) => 2 * v),
        { atol: 1e-14, rtol: 1e-14 },
      );
    }
    expect(layer.parameters().map((p) => `${p.adapter}.${p.role}`)).toEqual([
      "a.down",
      "a.up",
      "d.down",
      "d.up",
      "d.magnitude",
    ]);
    expect(layer.parameters()[0]!.value).toBe(layer.adapter("a").down.data);
    layer.zeroGrad();
    for (const p of layer.parameters()) expect(p.grad.every((v) => v === 0)).toBe(true);
    layer.merge(["a"]);
    expect(layer.parameters().map((p) => p.adapter)).toEqual(["d", "d", "d"]);
  });

  it("dropout: dX and the gradients match central differences under the same seeded masks", () => {
    const make = () => {
      const l = new LoraLinear({ weight: matrix("float64", 5, 3, 1), bias: Float64Array.of(0.5, -1, 2) });
      l.addAdapter("a", { down: matrix("float64", 5, 2, 2), up: matrix("float64", 2, 3, 3), dropout: 0.4, seed: 9 });
      l.addAdapter("d", {
        down: matrix("float64", 5, 2, 4),
        up: matrix("float64", 2, 3, 5),
        dropout: 0.3,
        seed: 10,
        useDora: true,
      });
      l.setActive(["a", "d"]);
      return l.train();
    };
    const x = matrix("float64", 4, 5, 6);
    const dH = randomArray("float64", 12, 7);
    const layer = make();
    layer.forward(x);
    const dX = layer.backward({ data: dH, rows: 4, cols: 3 });
    const params = layer.parameters();
    // a fresh layer with the same seeds draws the same masks on its first forward
    const f = (mutate: (l: LoraLinear) => FloatArray, i: number, delta: number) => {
      const l = make();
      const v = mutate(l);
      v[i] = v[i]! + delta;
      return loss(l, x, dH);
    };
    const tol = { atol: 1e-6, rtol: 1e-5 };
    params.forEach((p, k) => {
      // d's down/up move its (detached) norm; they are checked with the norm held fixed in the suites above
      if (p.adapter === "d" && p.role !== "magnitude") return;
      const num = p.value.map(
        (_, i) =>
          (f((l) => l.parameters()[k]!.value, i, EPS) - f((l) => l.parameters()[k]!.value, i, -EPS)) / (2 * EPS),
      );
      expectClose(p.grad, num, tol);
    });
    const xs = x.data;
    const numX = xs.map((_, i) => {
      const keep = xs[i]!;
      xs[i] = keep + EPS;
      const plus = loss(make(), x, dH);
      xs[i] = keep - EPS;
      const minus = loss(make(), x, dH);
      xs[i] = keep;
      return (plus - minus) / (2 * EPS);
    });
    expectClose(dX.data, numX, tol);
  });
});
