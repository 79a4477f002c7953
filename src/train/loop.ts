// A minimal supervised training loop for classifiers: seeded shuffling, mini-batches, softmax cross-entropy,
// global-norm clipping, AdamW with an optional cosine schedule. Deterministic: the same model, data and
// options give bit-identical parameters.

import { ArgumentError, ShapeError } from "../errors.js";
import { createRng } from "../lora/rng.js";
import type { Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { badArgument, requireInteger, requireModule, requireObject } from "./check.js";
import { checkDataset, type Dataset, gatherBatch } from "./data.js";
import { argmaxRows, softmaxCrossEntropy } from "./loss.js";
import type { Module } from "./module.js";
import { AdamW, clipGradNorm, cosineFactor } from "./optim.js";
import { permutation } from "./shuffle.js";

/** Progress after one optimiser step. */
export interface StepInfo {
  /** 0-based epoch and step within it. */
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  epochs: number;
  /** This batch's loss (before the update). */
  loss: number;
}

/** Options of trainClassifier. */
export interface TrainOptions {
  epochs: number;
  /** Rows per mini-batch, default 64. */
  batchSize?: number;
  /** Peak learning rate. */
  lr: number;
  /** AdamW decoupled weight decay, default 0. */
  weightDecay?: number;
  /** LoRA+ ratio for `up` tensors, default 1. */
  loraPlusRatio?: number;
  /** Clip the global gradient norm to this value; default none. */
  clipNorm?: number;
  /** "cosine" (default: 5% linear warm-up, then cosine decay to 0) or "constant". */
  schedule?: "cosine" | "constant";
  /** Seed of the shuffling order. */
  seed: number;
  onStep?: (info: StepInfo) => void;
}

/** Mean training loss of each epoch. */
export interface TrainResult {
  epochLosses: number[];
  steps: number;
}

/** Checks the options of trainClassifier before anything runs; returns them with the defaults filled in. */
function readTrainOptions(op: string, options: TrainOptions) {
  requireObject(op, "options", options, "an options object { epochs, lr, seed, … }");
  const { epochs, batchSize = 64, lr, weightDecay = 0, loraPlusRatio = 1, clipNorm, schedule = "cosine" } = options;
  if (!Number.isInteger(epochs) || epochs < 0 || !Number.isInteger(batchSize) || batchSize < 1)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: epochs ${epochs} and batchSize ${batchSize}, expected integers epochs ≥ 0 and batchSize ≥ 1`,
      { epochs, batchSize },
    );
  if (typeof options.seed !== "number" || !Number.isFinite(options.seed))
    throw badArgument(op, "options.seed", options.seed, "a finite number (the seed of the shuffling order)");
  if (schedule !== "cosine" && schedule !== "constant")
    throw badArgument(op, "options.schedule", schedule, '"cosine" or "constant"');
  if (options.onStep !== undefined && typeof options.onStep !== "function")
    throw badArgument(op, "options.onStep", options.onStep, "a function or undefined");
  for (const [name, v, min] of [
    ["lr", lr, "> 0"],
    ["weightDecay", weightDecay, "≥ 0"],
    ["loraPlusRatio", loraPlusRatio, "> 0"],
  ] as const)
    if (typeof v !== "number" || !Number.isFinite(v) || (min === "> 0" ? !(v > 0) : !(v >= 0)))
      throw badArgument(op, `options.${name}`, v, `a finite number ${min}`);
  if (clipNorm !== undefined && !(typeof clipNorm === "number" && clipNorm > 0 && Number.isFinite(clipNorm)))
    throw badArgument(op, "options.clipNorm", clipNorm, "a positive number or undefined");
  return { epochs, batchSize, lr, weightDecay, loraPlusRatio, clipNorm, schedule };
}

/** The model's output for a batch must be logits [rows, classes]. */
function checkLogits(op: string, logits: Matrix, rows: number, classes: number, dIn: number): void {
  if (logits?.rows !== rows || logits.cols !== classes)
    throw new ShapeError(
      "shape_mismatch",
      `${op}: the model's output has shape ${fmtShape([logits?.rows, logits?.cols])}, expected ${fmtShape([rows, classes])} (one logit per class: data.classes = ${classes}) for a batch ${fmtShape([rows, dIn])}`,
      { shape: [logits?.rows, logits?.cols], expected: [rows, classes] },
    );
}

/**
 * Trains model on data with softmax cross-entropy; parameters are updated in place. Everything is checked before
 * the first step (options, every label, every x value, the model's output shape on the first batch). A step whose
 * loss is not finite is refused before its update, so the parameters stay finite: they are those after the previous
 * step (AdamW.step refuses a non-finite gradient or update the same way).
 * @throws {ArgumentError} epochs or batchSize not a positive integer, a bad seed, schedule, onStep or clipNorm
 *   ("invalid_argument"), a label outside [0, data.classes) ("invalid_value"), a non-finite x value or loss
 *   ("non_finite"); an empty data set with epochs ≥ 1 ("invalid_argument")
 * @throws {ShapeError} labels not one per row, or model output not [n, data.classes] ("shape_mismatch")
 */
export function trainClassifier(model: Module, data: Dataset, options: TrainOptions): TrainResult {
  const op = "trainClassifier";
  requireModule(op, "model", model);
  const { epochs, batchSize, lr, weightDecay, loraPlusRatio, clipNorm, schedule } = readTrainOptions(op, options);
  const x = checkDataset(op, "data", data, true);
  if (x.rows === 0 && epochs > 0)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: data.x has shape ${fmtShape([x.rows, x.cols])}, expected at least one row to train on (epochs = ${epochs})`,
      { name: "data.x", shape: [x.rows, x.cols] },
    );
  const params = model.parameters();
  const optimizer = new AdamW(params, { lr, weightDecay, loraPlusRatio });
  const rng = createRng(options.seed);
  const n = x.rows;
  const stepsPerEpoch = Math.ceil(n / batchSize);
  const total = epochs * stepsPerEpoch;
  const warmup = schedule === "cosine" ? Math.ceil(0.05 * total) : 0;
  const epochLosses: number[] = [];
  model.train?.(true);
  let t = 0;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(n, rng);
      let sum = 0;
      for (let step = 0; step < stepsPerEpoch; step++) {
        const start = step * batchSize;
        const end = Math.min(n, start + batchSize);
        const batch = gatherBatch(data, order, start, end);
        model.zeroGrad();
        const logits = model.forward(batch.x);
        checkLogits(op, logits, end - start, data.classes, x.cols);
        const { loss, grad } = softmaxCrossEntropy(logits, batch.labels);
        if (!Number.isFinite(loss))
          throw new ArgumentError(
            "non_finite",
            `${op}: epoch ${epoch + 1} step ${step + 1} (optimizer step ${t + 1}): the loss is ${loss}, expected a finite number (lr too large, or non-finite weights?); stopped before this step's update`,
            { epoch, step, optimizerStep: t + 1, loss },
          );
        model.backward(grad);
        if (clipNorm !== undefined) clipGradNorm(params, clipNorm);
        optimizer.lr = schedule === "cosine" ? lr * cosineFactor(t, total, warmup) : lr;
        optimizer.step();
        t++;
        sum += loss * (end - start);
        options.onStep?.({ epoch, step, stepsPerEpoch, epochs, loss });
      }
      epochLosses.push(sum / n);
    }
  } finally {
    model.train?.(false);
  }
  return { epochLosses, steps: t };
}

/**
 * Mean cross-entropy and accuracy of model on data, in batches (no parameter changes).
 * @throws {ArgumentError} batchSize not a positive integer, model or data not one ("invalid_argument")
 */
export function evaluateClassifier(model: Module, data: Dataset, batchSize = 512): { loss: number; accuracy: number } {
  const op = "evaluateClassifier";
  requireModule(op, "model", model);
  requireInteger(op, "batchSize", batchSize, 1);
  const n = checkDataset(op, "data", data, false).rows;
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  let loss = 0;
  let correct = 0;
  model.train?.(false);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const batch = gatherBatch(data, order, start, end);
    const logits = model.forward(batch.x);
    loss += softmaxCrossEntropy(logits, batch.labels).loss * (end - start);
    const pred = argmaxRows(logits);
    for (let i = 0; i < pred.length; i++) if (pred[i] === batch.labels[i]) correct++;
  }
  return { loss: n === 0 ? 0 : loss / n, accuracy: n === 0 ? 0 : correct / n };
}
