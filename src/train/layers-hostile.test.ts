// The training toolkit's layers, losses and helpers called with null, undefined, plain arrays, short data and
// mixed dtypes: each is a coded error naming the argument (raw TypeErrors, NaN outputs, silently wrong results
// or a silent default before).

import { describe, expect, it } from "vitest";
import { codeAndMessage } from "../../test/helpers/errors.js";
import { createRng } from "../lora/rng.js";
import { Relu } from "./activation.js";
import { makeSpiralTask } from "./data.js";
import { Linear } from "./linear.js";
import { argmaxRows, meanSquaredError, softmaxCrossEntropy } from "./loss.js";
import { Mlp } from "./mlp.js";
import { deriveSeed, permutation } from "./shuffle.js";

const f64 = (values: number[], rows: number, cols: number) => ({ data: Float64Array.from(values), rows, cols });
const MATRIX = "a {data, rows, cols} matrix with Float32Array or Float64Array data";
const layer = () => new Linear({ weight: f64([1, 2, 3, 4], 2, 2) }); // W: [2, 2]

describe("Linear", () => {
  it.each([
    [
      "null options",
      () => new Linear(null as never),
      "invalid_argument",
      "Linear: options is null, expected an options object { weight, bias?, trainable? }",
    ],
    ["no weight", () => new Linear({} as never), "invalid_matrix", `Linear: weight is undefined, not ${MATRIX}`],
    [
      "nested weight",
      () => new Linear({ weight: [[1]] as never }),
      "invalid_matrix",
      `Linear: weight is an array, not ${MATRIX}`,
    ],
    [
      "plain-array data",
      () => new Linear({ weight: { data: [1, 2], rows: 1, cols: 2 } as never }),
      "invalid_matrix",
      `Linear: weight is not ${MATRIX}`,
    ],
    [
      "bias of another dtype",
      () => new Linear({ weight: f64([1, 2], 1, 2), bias: new Float32Array(2) }),
      "dtype_mismatch",
      "Linear: bias is float32, expected float64 like the weight",
    ],
    [
      "plain-array bias",
      () => new Linear({ weight: f64([1, 2], 1, 2), bias: [1, 2] as never }),
      "invalid_argument",
      "Linear: bias is an array, expected a Float32Array or Float64Array [dOut], or undefined",
    ],
    [
      "init dIn -1",
      () => Linear.init(-1, 3, createRng(1)),
      "invalid_argument",
      "Linear.init: dIn is -1, expected a positive integer",
    ],
    [
      "init dOut 1.5",
      () => Linear.init(2, 1.5, createRng(1)),
      "invalid_argument",
      "Linear.init: dOut is 1.5, expected a positive integer",
    ],
    [
      "init rng null",
      () => Linear.init(2, 3, null as never),
      "invalid_argument",
      "Linear.init: rng is null, expected an Rng (createRng(seed))",
    ],
    [
      "forward null",
      () => layer().forward(null as never),
      "invalid_matrix",
      `Linear.forward: x is null, not ${MATRIX}`,
    ],
    [
      "forward short data",
      () => layer().forward({ data: new Float64Array(1), rows: 2, cols: 2 }),
      "data_length_mismatch",
      "Linear.forward: x.data has length 1, expected 4 for shape [2, 2]",
    ],
  ])("%s", (_, f, code, message) => {
    expect(codeAndMessage(f)).toEqual([code, message]);
  });

  it("backward refuses a dH of another dtype (it returned zeros) and a short dH (it returned NaN)", () => {
    const l = layer();
    l.forward(f64([1, 2], 1, 2));
    expect(codeAndMessage(() => l.backward({ data: new Float32Array(2), rows: 1, cols: 2 }))).toEqual([
      "dtype_mismatch",
      "Linear.backward: dH is float32, expected float64 like the weight",
    ]);
    expect(codeAndMessage(() => l.backward({ data: new Float64Array(1), rows: 1, cols: 2 }))).toEqual([
      "data_length_mismatch",
      "Linear.backward: dH.data has length 1, expected 2 for shape [1, 2]",
    ]);
    expect(Array.from(l.weightGrad)).toEqual([0, 0, 0, 0]);
  });
});

describe("Mlp and activations", () => {
  it.each([
    ["null linears", () => new Mlp(null as never), "Mlp: linears is null, expected an array of dense layers (Modules)"],
    [
      "a null layer",
      () => new Mlp([null as never]),
      "Mlp: linears[0] is null, expected a Module (forward, backward, parameters, zeroGrad), e.g. an Mlp or Linear",
    ],
    [
      "unknown activation",
      () => new Mlp([layer(), layer()], "tanh" as never),
      'Mlp: activationName is "tanh", expected "relu" or "gelu"',
    ],
    [
      "init null options",
      () => Mlp.init(null as never, createRng(1)),
      "Mlp.init: options is null, expected an options object { sizes, activation?, bias? }",
    ],
    [
      "init no sizes",
      () => Mlp.init({} as never, createRng(1)),
      "Mlp.init: sizes is undefined, expected an array [dIn, …, dOut] of positive integers",
    ],
    [
      "init activation",
      () => Mlp.init({ sizes: [2, 3], activation: "tanh" as never }, createRng(1)),
      'Mlp.init: activation is "tanh", expected "relu" or "gelu"',
    ],
    [
      "init rng",
      () => Mlp.init({ sizes: [2, 3] }, undefined as never),
      "Mlp.init: rng is undefined, expected an Rng (createRng(seed))",
    ],
    [
      "mapLinears",
      () => Mlp.init({ sizes: [2, 3] }, createRng(1)).mapLinears(null as never),
      "Mlp.mapLinears: fn is null, expected a function (layer, index) => layer",
    ],
  ])("%s: invalid_argument", (_, f, message) => {
    expect(codeAndMessage(f)).toEqual(["invalid_argument", message]);
  });

  it("Relu checks x and dH", () => {
    expect(codeAndMessage(() => new Relu().forward(null as never))).toEqual([
      "invalid_matrix",
      `Relu.forward: x is null, not ${MATRIX}`,
    ]);
    const r = new Relu();
    r.forward(f64([1, 2], 1, 2));
    expect(codeAndMessage(() => r.backward({ data: new Float64Array(1), rows: 1, cols: 2 }))).toEqual([
      "data_length_mismatch",
      "Relu.backward: dH.data has length 1, expected 2 for shape [1, 2]",
    ]);
  });
});

describe("sizes past MAX_RESULT_ELEMENTS (a raw RangeError from the allocation before)", () => {
  it.each([
    [
      "Linear.init",
      () => Linear.init(2 ** 20, 2 ** 20, createRng(1)),
      "Linear.init: weight would have shape [1048576, 1048576] (1099511627776 elements)",
    ],
    [
      "Mlp.init",
      () => Mlp.init({ sizes: [4, 4, 2 ** 40] }, createRng(1)),
      "Mlp.init: layer 1's weight would have shape [4, 1099511627776] (4398046511104 elements)",
    ],
    [
      "permutation",
      () => permutation(2 ** 32, createRng(1)),
      "permutation: the permutation would have shape [4294967296] (4294967296 elements)",
    ],
    [
      "makeSpiralTask",
      () => makeSpiralTask({ seed: 1, nTrain: 2 ** 28 }),
      "makeSpiralTask: each split's x would have shape [268435456, 16] (4294967296 elements)",
    ],
  ])("%s: too_large", (_, f, message) => {
    expect(codeAndMessage(f)).toEqual([
      "too_large",
      `${message}, expected at most 1073741824 elements (2^30); split the call`,
    ]);
  });
});

describe("losses and helpers", () => {
  it.each([
    [
      "softmaxCrossEntropy null",
      () => softmaxCrossEntropy(null as never, [0]),
      "invalid_matrix",
      `softmaxCrossEntropy: logits is null, not ${MATRIX}`,
    ],
    [
      "softmaxCrossEntropy labels",
      () => softmaxCrossEntropy(f64([1, 2], 1, 2), null as never),
      "invalid_argument",
      "softmaxCrossEntropy: labels is null, expected an array of class indices",
    ],
    [
      "softmaxCrossEntropy short",
      () => softmaxCrossEntropy({ data: new Float64Array(1), rows: 1, cols: 2 }, [0]),
      "data_length_mismatch",
      "softmaxCrossEntropy: logits.data has length 1, expected 2 for shape [1, 2]",
    ],
    [
      "meanSquaredError",
      () => meanSquaredError(f64([1], 1, 1), undefined as never),
      "invalid_matrix",
      `meanSquaredError: target is undefined, not ${MATRIX}`,
    ],
    [
      "argmaxRows no classes",
      () => argmaxRows(f64([], 2, 0)),
      "shape_mismatch",
      "argmaxRows: logits has shape [2, 0], expected at least one column (class) per row",
    ],
    [
      "permutation -1",
      () => permutation(-1, createRng(1)),
      "invalid_argument",
      "permutation: n is -1, expected an integer ≥ 0",
    ],
    [
      "permutation 1.5",
      () => permutation(1.5, createRng(1)),
      "invalid_argument",
      "permutation: n is 1.5, expected an integer ≥ 0",
    ],
    [
      "permutation rng",
      () => permutation(3, null as never),
      "invalid_argument",
      "permutation: rng is null, expected an Rng (createRng(seed))",
    ],
    [
      "deriveSeed NaN",
      () => deriveSeed(Number.NaN, "x"),
      "invalid_argument",
      "deriveSeed: seed is NaN, expected a finite number",
    ],
    [
      "deriveSeed purpose",
      () => deriveSeed(1, null as never),
      "invalid_argument",
      "deriveSeed: purpose is null, expected a string",
    ],
    [
      "makeSpiralTask null",
      () => makeSpiralTask(null as never),
      "invalid_argument",
      "makeSpiralTask: options is null, expected an options object { seed, … }",
    ],
    [
      "makeSpiralTask no seed",
      () => makeSpiralTask({} as never),
      "invalid_argument",
      "makeSpiralTask: seed is undefined, expected a finite number",
    ],
    [
      "makeSpiralTask noise",
      () => makeSpiralTask({ seed: 1, noise: -1 }),
      "invalid_argument",
      "makeSpiralTask: noise is -1, expected a finite number ≥ 0 (a standard deviation)",
    ],
    [
      "makeSpiralTask turns",
      () => makeSpiralTask({ seed: 1, turns: Number.POSITIVE_INFINITY }),
      "invalid_argument",
      "makeSpiralTask: turns is Infinity, expected a finite number",
    ],
  ])("%s", (_, f, code, message) => {
    expect(codeAndMessage(f)).toEqual([code, message]);
  });
});
