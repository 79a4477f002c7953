// lossCurveSvg, cosineFactor, the Mlp file helpers, withLowPrecisionBase and runLoraDemo called with null, wrong
// types and out-of-range values: coded errors naming the argument (raw TypeErrors, NaN factors, an SVG with
// NaN or negative sizes, or a stack overflow before).

import { describe, expect, it } from "vitest";
import { codeAndMessage } from "../../test/helpers/errors.js";
import { parseSafetensors, serializeSafetensors } from "../io/safetensors.js";
import { createRng } from "../lora/rng.js";
import { runLoraDemo, withLora } from "./demo.js";
import { Mlp } from "./mlp.js";
import { applyLoraModules, loraModules, mlpFromSafetensors, mlpToSafetensors } from "./mlp-files.js";
import { cosineFactor } from "./optim.js";
import { lossCurveSvg } from "./plot.js";
import { withLowPrecisionBase } from "./quant-base.js";

const mlp = () => Mlp.init({ sizes: [2, 4, 3] }, createRng(1));

describe("lossCurveSvg", () => {
  it("draws a curve of 200 000 epochs (Math.min(...values) overflowed the call stack)", () => {
    const values = Array.from({ length: 200_000 }, (_, i) => 1 / (i + 1));
    const svg = lossCurveSvg([{ label: "long", values }]);
    expect(svg).toContain(">1e-6</text>");
    expect(svg.endsWith("</svg>\n")).toBe(true);
  });

  it.each([
    [
      "null series",
      () => lossCurveSvg(null as never),
      "lossCurveSvg: series is null, expected an array of { label, values }",
    ],
    [
      "a null series",
      () => lossCurveSvg([null as never]),
      "lossCurveSvg: series[0] is null, expected { label, values }",
    ],
    [
      "a number label",
      () => lossCurveSvg([{ label: 5 as never, values: [1] }]),
      "lossCurveSvg: series[0].label is 5, expected a string",
    ],
    [
      "no values",
      () => lossCurveSvg([{ label: "a" } as never]),
      "lossCurveSvg: series[0].values is undefined, expected an array of numbers (one per epoch)",
    ],
    [
      "a number title",
      () => lossCurveSvg([], { title: 5 as never }),
      "lossCurveSvg: options.title is 5, expected a string",
    ],
    [
      "width NaN",
      () => lossCurveSvg([], { width: Number.NaN }),
      "lossCurveSvg: options.width is NaN, expected an integer ≥ 235",
    ],
    ["width 10", () => lossCurveSvg([], { width: 10 }), "lossCurveSvg: options.width is 10, expected an integer ≥ 235"],
    [
      "height -1",
      () => lossCurveSvg([], { height: -1 }),
      "lossCurveSvg: options.height is -1, expected an integer ≥ 89",
    ],
  ])("%s: invalid_argument", (_, f, message) => {
    expect(codeAndMessage(f)).toEqual(["invalid_argument", message]);
  });

  it("null options are the defaults", () => {
    expect(lossCurveSvg([], null as never)).toBe(lossCurveSvg([]));
  });
});

describe("cosineFactor", () => {
  it.each([
    [[-5, 10], "step is -5"],
    [[Number.NaN, 10], "step is NaN"],
    [[0, Number.POSITIVE_INFINITY], "total is Infinity"],
    [[0, 10, -1], "warmup is -1"],
  ])("%j: invalid_argument (it returned -Infinity, NaN or a factor past the warm-up)", (args, what) => {
    expect(codeAndMessage(() => cosineFactor(...(args as [number, number, number?])))).toEqual([
      "invalid_argument",
      `cosineFactor: ${what}, expected a finite number ≥ 0`,
    ]);
  });
});

describe("Mlp files, low-precision base and the demo", () => {
  it.each([
    ["loraModules", () => loraModules(null as never, "default"), "loraModules: mlp is null, expected an Mlp"],
    [
      "loraModules name",
      () => loraModules(mlp(), undefined as never),
      "loraModules: name is undefined, expected an adapter name (a string)",
    ],
    [
      "applyLoraModules base",
      () => applyLoraModules(undefined as never, []),
      "applyLoraModules: base is undefined, expected an Mlp",
    ],
    [
      "applyLoraModules modules",
      () => applyLoraModules(mlp(), null as never),
      "applyLoraModules: modules is null, expected an array of PEFT module adapters (loadPeftAdapter)",
    ],
    [
      "applyLoraModules a module",
      () => applyLoraModules(mlp(), [null as never]),
      "applyLoraModules: modules[0] is null, expected a PEFT module adapter { modulePath, down, up, … }",
    ],
    ["mlpToSafetensors", () => mlpToSafetensors({} as never), "mlpToSafetensors: mlp is an object, expected an Mlp"],
    [
      "mlpFromSafetensors activation",
      () => mlpFromSafetensors(mlpToSafetensors(mlp()), "tanh" as never),
      'mlpFromSafetensors: activation is "tanh", expected "relu" or "gelu"',
    ],
    [
      "withLowPrecisionBase model",
      () => withLowPrecisionBase(null as never, "q8_0", () => {}),
      "withLowPrecisionBase: model is null, expected an Mlp",
    ],
    [
      "withLowPrecisionBase precision",
      () => withLowPrecisionBase(mlp(), "q2_k" as never, () => {}),
      'withLowPrecisionBase: precision is "q2_k", expected "float32", "q8_0" or "q4_0"',
    ],
    [
      "withLowPrecisionBase addAdapter",
      () => withLowPrecisionBase(mlp(), "float32", null as never),
      "withLowPrecisionBase: addAdapter is null, expected a function (layer, index)",
    ],
    ["withLora", () => withLora(null as never, 2, 0), "withLora: base is null, expected an Mlp"],
    ["runLoraDemo seed", () => runLoraDemo({ seed: Number.NaN }), "runLoraDemo: seed is NaN, expected a finite number"],
    [
      "runLoraDemo ranks",
      () => runLoraDemo({ ranks: null as never }),
      "runLoraDemo: ranks is null, expected an array of positive integers",
    ],
    [
      "runLoraDemo loraPlusRatio",
      () => runLoraDemo({ loraPlusRatio: Number.NaN }),
      "runLoraDemo: loraPlusRatio is NaN, expected a positive number",
    ],
    [
      "runLoraDemo onProgress",
      () => runLoraDemo({ onProgress: 1 as never }),
      "runLoraDemo: onProgress is 1, expected a function or undefined",
    ],
    [
      "runLoraDemo options",
      () => runLoraDemo("fast" as never),
      'runLoraDemo: options is "fast", expected an options object',
    ],
  ])("%s: invalid_argument", (_, f, message) => {
    expect(codeAndMessage(f)).toEqual(["invalid_argument", message]);
  });
});

describe("mlpFromSafetensors: files that are not an Mlp state dict", () => {
  const st = (tensors: Record<string, number[]>) =>
    serializeSafetensors(
      new Map(
        Object.entries(tensors).map(([name, shape]) => [
          name,
          { dtype: "F64" as const, shape, data: new Float64Array(shape.reduce((a, b) => a * b, 1)) },
        ]),
      ),
    );

  it.each([
    [
      "a 1-D weight",
      { "0.weight": [4] },
      "shape_mismatch",
      'tensor "0.weight" has shape [4], expected [dOut, dIn] with dims ≥ 1 (nn.Linear\'s layout)',
    ],
    [
      "a 3-D weight (read as its first [2, 2])",
      { "0.weight": [2, 2, 2] },
      "shape_mismatch",
      'tensor "0.weight" has shape [2, 2, 2], expected [dOut, dIn] with dims ≥ 1 (nn.Linear\'s layout)',
    ],
    [
      "an empty layer",
      { "0.weight": [0, 2] },
      "shape_mismatch",
      'tensor "0.weight" has shape [0, 2], expected [dOut, dIn] with dims ≥ 1 (nn.Linear\'s layout)',
    ],
    [
      "layers that do not chain (failed only at forward)",
      { "0.weight": [4, 2], "2.weight": [3, 5] },
      "shape_mismatch",
      'tensor "2.weight" has shape [3, 5], expected [dOut, 4] because "0.weight" is [4, 2]',
    ],
    [
      "a bias of another length",
      { "0.weight": [2, 3], "0.bias": [3] },
      "shape_mismatch",
      'tensor "0.bias" has shape [3], expected [2] because "0.weight" is [2, 3]',
    ],
    [
      "a missing middle layer (the rest was silently dropped)",
      { "0.weight": [4, 2], "4.weight": [3, 4] },
      "unexpected_tensor",
      'tensor "4.weight" is not the weight or bias of a dense layer read (layers "0"; the next would be "2.weight", which is missing)',
    ],
  ])("%s", (_, tensors, code, message) => {
    expect(codeAndMessage(() => mlpFromSafetensors(st(tensors)))).toEqual([code, `mlpFromSafetensors: ${message}`]);
  });

  it("a NaN or ±Infinity weight or bias is non_finite, naming the tensor and the index (it loaded, then gave NaN)", () => {
    const m = Mlp.init({ sizes: [2, 4, 3] }, createRng(2));
    const bad = (name: string, i: number, v: number) => {
      const tensors = parseSafetensors(mlpToSafetensors(m));
      const out = new Map(
        tensors.names().map((n) => {
          const data = tensors.toFloat64(n);
          if (n === name) data[i] = v;
          return [n, { dtype: "F64" as const, shape: [...tensors.info(n).shape], data }];
        }),
      );
      return codeAndMessage(() => mlpFromSafetensors(serializeSafetensors(out)));
    };
    expect(bad("2.weight", 5, Number.NaN)).toEqual([
      "non_finite",
      'mlpFromSafetensors: tensor "2.weight" holds NaN at index 5, expected finite values',
    ]);
    expect(bad("0.bias", 1, -Infinity)).toEqual([
      "non_finite",
      'mlpFromSafetensors: tensor "0.bias" holds -Infinity at index 1, expected finite values',
    ]);
  });

  it("reads back what mlpToSafetensors wrote", () => {
    const m = Mlp.init({ sizes: [2, 4, 3] }, createRng(2));
    const back = mlpFromSafetensors(mlpToSafetensors(m));
    expect(back.parameters().map((p) => Array.from(p.value))).toEqual(m.parameters().map((p) => Array.from(p.value)));
  });
});
