import { describe, expect, it } from "vitest";
import { codeAndMessage } from "../../test/helpers/errors.js";
import { ArgumentError } from "../errors.js";
import type { TrainParam } from "./module.js";
import { AdamW, clipGradNorm, cosineFactor } from "./optim.js";

function param(values: number[], role: TrainParam["role"] = "weight"): TrainParam {
  return { value: Float64Array.from(values), grad: new Float64Array(values.length), role };
}

describe("AdamW", () => {
  // Hand computation (lr 0.1, β1 0.9, β2 0.999, eps 1e-8, λ 0.1), p0 = 1:
  // step 1, g = 0.5:  p ← 1·(1 − 0.01) = 0.99; m = 0.05; v = 0.00025; m̂ = 0.5; v̂ = 0.25;
  //                   p ← 0.99 − 0.1·0.5/(0.5 + 1e-8) = 0.89000000199999996
  // step 2, g = −1:   p ← 0.890000002·0.99 = 0.88110000198; m = −0.055; v = 0.00124975;
  //                   m̂ = −0.055/0.19 = −0.28947368421052632; v̂ = 0.00124975/0.001999 = 0.62518759379689845;
  //                   p ← 0.88110000198 + 0.1·0.28947368421052632/(0.79068805087524780 + 1e-8) = 0.91771035422056560
  it("matches a hand-computed two-step example", () => {
    const p = param([1]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.1 });
    p.grad[0] = 0.5;
    opt.step();
    expect(p.value[0]).toBeCloseTo(0.890000002, 15);
    p.grad[0] = -1;
    opt.step();
    expect(p.value[0]).toBeCloseTo(0.9177103542205656, 15);
    expect(opt.steps).toBe(2);
  });

  it("uses lr·loraPlusRatio for up tensors only (LoRA+)", () => {
    const down = param([0], "down");
    const up = param([0], "up");
    const opt = new AdamW([down, up], { lr: 0.01, weightDecay: 0, loraPlusRatio: 16 });
    down.grad[0] = 1;
    up.grad[0] = 1;
    opt.step();
    // the first step moves each parameter by lr·g/(|g| + eps)
    expect(down.value[0]).toBeCloseTo(-0.01 / (1 + 1e-8), 15);
    expect(up.value[0]).toBeCloseTo(-0.16 / (1 + 1e-8), 15);
  });

  it("decays weights even with a zero gradient (decoupled decay)", () => {
    const p = param([2]);
    new AdamW([p], { lr: 0.5, weightDecay: 0.1 }).step();
    expect(p.value[0]).toBe(2 * (1 - 0.05));
  });

  it("rejects options out of range (invalid_argument)", () => {
    const bad = [
      [{ lr: 0 }, /AdamW: lr is 0, expected a number in \(0, ∞\)/],
      [{ lr: 1, beta1: 1 }, /AdamW: beta1 is 1, expected a number in \[0, 1\)/],
      [{ lr: 1, beta2: -0.1 }, /AdamW: beta2 is -0.1, expected a number in \[0, 1\)/],
      [{ lr: 1, eps: Number.NaN }, /AdamW: eps is NaN, expected a number in \(0, ∞\)/],
      [{ lr: 1, eps: 0 }, /AdamW: eps is 0, expected a number in \(0, ∞\)/],
      [{ lr: 1, weightDecay: -1 }, /AdamW: weightDecay is -1, expected a number in \[0, ∞\)/],
      [{ lr: 1, loraPlusRatio: 0 }, /AdamW: loraPlusRatio is 0, expected a number in \(0, ∞\)/],
    ] as const;
    for (const [options, message] of bad) {
      expect(() => new AdamW([], options)).toThrow(message);
      try {
        new AdamW([], options);
      } catch (e) {
        expect(e).toBeInstanceOf(ArgumentError);
        expect((e as ArgumentError).code).toBe("invalid_argument");
      }
    }
  });
});

describe("AdamW: hostile calls", () => {
  it("refuses params / options that are not what it needs (invalid_argument, shape_mismatch)", () => {
    expect(codeAndMessage(() => new AdamW(null as never, { lr: 1 }))).toEqual([
      "invalid_argument",
      "AdamW: params is null, expected an array of parameters (model.parameters())",
    ]);
    expect(codeAndMessage(() => new AdamW([null as never], { lr: 1 }))).toEqual([
      "invalid_argument",
      "AdamW: params[0] is not a {value, grad, role} parameter with Float32Array or Float64Array value and grad",
    ]);
    const short = { value: new Float64Array(2), grad: new Float64Array(1), role: "weight" as const };
    expect(codeAndMessage(() => new AdamW([short], { lr: 1 }))).toEqual([
      "shape_mismatch",
      "AdamW: params[0].grad has shape [1], expected [2] like its value",
    ]);
    for (const options of [null, undefined])
      expect(codeAndMessage(() => new AdamW([], options as never))).toEqual([
        "invalid_argument",
        `AdamW: options is ${options}, expected an options object { lr, … }`,
      ]);
    expect(codeAndMessage(() => clipGradNorm(undefined as never, 1))[0]).toBe("invalid_argument");
  });

  it("step refuses an lr set to NaN after construction; nothing changes", () => {
    const p = param([1]);
    p.grad[0] = 1;
    const opt = new AdamW([p], { lr: 0.1 });
    opt.lr = Number.NaN;
    expect(codeAndMessage(() => opt.step())).toEqual([
      "invalid_argument",
      "AdamW: lr is NaN, expected a number in (0, ∞)",
    ]);
    expect([p.value[0], opt.steps]).toEqual([1, 0]);
  });

  it("step refuses a non-finite grad before changing any parameter or moment (non_finite, naming it)", () => {
    const a = param([1, 2]);
    const b = param([3], "up");
    b.adapter = "default";
    const opt = new AdamW([a, b], { lr: 0.1 });
    a.grad.set([0.5, 0.5]);
    b.grad[0] = Number.NaN;
    expect(codeAndMessage(() => opt.step())).toEqual([
      "non_finite",
      'AdamW.step: step 1: params[1] (up of adapter "default") element 0: its grad is NaN; no parameter was changed',
    ]);
    expect([Array.from(a.value), Array.from(b.value), opt.steps]).toEqual([[1, 2], [3], 0]);
    // the moments were not touched either: the next finite step equals a first step on a fresh optimizer
    b.grad[0] = 0.5;
    opt.step();
    const fresh = [param([1, 2]), param([3], "up")];
    for (const f of fresh) f.grad.fill(0.5);
    new AdamW(fresh, { lr: 0.1 }).step();
    expect([Array.from(a.value), Array.from(b.value)]).toEqual(fresh.map((f) => Array.from(f.value)));
  });

  it("step refuses an update that overflows the parameter's dtype (float32 here)", () => {
    const p: TrainParam = { value: Float32Array.from([1]), grad: Float32Array.from([1]), role: "down" };
    const opt = new AdamW([p], { lr: 1e39 });
    expect(codeAndMessage(() => opt.step())).toEqual([
      "non_finite",
      "AdamW.step: step 1: params[0] (down) element 0: its update gives -1.00999999e+39 (lr too large?); no parameter was changed",
    ]);
    expect(p.value[0]).toBe(1);
  });
});

describe("clipGradNorm", () => {
  it("scales to maxNorm when the global norm is larger, and returns the norm before clipping", () => {
    const a = param([0, 0]);
    const b = param([0]);
    a.grad.set([3, 0]);
    b.grad.set([4]);
    expect(clipGradNorm([a, b], 1)).toBe(5);
    const f = 1 / (5 + 1e-6);
    expect(Array.from(a.grad)).toEqual([3 * f, 0]);
    expect(Array.from(b.grad)).toEqual([4 * f]);
  });

  it("leaves small gradients unchanged", () => {
    const a = param([0, 0]);
    a.grad.set([0.3, 0.4]);
    expect(clipGradNorm([a], 1)).toBeCloseTo(0.5, 15);
    expect(Array.from(a.grad)).toEqual([0.3, 0.4]);
  });

  it("clips huge finite gradients instead of zeroing them (Σ g² overflowed to Infinity)", () => {
    const a = param([0, 0]);
    a.grad.set([3e200, 4e200]);
    const norm = clipGradNorm([a], 1);
    expect(norm / 5e200).toBeCloseTo(1, 15);
    expect(a.grad[0]).toBeCloseTo(0.6, 15);
    expect(a.grad[1]).toBeCloseTo(0.8, 15);
  });

  it("rejects a non-positive maxNorm (invalid_argument)", () => {
    expect(() => clipGradNorm([], 0)).toThrow(/clipGradNorm: maxNorm is 0, expected a positive number/);
    try {
      clipGradNorm([], -1);
    } catch (e) {
      expect((e as ArgumentError).code).toBe("invalid_argument");
    }
  });
});

describe("cosineFactor", () => {
  it("warms up linearly, then decays from 1 to 0", () => {
    expect(cosineFactor(0, 100, 10)).toBeCloseTo(0.1, 15);
    expect(cosineFactor(9, 100, 10)).toBe(1);
    expect(cosineFactor(10, 100, 10)).toBe(1);
    expect(cosineFactor(55, 100, 10)).toBeCloseTo(0.5, 15);
    expect(cosineFactor(100, 100, 10)).toBeCloseTo(0, 15);
    expect(cosineFactor(7, 2, 5)).toBe(1);
  });
});
