// addWeightedAdapter: "cat" is exact (its delta is the weighted sum of the sources' deltas); "linear" follows PEFT
// and has cross terms.
import { describe, expect, it } from "vitest";
import { deltaWeight, LoraLinear } from "../../src/index.js";
import { expectClose } from "../helpers/close.js";
import { matrix } from "./cases.js";

function setup(dtype: "float32" | "float64" = "float64") {
  const layer = new LoraLinear({ weight: matrix(dtype, 6, 5, 1) });
  layer.addAdapter("a", { down: matrix(dtype, 6, 2, 2), up: matrix(dtype, 2, 5, 3), alpha: 4 }); // s = 2
  layer.addAdapter("b", { down: matrix(dtype, 6, 3, 4), up: matrix(dtype, 3, 5, 5), alpha: 6, scaling: "rslora" }); // s = 6/√3
  layer.addAdapter("c", { down: matrix(dtype, 6, 2, 6), up: matrix(dtype, 2, 5, 7), alpha: 1 }); // s = 0.5
  return layer;
}

const delta = (l: LoraLinear, n: string) => {
  const a = l.adapter(n);
  return deltaWeight(a.down, a.up, a.scaling).data;
};

describe("addWeightedAdapter", () => {
  it('"cat" equals the weighted sum of the deltas (ranks add, scaling 1)', () => {
    const layer = setup();
    const w = [0.7, -1.3, 2];
    layer.addWeightedAdapter(["a", "b", "c"], w, "cat", { combination: "cat" });
    const cat = layer.adapter("cat");
    expect([cat.r, cat.alpha, cat.scaling, cat.useDora]).toEqual([7, 7, 1, false]);
    const expected = delta(layer, "a").map(
      (v, i) => w[0]! * v + w[1]! * delta(layer, "b")[i]! + w[2]! * delta(layer, "c")[i]!,
    );
    expectClose(delta(layer, "cat"), expected, { atol: 1e-14, rtol: 1e-13 });
    // and the forward pass agrees with the three sources active at once, weighted
    const x = matrix("float64", 3, 6, 8);
    layer.setActive([]);
    const base = layer.forward(x).data;
    layer.setActive(["cat"]);
    const hCat = layer.forward(x).data;
    const terms = ["a", "b", "c"].map((n) => {
      layer.setActive([n]);
      return layer.forward(x).data.map((v, i) => v - base[i]!);
    });
    expectClose(
      hCat,
      base.map((v, i) => v + w[0]! * terms[0]![i]! + w[1]! * terms[1]![i]! + w[2]! * terms[2]![i]!),
      { atol: 1e-13, rtol: 1e-12 },
    );
  });

  it('"cat" in float32 is within float32 rounding of the weighted sum', () => {
    const layer = setup("float32");
    layer.addWeightedAdapter(["a", "b"], [1, 1], "ab", { combination: "cat" });
    const expected = delta(layer, "a").map((v, i) => v + delta(layer, "b")[i]!);
    expectClose(delta(layer, "ab"), expected, { atol: 1e-5, rtol: 1e-5 });
  });

  it('"linear" of one adapter is exact, and weight −1 negates its delta', () => {
    const layer = setup();
    layer.addWeightedAdapter(["a"], [1], "one", { combination: "linear" });
    layer.addWeightedAdapter(["a"], [-1], "neg", { combination: "linear" });
    expectClose(delta(layer, "one"), delta(layer, "a"), { atol: 1e-14, rtol: 1e-13 });
    expectClose(
      delta(layer, "neg"),
      delta(layer, "a").map((v) => -v),
      { atol: 1e-14, rtol: 1e-13 },
    );
  });

  it('"linear" of two adapters has PEFT\'s cross terms: weights [1, −1] give (down₁ − down₂)(up₁ + up₂)', () => {
    const layer = new LoraLinear({ weight: matrix("float64", 6, 5, 1) });
    const [d1, u1, d2, u2] = [
      matrix("float64", 6, 2, 2),
      matrix("float64", 2, 5, 3),
      matrix("float64", 6, 2, 4),
      matrix("float64", 2, 5, 5),
    ];
    layer.addAdapter("p", { down: d1, up: u1 });
    layer.addAdapter("q", { down: d2, up: u2 });
    layer.addWeightedAdapter(["p", "q"], [1, -1], "lin", { combination: "linear" });
    const lin = layer.adapter("lin");
    expect([lin.r, lin.scaling]).toEqual([2, 1]);
    const dd = { data: d1.data.map((v, i) => v - d2.data[i]!), rows: 6, cols: 2 };
    const uu = { data: u1.data.map((v, i) => v + u2.data[i]!), rows: 2, cols: 5 };
    expectClose(delta(layer, "lin"), deltaWeight(dd, uu, 1).data, { atol: 1e-14, rtol: 1e-13 });
    const exactDiff = delta(layer, "p").map((v, i) => v - delta(layer, "q")[i]!);
    expect(Math.max(...delta(layer, "lin").map((v, i) => Math.abs(v - exactDiff[i]!)))).toBeGreaterThan(0.1);
  });

  it("the combined adapter is added inactive (unless none is active) and behaves like any other", () => {
    const layer = setup();
    layer.addWeightedAdapter(["a", "c"], [1, 1], "ac", { combination: "cat" });
    expect(layer.activeAdapters).toEqual(["a"]);
    layer.setActive(["ac"]);
    layer.merge();
    expect(layer.mergedAdapters).toEqual(["ac"]);
  });
});
