// Training adapters over a frozen quantized base (src/train/quant-base.ts): only the adapters have parameters, the
// quantized blocks never change, gradients reach the input through the dequantized base, and the low-precision
// models compute what the float64 model computes up to the rounding of their base.

import { describe, expect, it } from "vitest";
import { createRng, Mlp } from "../../src/index.js";
import type { LoraLinear } from "../../src/lora/layer.js";
import { type Float32LoraModule, withLowPrecisionBase } from "../../src/train/quant-base.js";
import { fill } from "../helpers/random.js";

describe("LoRA over a float32 / Q8_0 / Q4_0 copy of an MLP", () => {
  const base = Mlp.init({ sizes: [16, 64, 32, 3] }, createRng(1));
  const x = { data: fill(new Float64Array(5 * 16), 2), rows: 5, cols: 16 };
  const ref = base.forward(x).data;
  const maxAbs = Math.max(...Array.from(ref, Math.abs));

  it.each([
    ["float32", 1e-5],
    ["q8_0", 0.05],
    ["q4_0", 0.5],
  ] as const)("%s: adapters only, frozen blocks, output near the float64 model (rel. %s)", (precision, rel) => {
    const layers: LoraLinear[] = [];
    const model = withLowPrecisionBase(base, precision, (layer, i) => {
      layer.addAdapter("a", { r: 2, alpha: 4, seed: i, init: "none" });
      layers.push(layer);
    });
    expect(layers.map((l) => l.isQuantized)).toEqual(
      precision === "float32" ? [false, false, false] : [true, true, true],
    );
    const roles = model.parameters().map((p) => p.role);
    expect(roles).toEqual(["down", "up", "down", "up", "down", "up"]);
    // the adapters (init "none": both matrices random) are switched off to compare the bases
    for (const l of layers) l.setActive([]);
    const h = model.forward(x).data;
    for (let i = 0; i < h.length; i++) expect(Math.abs(h[i]! - ref[i]!)).toBeLessThanOrEqual(rel * maxAbs);
    for (const l of layers) l.setActive(["a"]);
    const before = layers.map((l) => Array.from(l.weight.data));
    model.train(true);
    model.zeroGrad();
    model.forward(x);
    const dX = model.backward({ data: fill(new Float64Array(5 * 3), 3), rows: 5, cols: 3 });
    expect(dX.data).toBeInstanceOf(Float64Array);
    expect(dX.data.some((v) => v !== 0)).toBe(true);
    expect(model.parameters().every((p) => p.grad.some((g) => g !== 0))).toBe(true);
    expect(layers.map((l) => Array.from(l.weight.data))).toEqual(before);
    expect((model.linears[0] as Float32LoraModule).layer).toBe(layers[0]);
  });
});
