// Losses with their gradients. logits, pred, target: [n, d] row-major; labels: n class indices in [0, classes).
// Both losses are means (over rows for cross-entropy, over all n·d elements for MSE, like PyTorch's defaults),
// and the returned gradient is of that mean.

import { ArgumentError, ShapeError } from "../errors.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { badArgument, requireMatrix } from "./check.js";

/** A loss value and its gradient with respect to the model output ([n, d], the output's dtype). */
export interface LossResult {
  loss: number;
  grad: Matrix;
}

/**
 * Softmax cross-entropy: loss = mean_i (logsumexp(logits[i]) − logits[i, labels[i]]);
 * grad = (softmax(logits) − onehot(labels)) / n. Stable: subtracts each row's max first.
 * @param logits [n, classes]   @param labels n integers in [0, classes)
 * @throws {ShapeError} labels.length ≠ n ("shape_mismatch")
 * @throws {ArgumentError} a label that is not an integer in range ("invalid_value")
 * @example softmaxCrossEntropy({ data: new Float64Array([0, 0]), rows: 1, cols: 2 }, [1]).loss // Math.LN2
 */
export function softmaxCrossEntropy(logits: Matrix, labels: ArrayLike<number>): LossResult {
  const { rows: n, cols: k } = requireMatrix("softmaxCrossEntropy", "logits", logits);
  if (labels === null || typeof labels !== "object" || typeof labels.length !== "number")
    throw badArgument("softmaxCrossEntropy", "labels", labels, "an array of class indices");
  if (labels.length !== n)
    throw new ShapeError(
      "shape_mismatch",
      `softmaxCrossEntropy: labels has length ${labels.length}, expected ${n} because logits is ${fmtShape([n, k])}`,
      { shape: [labels.length], expected: [n] },
    );
  const Ctor = logits.data.constructor as new (len: number) => FloatArray;
  const grad = new Ctor(n * k);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= k)
      throw new ArgumentError(
        "invalid_value",
        `softmaxCrossEntropy: labels[${i}] is ${y}, expected an integer in [0, ${k}) (one per class of logits ${fmtShape([n, k])})`,
        { index: i, value: y, classes: k },
      );
    const o = i * k;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < k; j++) max = Math.max(max, logits.data[o + j]!);
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const e = Math.exp(logits.data[o + j]! - max);
      grad[o + j] = e;
      sum += e;
    }
    total += Math.log(sum) + max - logits.data[o + y]!;
    for (let j = 0; j < k; j++) grad[o + j] = grad[o + j]! / sum / n;
    grad[o + y] = grad[o + y]! - 1 / n;
  }
  return { loss: n === 0 ? 0 : total / n, grad: { data: grad, rows: n, cols: k } };
}

/**
 * Mean squared error: loss = mean over all n·d elements of (pred − target)²; grad = 2·(pred − target) / (n·d).
 * @param pred [n, d]   @param target [n, d]
 * @throws {ShapeError} shapes differ ("shape_mismatch")
 * @example meanSquaredError({ data: new Float64Array([3]), rows: 1, cols: 1 }, { data: new Float64Array([1]), rows: 1, cols: 1 }).loss // 4
 */
export function meanSquaredError(pred: Matrix, target: Matrix): LossResult {
  requireMatrix("meanSquaredError", "pred", pred);
  requireMatrix("meanSquaredError", "target", target);
  if (pred.rows !== target.rows || pred.cols !== target.cols)
    throw new ShapeError(
      "shape_mismatch",
      `meanSquaredError: target has shape ${fmtShape([target.rows, target.cols])}, expected ${fmtShape([pred.rows, pred.cols])} like pred`,
      { shape: [target.rows, target.cols], expected: [pred.rows, pred.cols] },
    );
  const count = pred.rows * pred.cols;
  const Ctor = pred.data.constructor as new (len: number) => FloatArray;
  const grad = new Ctor(count);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const d = pred.data[i]! - target.data[i]!;
    total += d * d;
    grad[i] = (2 * d) / count;
  }
  return { loss: count === 0 ? 0 : total / count, grad: { data: grad, rows: pred.rows, cols: pred.cols } };
}

/**
 * Index of the largest logit in each row (first on ties). logits: [n, classes] → n indices.
 * @throws {ShapeError} logits not a matrix, or rows with no column ("shape_mismatch")
 */
export function argmaxRows(logits: Matrix): Int32Array {
  requireMatrix("argmaxRows", "logits", logits);
  if (logits.cols === 0 && logits.rows > 0)
    throw new ShapeError(
      "shape_mismatch",
      `argmaxRows: logits has shape ${fmtShape([logits.rows, logits.cols])}, expected at least one column (class) per row`,
      { shape: [logits.rows, logits.cols] },
    );
  const out = new Int32Array(logits.rows);
  for (let i = 0; i < logits.rows; i++) {
    let best = 0;
    for (let j = 1; j < logits.cols; j++)
      if (logits.data[i * logits.cols + j]! > logits.data[i * logits.cols + best]!) best = j;
    out[i] = best;
  }
  return out;
}
