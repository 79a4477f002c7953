// Shape, state and argument errors of Linear, the activations and Mlp, and their non-gradient behaviour.

import { describe, expect, it } from "vitest";
import { expectLoraError } from "../../test/helpers/train-errors.js";
import { AdapterStateError, ArgumentError, ShapeError } from "../errors.js";
import { createRng } from "../lora/rng.js";
import { Gelu, Relu } from "./activation.js";
import { Linear } from "./linear.js";
import { Mlp } from "./mlp.js";
import type { Module } from "./module.js";

const m64 = (rows: number, cols: number, fill = 0.5) => ({
  data: new Float64Array(rows * cols).fill(fill),
  rows,
  cols,
});

describe("Linear", () => {
  it("computes x·W + b", () => {
    const layer = new Linear({
      weight: { data: new Float64Array([1, 2, 3, 4, 5, 6]), rows: 2, cols: 3 },
      bias: new Float64Array([10, 20, 30]),
    });
    const h = layer.forward({ data: new Float64Array([1, 1, 2, 0]), rows: 2, cols: 2 });
    expect(Array.from(h.data)).toEqual([15, 27, 39, 12, 24, 36]);
  });

  it("works in float32 too: output and gradients keep the weight's dtype", () => {
    const layer = new Linear({
      weight: { data: new Float32Array([1, 2]), rows: 2, cols: 1 },
      bias: new Float32Array([0.5]),
    });
    const h = layer.forward({ data: new Float32Array([3, 4]), rows: 1, cols: 2 });
    expect(h.data).toBeInstanceOf(Float32Array);
    expect(Array.from(h.data)).toEqual([11.5]);
    const dX = layer.backward({ data: new Float32Array([2]), rows: 1, cols: 1 });
    expect(dX.data).toBeInstanceOf(Float32Array);
    expect(Array.from(dX.data)).toEqual([2, 4]);
    expect(Array.from(layer.weightGrad)).toEqual([6, 8]);
    expect(layer.weightGrad).toBeInstanceOf(Float32Array);
  });

  it("init draws He-uniform weights in ±√(6/dIn) and a zero bias; clone is deep", () => {
    const layer = Linear.init(24, 10, createRng(1));
    const bound = Math.sqrt(6 / 24);
    expect(Array.from(layer.weight.data).every((w) => Math.abs(w) <= bound)).toBe(true);
    expect(Array.from(layer.bias!)).toEqual(new Array(10).fill(0));
    const copy = layer.clone();
    copy.weight.data[0] = 99;
    expect(layer.weight.data[0]).not.toBe(99);
    expect(Linear.init(3, 2, createRng(1), { bias: false }).bias).toBeUndefined();
  });

  it("rejects a weight whose data length does not match its shape (data_length_mismatch)", () => {
    expectLoraError(
      () => new Linear({ weight: { data: new Float64Array(5), rows: 2, cols: 3 } }),
      ShapeError,
      "data_length_mismatch",
      /^Linear: weight has 5 values, expected 6 for shape \[2, 3\]$/,
    );
  });

  it("rejects a bias of the wrong length (shape_mismatch)", () => {
    expectLoraError(
      () => new Linear({ weight: m64(2, 3), bias: new Float64Array(2) }),
      ShapeError,
      "shape_mismatch",
      /^Linear: bias has shape \[2\], expected \[3\] because weight is \[2, 3\] \(dOut = 3\)$/,
    );
  });

  it("rejects x with the wrong width (shape_mismatch) or dtype (dtype_mismatch)", () => {
    const layer = new Linear({ weight: m64(2, 3) });
    expectLoraError(
      () => layer.forward(m64(4, 3)),
      ShapeError,
      "shape_mismatch",
      /^Linear.forward: x has shape \[4, 3\], expected \[n, 2\] because weight is \[2, 3\] \(dIn = 2\)$/,
    );
    expectLoraError(
      () => layer.forward({ data: new Float32Array(2), rows: 1, cols: 2 }),
      ArgumentError,
      "dtype_mismatch",
      /^Linear.forward: x is float32, expected float64 like the weight$/,
    );
  });

  it("rejects backward before forward (adapter_state) and a dH of the wrong shape (shape_mismatch)", () => {
    const layer = new Linear({ weight: m64(2, 3) });
    expectLoraError(
      () => layer.backward(m64(1, 3)),
      AdapterStateError,
      "adapter_state",
      /^Linear.backward: called before forward \(no cached input to differentiate\)$/,
    );
    layer.forward(m64(4, 2));
    expectLoraError(
      () => layer.backward(m64(4, 2)),
      ShapeError,
      "shape_mismatch",
      /^Linear.backward: dH has shape \[4, 2\], expected \[4, 3\] because the last forward produced \[4, 3\]$/,
    );
  });

  it("accumulates gradients across backward calls until zeroGrad", () => {
    const layer = new Linear({ weight: m64(2, 1), bias: new Float64Array(1) });
    const x = m64(1, 2, 1);
    layer.forward(x);
    layer.backward(m64(1, 1, 1));
    layer.forward(x);
    layer.backward(m64(1, 1, 1));
    expect(Array.from(layer.weightGrad)).toEqual([2, 2]);
    expect(Array.from(layer.biasGrad!)).toEqual([2]);
    layer.zeroGrad();
    expect(Array.from(layer.weightGrad)).toEqual([0, 0]);
    expect(Array.from(layer.biasGrad!)).toEqual([0]);
  });
});

describe("activations", () => {
  it("Relu and Gelu values; keep the input dtype", () => {
    const x = { data: new Float32Array([-2, 0, 3]), rows: 1, cols: 3 };
    expect(Array.from(new Relu().forward(x).data)).toEqual([0, 0, 3]);
    const g = new Gelu().forward(x);
    expect(g.data).toBeInstanceOf(Float32Array);
    expect(g.data[1]).toBe(0);
    expect(g.data[2]).toBeCloseTo(2.9963627, 6);
    expect(g.data[0]).toBeCloseTo(-0.04540231, 6);
  });

  it("reject backward before forward (adapter_state) and a mismatched dH (shape_mismatch)", () => {
    for (const [act, label] of [
      [new Relu(), "Relu"],
      [new Gelu(), "Gelu"],
    ] as [Module, string][]) {
      expectLoraError(
        () => act.backward(m64(1, 2)),
        AdapterStateError,
        "adapter_state",
        new RegExp(`^${label}.backward: called before forward \\(no cached input to differentiate\\)$`),
      );
      act.forward(m64(2, 3));
      expectLoraError(
        () => act.backward(m64(3, 2)),
        ShapeError,
        "shape_mismatch",
        new RegExp(`^${label}.backward: dH has shape \\[3, 2\\], expected \\[2, 3\\] like the last forward's input$`),
      );
      expect(act.parameters()).toEqual([]);
    }
  });
});

describe("Mlp", () => {
  it("chains layers: the same logits as calling each layer by hand", () => {
    const mlp = Mlp.init({ sizes: [3, 4, 2] }, createRng(3));
    const x = m64(2, 3, 0.7);
    const [l0, l1] = mlp.linears as Linear[];
    const byHand = l1!.forward(new Relu().forward(l0!.forward(x)));
    expect(Array.from(mlp.forward(x).data)).toEqual(Array.from(byHand.data));
    expect(mlp.parameters().length).toBe(4);
    expect([0, 1, 2].map(Mlp.modulePath)).toEqual(["0", "2", "4"]);
  });

  it("mapLinears swaps dense layers; clone is deep", () => {
    const mlp = Mlp.init({ sizes: [3, 4, 2], activation: "gelu" }, createRng(4));
    const frozen = mlp.mapLinears((l) => {
      const c = (l as Linear).clone();
      c.trainable = false;
      return c;
    });
    expect(frozen.parameters()).toEqual([]);
    expect(frozen.activationName).toBe("gelu");
    const copy = mlp.clone();
    (copy.linears[0] as Linear).weight.data[0] = 42;
    expect((mlp.linears[0] as Linear).weight.data[0]).not.toBe(42);
  });

  it("rejects bad sizes, no layers, and cloning non-Linear layers (invalid_argument)", () => {
    expectLoraError(
      () => Mlp.init({ sizes: [3] }, createRng(1)),
      ArgumentError,
      "invalid_argument",
      /^Mlp.init: sizes is \[3\], expected at least two positive integers \[dIn, …, dOut\]$/,
    );
    expectLoraError(
      () => Mlp.init({ sizes: [3, 0, 2] }, createRng(1)),
      ArgumentError,
      "invalid_argument",
      /^Mlp.init: sizes is \[3, 0, 2\]/,
    );
    expectLoraError(
      () => new Mlp([]),
      ArgumentError,
      "invalid_argument",
      /^Mlp: linears is empty, expected at least one dense layer$/,
    );
    expectLoraError(
      () => new Mlp([new Relu()]).clone(),
      ArgumentError,
      "invalid_argument",
      /^Mlp.clone: only an Mlp of Linear layers can be cloned$/,
    );
  });
});
