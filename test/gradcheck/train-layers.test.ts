// Backward passes of the training layers against central differences in float64:
// (f(p + ε·eᵢ) − f(p − ε·eᵢ)) / 2ε with ε = 1e-6, where f = Σ c ⊙ forward(x) for a fixed random c (so dH = c).

import { describe, expect, it } from "vitest";
import { createRng, type Rng } from "../../src/lora/rng.js";
import type { Matrix } from "../../src/matrix.js";
import { Gelu, Relu } from "../../src/train/activation.js";
import { withLora } from "../../src/train/demo.js";
import { Linear } from "../../src/train/linear.js";
import { meanSquaredError, softmaxCrossEntropy } from "../../src/train/loss.js";
import { Mlp } from "../../src/train/mlp.js";
import type { Module } from "../../src/train/module.js";
import { expectClose } from "../helpers/close.js";

const EPS = 1e-6;
const TOL = { atol: 1e-7, rtol: 1e-5 };

function randomMatrix(rows: number, cols: number, rng: Rng, scale = 1): Matrix<Float64Array> {
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = scale * rng.normal();
  return { data, rows, cols };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

// Central-difference gradient of f with respect to every entry of arr (perturbed in place, then restored).
function numericGrad(arr: Float64Array | Float32Array, f: () => number): Float64Array {
  const g = new Float64Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i]!;
    arr[i] = v + EPS;
    const fp = f();
    arr[i] = v - EPS;
    const fm = f();
    arr[i] = v;
    g[i] = (fp - fm) / (2 * EPS);
  }
  return g;
}

// Checks dX and every parameter grad of module for L = Σ c ⊙ module(x).
function checkModule(module: Module, x: Matrix<Float64Array>, rng: Rng): void {
  const h0 = module.forward(x);
  const c = randomMatrix(h0.rows, h0.cols, rng);
  const f = () => dot(module.forward(x).data, c.data);
  module.zeroGrad();
  module.forward(x);
  const dX = module.backward(c);
  expectClose(dX.data, numericGrad(x.data, f), { ...TOL, shape: [x.rows, x.cols] });
  const params = module.parameters();
  for (const p of params) {
    const analytic = Float64Array.from(p.grad);
    expectClose(analytic, numericGrad(p.value, f), TOL);
  }
}

describe("gradcheck: layers", () => {
  it("Linear with bias: dX, dW, db", () => {
    const rng = createRng(1);
    const layer = Linear.init(5, 3, rng);
    for (let i = 0; i < 3; i++) layer.bias![i] = rng.normal();
    checkModule(layer, randomMatrix(4, 5, rng), rng);
    expect(layer.parameters().map((p) => p.role)).toEqual(["weight", "bias"]);
  });

  it("Linear without bias, and a frozen Linear (dX only, no parameters)", () => {
    const rng = createRng(2);
    checkModule(Linear.init(3, 6, rng, { bias: false }), randomMatrix(2, 3, rng), rng);
    const frozen = Linear.init(4, 2, rng);
    frozen.trainable = false;
    checkModule(frozen, randomMatrix(3, 4, rng), rng);
    expect(frozen.parameters()).toEqual([]);
    expect(Array.from(frozen.weightGrad).every((g) => g === 0)).toBe(true);
  });

  it("Relu away from its kink", () => {
    const rng = createRng(3);
    const x = randomMatrix(3, 7, rng);
    for (let i = 0; i < x.data.length; i++) if (Math.abs(x.data[i]!) < 1e-3) x.data[i] = 0.5;
    checkModule(new Relu(), x, rng);
  });

  it("Gelu (tanh form), including large |x|", () => {
    const rng = createRng(4);
    checkModule(new Gelu(), randomMatrix(4, 5, rng, 3), rng);
  });

  it("Mlp: relu and gelu, three dense layers", () => {
    for (const act of ["relu", "gelu"] as const) {
      const rng = createRng(5);
      const mlp = Mlp.init({ sizes: [4, 6, 5, 3], activation: act }, rng);
      for (const l of mlp.linears) for (const p of l.parameters()) if (p.role === "bias") p.value.fill(0.1);
      checkModule(mlp, randomMatrix(3, 4, rng), rng);
    }
  });
});

describe("gradcheck: losses", () => {
  it("softmaxCrossEntropy: grad of the mean loss", () => {
    const rng = createRng(6);
    const logits = randomMatrix(5, 4, rng, 2);
    const labels = [0, 3, 1, 1, 2];
    const { grad } = softmaxCrossEntropy(logits, labels);
    expectClose(
      grad.data,
      numericGrad(logits.data, () => softmaxCrossEntropy(logits, labels).loss),
      TOL,
    );
  });

  it("softmaxCrossEntropy: known value and stability with large logits", () => {
    const two = { data: new Float64Array([0, 0]), rows: 1, cols: 2 };
    expect(softmaxCrossEntropy(two, [1]).loss).toBeCloseTo(Math.LN2, 15);
    const big = { data: new Float64Array([1000, 0, -1000]), rows: 1, cols: 3 };
    const r = softmaxCrossEntropy(big, [0]);
    expect(r.loss).toBe(0 + Math.log(1 + Math.exp(-1000) + Math.exp(-2000)));
    expect(Array.from(r.grad.data).every(Number.isFinite)).toBe(true);
  });

  it("meanSquaredError: grad and value", () => {
    const rng = createRng(7);
    const pred = randomMatrix(3, 4, rng);
    const target = randomMatrix(3, 4, rng);
    const { grad } = meanSquaredError(pred, target);
    expectClose(
      grad.data,
      numericGrad(pred.data, () => meanSquaredError(pred, target).loss),
      TOL,
    );
    const one = (v: number) => ({ data: new Float64Array([v]), rows: 1, cols: 1 });
    expect(meanSquaredError(one(3), one(1)).loss).toBe(4);
  });
});

describe("gradcheck: Mlp carrying LoRA adapters (LoraLinear layers)", () => {
  it("dX and every adapter's dDown, dUp match central differences; the base gets no gradient", () => {
    const rng = createRng(8);
    const base = Mlp.init({ sizes: [4, 6, 5, 3], activation: "gelu" }, rng);
    const model = withLora(base, 2, 9);
    // a fresh adapter has up = 0; give up non-zero values so dDown is non-trivial
    for (const p of model.parameters())
      if (p.role === "up") for (let i = 0; i < p.value.length; i++) p.value[i] = rng.normal();
    model.train(true);
    checkModule(model, randomMatrix(3, 4, rng), rng);
    expect(model.parameters().map((p) => p.role)).toEqual(["down", "up", "down", "up", "down", "up"]);
    expect(base.parameters().every((p) => Array.from(p.grad).every((g) => g === 0))).toBe(true);
  });
});
