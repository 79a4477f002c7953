// PEFT.md §12 test vectors through LoraLinear and the ops (float64, 1e-9).
import { describe, expect, it } from "vitest";
import { deltaWeight, LoraLinear, loraBackward, type Matrix } from "../../src/index.js";
import { expectClose } from "../helpers/close.js";

const m = (rows: number, cols: number, v: number[]): Matrix<Float64Array> => ({
  data: Float64Array.from(v),
  rows,
  cols,
});

describe("PEFT test vectors", () => {
  it("T1: h = [[4, 5]]", () => {
    const layer = new LoraLinear({ weight: m(2, 2, [1, 0, 0, 1]) });
    layer.addAdapter("a", { down: m(2, 1, [1, 1]), up: m(1, 2, [0.5, 0.5]), alpha: 2 });
    expectClose(layer.forward(m(1, 2, [1, 2])).data, [4, 5], { atol: 1e-9 });
  });

  it("T2: h = [[1.1, 1.2], [1.2, 1.4], [1.3, 1.6]]", () => {
    const layer = new LoraLinear({ weight: m(3, 2, [1, 1, 1, 1, 1, 1]) });
    layer.addAdapter("a", { down: m(3, 1, [1, 2, 3]), up: m(1, 2, [0.1, 0.2]), alpha: 1 });
    const h = layer.forward(m(3, 3, [1, 0, 0, 0, 1, 0, 0, 0, 1]));
    expectClose(h.data, [1.1, 1.2, 1.2, 1.4, 1.3, 1.6], { atol: 1e-9 });
  });

  it("T3: standard s = 1 and rsLoRA s = √2", () => {
    const I = [1, 0, 0, 1];
    const layer = new LoraLinear({ weight: m(2, 2, I) });
    layer.addAdapter("std", { down: m(2, 2, I), up: m(2, 2, I), alpha: 2 });
    layer.addAdapter("rs", { down: m(2, 2, I), up: m(2, 2, I), alpha: 2, scaling: "rslora" });
    expect(layer.adapter("rs").scaling).toBe(2 / Math.SQRT2);
    expectClose(layer.forward(m(1, 2, [1, 2])).data, [2, 4], { atol: 1e-9 });
    layer.setActive(["rs"]);
    expectClose(layer.forward(m(1, 2, [1, 2])).data, [1 + Math.SQRT2, 2 + 2 * Math.SQRT2], { atol: 1e-9 });
  });

  it("T4 (DoRA): h = [4/√5, √5]", () => {
    const layer = new LoraLinear({ weight: m(2, 2, [1, 0, 0, 1]) });
    layer.addAdapter("d", {
      down: m(2, 1, [1, 1]),
      up: m(1, 2, [0.5, 0.5]),
      alpha: 2,
      useDora: true,
      magnitude: Float64Array.of(1, 1),
    });
    expectClose(layer.forward(m(1, 2, [1, 2])).data, [4 / Math.sqrt(5), Math.sqrt(5)], { atol: 1e-9, rtol: 0 });
  });

  it("T5: up = 0 gives h = x·W exactly", () => {
    const layer = new LoraLinear({ weight: m(2, 3, [0.3, -1.7, 2.5, 1.1, 0.1, -0.9]) });
    const base = layer.forward(m(2, 2, [0.7, -0.2, 1.3, 5])).data.slice();
    layer.addAdapter("z", { down: m(2, 1, [3, -4]), up: m(1, 3, [0, 0, 0]), alpha: 5 });
    expect(Array.from(layer.forward(m(2, 2, [0.7, -0.2, 1.3, 5])).data)).toEqual(Array.from(base));
  });

  it("T6: W' = W + s·B·A gives the T1 output; W' − s·B·A returns W", () => {
    const W = m(2, 2, [1, 0, 0, 1]);
    const layer = new LoraLinear({ weight: W });
    layer.addAdapter("a", { down: m(2, 1, [1, 1]), up: m(1, 2, [0.5, 0.5]), alpha: 2 });
    layer.merge();
    expectClose(W.data, [2, 1, 1, 2], { atol: 1e-12 });
    expectClose(layer.forward(m(1, 2, [1, 2])).data, [4, 5], { atol: 1e-9 });
    layer.unmerge();
    expectClose(W.data, [1, 0, 0, 1], { atol: 1e-12 });
    expectClose(deltaWeight(m(2, 1, [1, 1]), m(1, 2, [0.5, 0.5]), 2).data, [1, 1, 1, 1], { atol: 0 });
  });

  it("loraBackward on T1 matches the closed forms", () => {
    const g = loraBackward(
      m(1, 2, [1, 2]),
      m(2, 2, [1, 0, 0, 1]),
      { down: m(2, 1, [1, 1]), up: m(1, 2, [0.5, 0.5]), scaling: 2 },
      m(1, 2, [1, 1]),
    );
    // x·down = 3; dUp = 2·3·[1, 1]; dH·upᵀ = 1; dDown = 2·xᵀ·1; dX = dH·Wᵀ + 2·1·downᵀ
    expectClose(g.dUp.data, [6, 6], { atol: 1e-12 });
    expectClose(g.dDown.data, [2, 4], { atol: 1e-12 });
    expectClose(g.dX.data, [3, 3], { atol: 1e-12 });
  });
});
