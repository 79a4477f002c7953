// LoraLinear over a quantized base (Q8_0 / Q4_0, both layouts): forward and backward against the same layer over
// the dequantized float32 weight. Adapter gradients do not involve W and must be identical; h and dX agree within
// the float32 bound of their products; the base is never merged into.

import { describe, expect, it } from "vitest";
import { dequantizeMatrix, LoraLinear, type QuantMatrix, quantizeMatrix } from "../../src/index.js";
import { expectClose, U_F32 } from "../helpers/close.js";
import { caught } from "../helpers/errors.js";
import { fill } from "../helpers/random.js";

type Layout = "in_out" | "out_in";
const CASES = (["q8_0", "q4_0"] as const).flatMap((type) =>
  (["in_out", "out_in"] as Layout[]).flatMap((layout) => [1, 2, 5, 17].map((n) => ({ type, layout, n }))),
);

// |a|·|b| summed in float64: the gauge of a product [n, k]·[k, cols] given element functions
function gauge(
  n: number,
  k: number,
  cols: number,
  a: (i: number, p: number) => number,
  b: (p: number, j: number) => number,
) {
  const g = new Float64Array(n * cols);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += Math.abs(a(i, p) * b(p, j));
      g[i * cols + j] = s;
    }
  return g;
}

function layers(type: "q8_0" | "q4_0", layout: Layout, dIn: number, dOut: number) {
  const [rows, cols] = layout === "in_out" ? [dIn, dOut] : [dOut, dIn];
  const q = quantizeMatrix({ data: fill(new Float32Array(rows * cols), 3), rows, cols }, type, { layout });
  const bias = fill(new Float32Array(dOut), 4);
  const quantLayer = new LoraLinear({ weight: q, bias });
  const wd = dequantizeMatrix(q);
  const floatLayer = new LoraLinear({ weight: wd, layout, bias });
  for (const l of [quantLayer, floatLayer]) {
    l.addAdapter("a", { r: 4, alpha: 8, seed: 9, init: "none" });
    l.addAdapter("b", { r: 2, alpha: 2, seed: 10, init: "none" });
  }
  const at = (p: number, j: number) => (layout === "in_out" ? wd.data[p * dOut + j]! : wd.data[j * dIn + p]!);
  return { q, quantLayer, floatLayer, at };
}

describe.each(CASES)("LoraLinear over $type ($layout), n = $n", ({ type, layout, n }) => {
  const [dIn, dOut] = layout === "in_out" ? [33, 64] : [64, 33];
  it("forward and backward match the layer over the dequantized weight", () => {
    const { quantLayer, floatLayer, at } = layers(type, layout, dIn, dOut);
    expect(quantLayer.isQuantized).toBe(true);
    const x = { data: fill(new Float32Array(n * dIn), 5), rows: n, cols: dIn };
    const dH = { data: fill(new Float32Array(n * dOut), 6), rows: n, cols: dOut };
    for (const active of [["a"], ["a", "b"]]) {
      quantLayer.setActive(active).train().zeroGrad();
      floatLayer.setActive(active).train().zeroGrad();
      const hq = quantLayer.forward(x);
      const hf = floatLayer.forward(x);
      const gh = gauge(n, dIn, dOut, (i, p) => x.data[i * dIn + p]!, at);
      // both are within u·(dIn + r)·gauge of the exact product; the adapters' terms are the same computation
      const hb = gh.map((g, i) => 4 * U_F32 * (dIn + 8) * (g + Math.abs(hf.data[i]!)) + 1e-6);
      expectClose(hq.data, hf.data, { bound: hb, shape: [n, dOut] });
      const dXq = quantLayer.backward(dH);
      const dXf = floatLayer.backward(dH);
      const gx = gauge(
        n,
        dOut,
        dIn,
        (i, j) => dH.data[i * dOut + j]!,
        (j, p) => at(p, j),
      );
      const xb = gx.map((g, i) => 4 * U_F32 * (dOut + 8) * (g + Math.abs(dXf.data[i]!)) + 1e-6);
      expectClose(dXq.data, dXf.data, { bound: xb, shape: [n, dIn] });
      const pq = quantLayer.parameters();
      const pf = floatLayer.parameters();
      expect(pq.length).toBe(2 * active.length);
      for (let i = 0; i < pq.length; i++) expectClose(pq[i]!.grad, pf[i]!.grad, { rtol: 1e-5, atol: 1e-6 });
    }
  });
});

describe("LoraLinear over a quantized base: refusals", () => {
  const q: QuantMatrix = quantizeMatrix({ data: fill(new Float32Array(64), 1), rows: 2, cols: 32 }, "q8_0");
  it("never merges: merge, unmerge and mergeAndUnload throw adapter_state and leave the layer as it was", () => {
    const layer = new LoraLinear({ weight: q }).addAdapter("a", { r: 1, alpha: 1, seed: 1, init: "none" });
    const x = { data: fill(new Float32Array(2), 2), rows: 1, cols: 2 };
    const before = Array.from(layer.forward(x).data);
    for (const f of [() => layer.merge(), () => layer.unmerge(), () => layer.mergeAndUnload()]) {
      const e = caught(f);
      expect(e.code).toBe("adapter_state");
      expect(e.message).toMatch(/the base weight is quantized \(q8_0\); merging would re-quantize W \+ ΔW/);
    }
    expect(Array.from(layer.forward(x).data)).toEqual(before);
    expect(layer.isMerged).toBe(false);
  });
  it("refuses DoRA adapters (adapter_state)", () => {
    const layer = new LoraLinear({ weight: q });
    const e = caught(() => layer.addAdapter("d", { r: 1, alpha: 1, useDora: true }));
    expect(e.code).toBe("adapter_state");
    expect(e.message).toMatch(/adapter "d" uses DoRA, .* this layer's base is quantized \(q8_0\)/);
    expect(layer.adapterNames).toEqual([]);
  });
  it("refuses a layout option that disagrees with the QuantMatrix (invalid_argument)", () => {
    const e = caught(() => new LoraLinear({ weight: q, layout: "out_in" }));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toBe(
      `LoraLinear: layout is "out_in" but the quantized weight's layout is "in_out"; set it once, on the QuantMatrix`,
    );
  });
  it("refuses a float64 x (dtype_mismatch) and a bias of the wrong shape (shape_mismatch)", () => {
    const layer = new LoraLinear({ weight: q });
    expect(caught(() => layer.forward({ data: new Float64Array(2), rows: 1, cols: 2 })).code).toBe("dtype_mismatch");
    const e = caught(() => new LoraLinear({ weight: q, bias: new Float32Array(3) }));
    expect(e.code).toBe("shape_mismatch");
    expect(e.message).toBe(
      "LoraLinear: bias must be a Float32Array of shape [32] (dOut of the quantized weight), got [3]",
    );
  });
  it("weight returns the dequantized values", () => {
    const layer = new LoraLinear({ weight: q });
    expect(Array.from(layer.weight.data)).toEqual(Array.from(dequantizeMatrix(q).data));
  });
});
