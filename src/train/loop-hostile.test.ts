// trainClassifier, evaluateClassifier and gatherBatch called as a careless user would: every misuse is a coded
// error raised before the first update (the parameters are unchanged), and a run that diverges stops with
// non_finite instead of returning NaN weights.

import { describe, expect, it } from "vitest";
import { codeAndMessage } from "../../test/helpers/errors.js";
import { createRng } from "../lora/rng.js";
import type { Dataset } from "./data.js";
import { gatherBatch } from "./data.js";
import { evaluateClassifier, type TrainOptions, trainClassifier } from "./loop.js";
import { Mlp } from "./mlp.js";

// 4 rows of x: [4, 2], 3 classes
const data = (): Dataset => ({
  x: { data: Float64Array.from([1, 0, 0, 1, -1, 0, 0, -1]), rows: 4, cols: 2 },
  labels: Int32Array.from([0, 1, 2, 0]),
  classes: 3,
});
const model = () => Mlp.init({ sizes: [2, 4, 3] }, createRng(1));
const snapshot = (m: Mlp) => m.parameters().map((p) => Array.from(p.value));
const OPTIONS: TrainOptions = { epochs: 2, lr: 0.1, seed: 1, batchSize: 1 };

/** [code, message] of trainClassifier(model, ds, options), and whether the model's parameters changed. */
function refused(ds: Dataset, options: TrainOptions = OPTIONS, m = model()) {
  const before = snapshot(m);
  const [code, message] = codeAndMessage(() => trainClassifier(m, ds, options));
  return { code, message, changed: JSON.stringify(snapshot(m)) !== JSON.stringify(before) };
}

describe("trainClassifier: hostile calls", () => {
  it("null model, data or options are invalid_argument naming them", () => {
    expect(codeAndMessage(() => trainClassifier(null as never, data(), OPTIONS))).toEqual([
      "invalid_argument",
      "trainClassifier: model is null, expected a Module (forward, backward, parameters, zeroGrad), e.g. an Mlp or Linear",
    ]);
    expect(codeAndMessage(() => trainClassifier(model(), undefined as never, OPTIONS))).toEqual([
      "invalid_argument",
      "trainClassifier: data is undefined, expected a dataset { x: [n, dIn], labels: n class indices, classes }",
    ]);
    expect(codeAndMessage(() => trainClassifier(model(), data(), null as never))).toEqual([
      "invalid_argument",
      "trainClassifier: options is null, expected an options object { epochs, lr, seed, … }",
    ]);
  });

  it.each([
    [
      "seed undefined",
      { seed: undefined },
      "options.seed is undefined, expected a finite number (the seed of the shuffling order)",
    ],
    [
      "seed NaN",
      { seed: Number.NaN },
      "options.seed is NaN, expected a finite number (the seed of the shuffling order)",
    ],
    ["schedule", { schedule: "linear" }, 'options.schedule is "linear", expected "cosine" or "constant"'],
    ["onStep", { onStep: 5 }, "options.onStep is 5, expected a function or undefined"],
    ["lr", { lr: Number.NaN }, "options.lr is NaN, expected a finite number > 0"],
    ["lr string", { lr: "0.1" }, 'options.lr is "0.1", expected a finite number > 0'],
    ["weightDecay", { weightDecay: -0.1 }, "options.weightDecay is -0.1, expected a finite number ≥ 0"],
    [
      "loraPlusRatio",
      { loraPlusRatio: Number.POSITIVE_INFINITY },
      "options.loraPlusRatio is Infinity, expected a finite number > 0",
    ],
    ["clipNorm", { clipNorm: -1 }, "options.clipNorm is -1, expected a positive number or undefined"],
  ])("options.%s is refused before the first step", (_, patch, message) => {
    const r = refused(data(), { ...OPTIONS, ...(patch as object) });
    expect(r).toEqual({ code: "invalid_argument", message: `trainClassifier: ${message}`, changed: false });
  });

  it("labels are checked in full before the first step: length, and a bad label in a later batch", () => {
    expect(refused({ ...data(), labels: Int32Array.from([0, 1]) })).toEqual({
      code: "shape_mismatch",
      message: "trainClassifier: data.labels has length 2, expected 4 because data.x is [4, 2] (one label per row)",
      changed: false,
    });
    expect(refused({ ...data(), labels: Int32Array.from([0, 1, 2, 3]) })).toEqual({
      code: "invalid_value",
      message: "trainClassifier: data.labels[3] is 3, expected an integer in [0, 3) (data.classes = 3)",
      changed: false,
    });
    expect(refused({ ...data(), labels: [0, 1, 0.5, 0] as never }).message).toBe(
      "trainClassifier: data.labels[2] is 0.5, expected an integer in [0, 3) (data.classes = 3)",
    );
  });

  it("x: a data length that is not rows·cols, a non-finite value, no rows", () => {
    const short = { ...data(), x: { data: new Float64Array(7), rows: 4, cols: 2 } };
    expect(refused(short)).toEqual({
      code: "data_length_mismatch",
      message: "trainClassifier: data.x.data has length 7, expected 8 for shape [4, 2]",
      changed: false,
    });
    const nan = data();
    nan.x.data[5] = Number.NaN;
    expect(refused(nan)).toEqual({
      code: "non_finite",
      message: "trainClassifier: data.x has 1 non-finite values (first NaN at [2, 1]), expected finite inputs",
      changed: false,
    });
    const empty = { x: { data: new Float64Array(0), rows: 0, cols: 2 }, labels: new Int32Array(0), classes: 3 };
    expect(refused(empty)).toEqual({
      code: "invalid_argument",
      message: "trainClassifier: data.x has shape [0, 2], expected at least one row to train on (epochs = 2)",
      changed: false,
    });
  });

  it("a model whose output is not [n, data.classes] is refused at the first batch, before any update", () => {
    const twoClasses = Mlp.init({ sizes: [2, 4, 2] }, createRng(1));
    const ds = { ...data(), labels: Int32Array.from([0, 1, 1, 0]) };
    expect(refused(ds, OPTIONS, twoClasses)).toEqual({
      code: "shape_mismatch",
      message:
        "trainClassifier: the model's output has shape [1, 2], expected [1, 3] (one logit per class: data.classes = 3) for a batch [1, 2]",
      changed: false,
    });
  });

  it("a diverging run stops with non_finite; the parameters stay finite (no NaN weights to save)", () => {
    const m = model();
    const [code, message] = codeAndMessage(() =>
      trainClassifier(m, data(), { ...OPTIONS, epochs: 20, lr: 1e300, schedule: "constant" }),
    );
    expect(code).toBe("non_finite");
    expect(message).toMatch(
      /^(trainClassifier: epoch \d+ step \d+ \(optimizer step \d+\): the loss is (NaN|Infinity), expected a finite number \(lr too large, or non-finite weights\?\); stopped before this step's update|AdamW\.step: step \d+: params\[\d+\] \(\w+\) element \d+: .*; no parameter was changed)$/,
    );
    expect(m.parameters().every((p) => p.value.every(Number.isFinite))).toBe(true);
  });

  it("a model with a NaN weight is stopped at the first step, unchanged", () => {
    const m = model();
    m.parameters()[0]!.value[0] = Number.NaN;
    const r = refused(data(), OPTIONS, m);
    expect(r.code).toBe("non_finite");
    expect(r.message).toMatch(/^trainClassifier: epoch 1 step 1 \(optimizer step 1\): the loss is NaN/);
    expect(r.changed).toBe(false);
  });
});

describe("evaluateClassifier and gatherBatch: hostile calls", () => {
  it.each([0, -1, 0.5, Number.NaN])("evaluateClassifier batchSize %s is refused (it looped forever)", (b) => {
    expect(codeAndMessage(() => evaluateClassifier(model(), data(), b))).toEqual([
      "invalid_argument",
      `evaluateClassifier: batchSize is ${b}, expected a positive integer`,
    ]);
  });

  it("evaluateClassifier: null model or data", () => {
    expect(codeAndMessage(() => evaluateClassifier(model(), null as never))[1]).toBe(
      "evaluateClassifier: data is null, expected a dataset { x: [n, dIn], labels: n class indices, classes }",
    );
    expect(codeAndMessage(() => evaluateClassifier({} as never, data()))[0]).toBe("invalid_argument");
  });

  it("gatherBatch refuses rows outside the data set and a range outside order (it copied zeros)", () => {
    expect(codeAndMessage(() => gatherBatch(data(), [5], 0, 1))).toEqual([
      "invalid_argument",
      "gatherBatch: order[0] is 5, expected a row index in [0, 4) of ds.x [4, 2]",
    ]);
    expect(codeAndMessage(() => gatherBatch(data(), [0], 0, 2))).toEqual([
      "invalid_argument",
      "gatherBatch: end is 2, expected an integer in [start, order.length] = [0, 1]",
    ]);
    expect(codeAndMessage(() => gatherBatch(data(), [0, 1], 1, 0))[1]).toBe(
      "gatherBatch: end is 0, expected an integer in [start, order.length] = [1, 2]",
    );
    expect(codeAndMessage(() => gatherBatch(data(), null as never, 0, 0))[1]).toBe(
      "gatherBatch: order is null, expected an array of row indices",
    );
    expect(codeAndMessage(() => gatherBatch(null as never, [0], 0, 1))[0]).toBe("invalid_argument");
  });
});
