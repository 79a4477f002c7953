// A minimal supervised training loop for classifiers: seeded shuffling, mini-batches, softmax cross-entropy,
// global-norm clipping, AdamW with an optional cosine schedule. Deterministic: the same model, data and
// options give bit-identical parameters.

import { ArgumentError } from "../errors.js";
import { createRng } from "../lora/rng.js";
import { type Dataset, gatherBatch } from "./data.js";
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

/**
 * Trains model on data with softmax cross-entropy; parameters are updated in place.
 * @throws {ArgumentError} epochs or batchSize not a positive integer ("invalid_argument")
 */
export function trainClassifier(model: Module, data: Dataset, options: TrainOptions): TrainResult {
  const { epochs, batchSize = 64, lr, weightDecay = 0, loraPlusRatio = 1, clipNorm, schedule = "cosine" } = options;
  if (!Number.isInteger(epochs) || epochs < 0 || !Number.isInteger(batchSize) || batchSize < 1)
    throw new ArgumentError(
      "invalid_argument",
      `trainClassifier: epochs ${epochs} and batchSize ${batchSize}, expected integers epochs ≥ 0 and batchSize ≥ 1`,
      { epochs, batchSize },
    );
  const params = model.parameters();
  const optimizer = new AdamW(params, { lr, weightDecay, loraPlusRatio });
  const rng = createRng(options.seed);
  const n = data.x.rows;
  const stepsPerEpoch = Math.ceil(n / batchSize);
  const total = epochs * stepsPerEpoch;
  const warmup = schedule === "cosine" ? Math.ceil(0.05 * total) : 0;
  const epochLosses: number[] = [];
  model.train?.(true);
  let t = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(n, rng);
    let sum = 0;
    for (let step = 0; step < stepsPerEpoch; step++) {
      const start = step * batchSize;
      const end = Math.min(n, start + batchSize);
      const batch = gatherBatch(data, order, start, end);
      model.zeroGrad();
      const { loss, grad } = softmaxCrossEntropy(model.forward(batch.x), batch.labels);
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
  model.train?.(false);
  return { epochLosses, steps: t };
}

/** Mean cross-entropy and accuracy of model on data, in batches (no parameter changes). */
export function evaluateClassifier(model: Module, data: Dataset, batchSize = 512): { loss: number; accuracy: number } {
  const n = data.x.rows;
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
