import { describe, expect, it } from "vitest";
import { expectLoraError } from "../../test/helpers/train-errors.js";
import { ArgumentError, ShapeError } from "../errors.js";
import { argmaxRows, meanSquaredError, softmaxCrossEntropy } from "./loss.js";

const m = (values: number[], rows: number, cols: number) => ({ data: Float64Array.from(values), rows, cols });

describe("losses", () => {
  it("softmaxCrossEntropy rejects a label count that differs from the rows (shape_mismatch)", () => {
    expectLoraError(
      () => softmaxCrossEntropy(m([0, 0, 0, 0], 2, 2), [0]),
      ShapeError,
      "shape_mismatch",
      /^softmaxCrossEntropy: labels has length 1, expected 2 because logits is \[2, 2\]$/,
    );
  });

  it("softmaxCrossEntropy rejects labels out of range or not integers (invalid_value)", () => {
    expectLoraError(
      () => softmaxCrossEntropy(m([0, 0, 0, 0], 2, 2), [0, 2]),
      ArgumentError,
      "invalid_value",
      /^softmaxCrossEntropy: labels\[1\] is 2, expected an integer in \[0, 2\) \(one per class of logits \[2, 2\]\)$/,
    );
    expectLoraError(
      () => softmaxCrossEntropy(m([0, 0], 1, 2), [0.5]),
      ArgumentError,
      "invalid_value",
      /^softmaxCrossEntropy: labels\[0\] is 0.5, expected an integer in \[0, 2\)/,
    );
  });

  it("meanSquaredError rejects shapes that differ (shape_mismatch)", () => {
    expectLoraError(
      () => meanSquaredError(m([1, 2], 1, 2), m([1, 2], 2, 1)),
      ShapeError,
      "shape_mismatch",
      /^meanSquaredError: target has shape \[2, 1\], expected \[1, 2\] like pred$/,
    );
  });

  it("empty batches give loss 0; argmaxRows takes the first maximum", () => {
    expect(softmaxCrossEntropy(m([], 0, 3), []).loss).toBe(0);
    expect(meanSquaredError(m([], 0, 3), m([], 0, 3)).loss).toBe(0);
    expect(Array.from(argmaxRows(m([1, 3, 3, 5, 0, -1], 2, 3)))).toEqual([1, 0]);
  });
});
