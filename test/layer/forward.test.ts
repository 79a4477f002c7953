// LoraLinear forward over the CASES table: float64 reference with bound-derived tolerances (capped by PEFT's
// 1e-4), fresh adapters bit-exact, the out_in layout read without copying, rsLoRA and scale overrides.
import { describe, expect, it } from "vitest";
import { LoraLinear, loraForward, type Matrix } from "../../src/index.js";
import { expectClose } from "../helpers/close.js";
import { CASES, type Case, makeInput, makeLayer, matrix, randomArray, reference } from "./cases.js";

describe.each(CASES)("forward: $name", (c: Case) => {
  it("matches the float64 reference within the error bound", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    const { h, bound } = reference(layer, x, layer.activeAdapters);
    const out = layer.forward(x);
    expect([out.rows, out.cols]).toEqual([c.n, c.dOut]);
    expect(out.data.constructor).toBe(x.data.constructor);
    expectClose(out.data, h, { bound, shape: [c.n, c.dOut] });
  });

  it("a fresh adapter (default, gaussian, DoRA) leaves the output bit for bit unchanged", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    layer.setActive([]);
    const base = Array.from(layer.forward(x).data);
    layer.addAdapter("fresh", { r: 3, alpha: 7 });
    layer.addAdapter("fresh-g", { r: 2, alpha: 2, init: "gaussian" });
    const names = ["fresh", "fresh-g"];
    if (c.dIn > 0) {
      layer.addAdapter("fresh-d", { r: 2, alpha: 5, useDora: true });
      names.push("fresh-d");
    }
    layer.setActive(names);
    expect(Array.from(layer.forward(x).data)).toEqual(base);
    layer.train();
    expect(Array.from(layer.forward(x).data)).toEqual(base);
  });

  it("no active adapter gives x·W + bias", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    layer.setActive([]);
    const { h, bound } = reference(layer, x, [], 1e-6);
    expectClose(layer.forward(x).data, h, { bound });
  });
});

describe("layout and scaling", () => {
  it("out_in reads the [dOut, dIn] weight without copying and equals in_out on the transpose", () => {
    const dIn = 5;
    const dOut = 3;
    const wt = matrix("float64", dOut, dIn, 4); // [dOut, dIn]
    const w = new Float64Array(dIn * dOut);
    for (let i = 0; i < dIn; i++) for (let j = 0; j < dOut; j++) w[i * dOut + j] = wt.data[j * dIn + i]!;
    const a = new LoraLinear({ weight: wt, layout: "out_in" });
    const b = new LoraLinear({ weight: { data: w, dims: [dIn, dOut] } });
    expect(a.weight.data).toBe(wt.data);
    expect([a.dIn, a.dOut, b.dIn, b.dOut]).toEqual([dIn, dOut, dIn, dOut]);
    for (const l of [a, b])
      l.addAdapter("x", { down: matrix("float64", dIn, 2, 5), up: matrix("float64", 2, dOut, 6), alpha: 3 });
    const x = matrix("float64", 4, dIn, 7);
    expectClose(a.forward(x).data, b.forward(x).data, { atol: 1e-14, rtol: 1e-14 });
    a.merge();
    b.merge();
    for (let i = 0; i < dIn; i++)
      for (let j = 0; j < dOut; j++) expect(wt.data[j * dIn + i]).toBeCloseTo(w[i * dOut + j]!, 14);
  });

  it("scaling is alpha/r, alpha/√r (rsLoRA), or the scale override, exactly", () => {
    const layer = new LoraLinear({ weight: matrix("float32", 4, 4, 1) });
    layer.addAdapter("std", { r: 8, alpha: 16 });
    layer.addAdapter("rs", { r: 64, alpha: 64, scaling: "rslora" });
    layer.addAdapter("over", { r: 4, alpha: 16, scale: 0.125 });
    layer.addAdapter("given", { down: matrix("float32", 4, 3, 2), up: matrix("float32", 3, 4, 3) });
    expect(layer.adapter("std").scaling).toBe(2);
    expect(layer.adapter("rs").scaling).toBe(8);
    expect(layer.adapter("over").scaling).toBe(0.125);
    expect(layer.adapter("given")).toMatchObject({ r: 3, alpha: 3, scaling: 1, useDora: false, dropout: 0 });
    expect(layer.dtype).toBe("float32");
  });

  it("the LoRA term is linear in alpha", () => {
    const make = (alpha: number) => {
      const l = new LoraLinear({ weight: matrix("float64", 3, 2, 1) });
      l.addAdapter("a", { down: matrix("float64", 3, 2, 2), up: matrix("float64", 2, 2, 3), alpha });
      return l;
    };
    const x = matrix("float64", 2, 3, 4);
    const base = make(0).forward(x).data;
    const h1 = make(1).forward(x).data;
    const h3 = make(3).forward(x).data;
    expectClose(
      h3.map((v, i) => v - base[i]!),
      h1.map((v, i) => 3 * (v - base[i]!)),
      { atol: 1e-14, rtol: 1e-13 },
    );
  });
});

describe("dropout", () => {
  it("acts only in training mode, only on the LoRA branch, from a seeded generator", () => {
    const make = () => {
      const l = new LoraLinear({ weight: matrix("float64", 6, 4, 1), bias: randomArray("float64", 4, 2) });
      l.addAdapter("a", {
        down: matrix("float64", 6, 2, 3),
        up: matrix("float64", 2, 4, 4),
        alpha: 2,
        dropout: 0.5,
        seed: 11,
      });
      return l;
    };
    const x = matrix("float64", 8, 6, 5);
    const l1 = make();
    const evalOut = Array.from(l1.forward(x).data);
    expect(l1.training).toBe(false);
    const t1 = Array.from(l1.train().forward(x).data);
    expect(t1).not.toEqual(evalOut);
    const l2 = make().train();
    expect(Array.from(l2.forward(x).data)).toEqual(t1); // same seed, same mask
    expect(Array.from(l2.train(false).forward(x).data)).toEqual(evalOut);

    // with up = 0 the dropped branch adds nothing: the base path never sees dropout
    const z = new LoraLinear({ weight: matrix("float64", 6, 4, 1) });
    const base = Array.from(z.forward(x).data);
    z.addAdapter("z", { r: 2, alpha: 2, dropout: 0.9 });
    expect(Array.from(z.train().forward(x).data)).toEqual(base);
  });
});

describe("one plain adapter: the fused product", () => {
  // With one active plain LoRA adapter (no dropout in effect) forward runs loraGemm, the kernel behind loraForward:
  // in float32 WebAssembly the term is fused into the GEMM. Sizes above the 4096-MAC threshold so WebAssembly
  // runs; n = 2 takes the unpacked row paths (b as stored and transposed), n = 9 the packed kernel.
  it.each([2, 9])("n %i, float32: equals loraForward bit for bit in both layouts, training mode included", (n) => {
    const [dIn, dOut, r, alpha] = [300, 70, 8, 16];
    const w = matrix("float32", dIn, dOut, 11);
    const wt = new Float32Array(dIn * dOut); // the same weight stored [dOut, dIn]
    for (let i = 0; i < dIn; i++) for (let j = 0; j < dOut; j++) wt[j * dIn + i] = w.data[i * dOut + j]!;
    const down = matrix("float32", dIn, r, 12);
    const up = matrix("float32", r, dOut, 13);
    const x = matrix("float32", n, dIn, 14);
    const want = loraForward(x as Matrix<Float32Array>, w, down, up, alpha).data;
    const a = new LoraLinear({ weight: w });
    const b = new LoraLinear({ weight: { data: wt, rows: dOut, cols: dIn }, layout: "out_in" });
    for (const l of [a, b]) {
      l.addAdapter("one", { down, up, alpha });
      expect(Buffer.from(l.forward(x).data.buffer).equals(Buffer.from(want.buffer))).toBe(true);
      l.train(); // no dropout: still fused, and backward gets t from it
      expect(Buffer.from(l.forward(x).data.buffer).equals(Buffer.from(want.buffer))).toBe(true);
      expect(() => l.backward(matrix("float32", n, dOut, 15))).not.toThrow();
    }
    expect(Buffer.from(a.parameters()[0]!.grad.buffer).equals(Buffer.from(b.parameters()[0]!.grad.buffer))).toBe(true);
  });
});
