// The LoRA demonstration behind `lorakit train`: pretrain an MLP on the source spiral task, then adapt it to the
// tilted target task with no training (frozen base), LoRA at several ranks, and full fine-tuning, and measure
// trainable parameters, target accuracy, source accuracy after adapting and time. Browser-safe and deterministic
// (everything but the timings depends only on the options).

import { ArgumentError } from "../errors.js";
import { LoraLinear } from "../lora/layer.js";
import { createRng } from "../lora/rng.js";
import { badArgument, optionsObject } from "./check.js";
import { makeSpiralTask, type SpiralTask, type SpiralTaskOptions } from "./data.js";
import type { Linear } from "./linear.js";
import { evaluateClassifier, type StepInfo, trainClassifier } from "./loop.js";
import { Mlp } from "./mlp.js";
import { type BasePrecision, withLowPrecisionBase } from "./quant-base.js";
import { deriveSeed } from "./shuffle.js";

/** The fixed task and hyperparameters of the demonstration (see docs/training.md for why they are fair). */
export const DEMO_CONFIG = Object.freeze({
  task: Object.freeze({ dIn: 16, classes: 3, turns: 2, nTrain: 2048, nTest: 1024, tiltDegrees: 60, noise: 0.05 }),
  hidden: Object.freeze([128, 128]),
  activation: "relu",
  batchSize: 64,
  clipNorm: 1,
  pretrainLr: 0.01,
  fullLr: 0.01,
  loraLr: 0.02,
  /** lora_alpha = alphaPerRank·r, so scaling = alpha / r = 2 at every rank. */
  alphaPerRank: 2,
  adapterName: "default",
} as const);

/** Options of runLoraDemo. */
export interface DemoOptions {
  /** Seeds the data, the initialisations and the shuffling. Default 0. */
  seed?: number;
  /** Adaptation epochs per method; pretraining runs 2·epochs. Default 10. */
  epochs?: number;
  /** LoRA ranks to compare. Default [1, 2, 4, 8]. */
  ranks?: readonly number[];
  /**
   * Rank of the extra LoRA rows over a float32, a Q8_0 and a Q4_0 copy of the pretrained base (QLoRA-style; see
   * docs/quant.md). Default null: none.
   */
  lowPrecisionRank?: number | null;
  /** LoRA+ ratio (learning rate of `up` ÷ that of `down`). Default 1 (plain LoRA). */
  loraPlusRatio?: number;
  /** Called after every optimiser step. */
  onProgress?: (p: DemoProgress) => void;
  /** Milliseconds clock for the timings. Default performance.now. */
  clock?: () => number;
}

/** Where the demonstration is: the phase ("pretrain", "LoRA r=2", "full fine-tuning") and its step. */
export interface DemoProgress extends StepInfo {
  phase: string;
  /** Optimiser steps done and planned over all phases. */
  doneSteps: number;
  totalSteps: number;
}

/** One line of the results table. */
export interface DemoRow {
  method: string;
  kind: "frozen" | "lora" | "full";
  r: number | null;
  /** Precision of the frozen base the adapter was trained over (LoRA rows; float64 unless lowPrecisionRank). */
  basePrecision?: "float64" | BasePrecision;
  trainableParams: number;
  /** trainableParams ÷ the parameters full fine-tuning trains. */
  fractionOfFull: number;
  targetAccuracy: number;
  /** Source accuracy of the adapted model (adapter active): forgetting. */
  sourceAccuracy: number;
  seconds: number;
  /** Mean training loss per epoch on the target task (empty for the frozen base). */
  lossCurve: number[];
}

/** What runLoraDemo returns. */
export interface DemoResult {
  seed: number;
  epochs: number;
  pretrainEpochs: number;
  pretrain: { sourceAccuracy: number; targetAccuracy: number; seconds: number; lossCurve: number[]; params: number };
  rows: DemoRow[];
  /** The pretrained base model (left unchanged by the LoRA runs). */
  base: Mlp;
  /** The LoRA-adapted models by rank; their adapters are named DEMO_CONFIG.adapterName. */
  loraModels: Map<number, Mlp>;
  task: SpiralTask;
}

const LOW_PRECISIONS: readonly BasePrecision[] = ["float32", "q8_0", "q4_0"];
const PRECISION_LABEL = { float32: "float32", q8_0: "Q8_0", q4_0: "Q4_0" } as const;

const count = (m: Mlp) => m.parameters().reduce((s, p) => s + p.value.length, 0);

/** The base's dense layers wrapped in LoraLinear (sharing the base arrays) with a fresh rank-r adapter each. */
export function withLora(base: Mlp, r: number, seed: number): Mlp {
  if (!(base instanceof Mlp)) throw badArgument("withLora", "base", base, "an Mlp");
  return base.mapLinears((layer, i) => {
    const l = layer as Linear;
    const lora = new LoraLinear({ weight: l.weight, bias: l.bias });
    lora.addAdapter(DEMO_CONFIG.adapterName, {
      r,
      alpha: DEMO_CONFIG.alphaPerRank * r,
      seed: deriveSeed(seed, `lora-init-${i}`),
    });
    return lora;
  });
}

/**
 * Runs the demonstration (see the module header and docs/training.md).
 * @throws {ArgumentError} epochs or a rank not a positive integer, a non-finite seed, ranks not an array, a
 *   loraPlusRatio not > 0, onProgress or clock not a function ("invalid_argument")
 */
export function runLoraDemo(options: DemoOptions = {}): DemoResult {
  const op = "runLoraDemo";
  const o = optionsObject(op, options);
  const { seed = 0, epochs = 10, ranks = [1, 2, 4, 8], loraPlusRatio = 1, onProgress } = o;
  const lowRank = o.lowPrecisionRank ?? null;
  const clock = o.clock ?? (() => performance.now());
  if (typeof seed !== "number" || !Number.isFinite(seed)) throw badArgument(op, "seed", seed, "a finite number");
  if (!Array.isArray(ranks as unknown)) throw badArgument(op, "ranks", ranks, "an array of positive integers");
  if (typeof loraPlusRatio !== "number" || !(loraPlusRatio > 0) || !Number.isFinite(loraPlusRatio))
    throw badArgument(op, "loraPlusRatio", loraPlusRatio, "a positive number");
  for (const [name, f] of [
    ["onProgress", onProgress],
    ["clock", o.clock],
  ] as const)
    if (f !== undefined && typeof f !== "function") throw badArgument(op, name, f, "a function or undefined");
  if (!Number.isInteger(epochs) || epochs < 1)
    throw new ArgumentError("invalid_argument", `runLoraDemo: epochs is ${epochs}, expected a positive integer`, {
      epochs,
    });
  for (const r of lowRank === null ? ranks : [...ranks, lowRank])
    if (!Number.isInteger(r) || r < 1)
      throw new ArgumentError("invalid_argument", `runLoraDemo: rank ${r}, expected a positive integer`, { r });
  const c = DEMO_CONFIG;
  const taskOptions: SpiralTaskOptions = { seed: deriveSeed(seed, "task"), ...c.task };
  const task = makeSpiralTask(taskOptions);
  const pretrainEpochs = 2 * epochs;
  const stepsPerEpoch = Math.ceil(c.task.nTrain / c.batchSize);
  const lowRuns = lowRank === null ? 0 : LOW_PRECISIONS.length;
  const totalSteps = (pretrainEpochs + epochs * (ranks.length + lowRuns + 1)) * stepsPerEpoch;
  let doneSteps = 0;
  const common = { batchSize: c.batchSize, clipNorm: c.clipNorm };
  const run = (phase: string, model: Mlp, lr: number, n: number, data = task.target.train) => {
    const t0 = clock();
    const res = trainClassifier(model, data, {
      ...common,
      epochs: n,
      lr,
      loraPlusRatio,
      seed: deriveSeed(seed, `shuffle-${phase}`),
      onStep: (s) => onProgress?.({ ...s, phase, doneSteps: ++doneSteps, totalSteps }),
    });
    return { lossCurve: res.epochLosses, seconds: (clock() - t0) / 1000 };
  };
  const score = (m: Mlp) => ({
    targetAccuracy: evaluateClassifier(m, task.target.test).accuracy,
    sourceAccuracy: evaluateClassifier(m, task.source.test).accuracy,
  });

  const base = Mlp.init(
    { sizes: [c.task.dIn, ...c.hidden, c.task.classes], activation: c.activation },
    createRng(deriveSeed(seed, "base-init")),
  );
  const pre = run("pretrain", base, c.pretrainLr, pretrainEpochs, task.source.train);
  const full = count(base);
  const baseScore = score(base);
  const rows: DemoRow[] = [
    {
      method: "frozen base",
      kind: "frozen",
      r: null,
      trainableParams: 0,
      fractionOfFull: 0,
      ...baseScore,
      seconds: 0,
      lossCurve: [],
    },
  ];
  const loraModels = new Map<number, Mlp>();
  for (const r of ranks) {
    const model = withLora(base, r, seed);
    const trainable = count(model);
    const t = run(`LoRA r=${r}`, model, c.loraLr, epochs);
    loraModels.set(r, model);
    rows.push({
      method: `LoRA r=${r}`,
      kind: "lora",
      r,
      trainableParams: trainable,
      fractionOfFull: trainable / full,
      ...score(model),
      ...t,
    });
  }
  for (const precision of lowRank === null ? [] : LOW_PRECISIONS) {
    const r = lowRank!;
    const method = `LoRA r=${r}, ${PRECISION_LABEL[precision]} base`;
    const model = withLowPrecisionBase(base, precision, (layer, i) =>
      layer.addAdapter(c.adapterName, {
        r,
        alpha: c.alphaPerRank * r,
        seed: deriveSeed(seed, `lora-init-${i}`),
      }),
    );
    const trainable = count(model);
    const t = run(method, model, c.loraLr, epochs);
    rows.push({
      method,
      kind: "lora",
      r,
      basePrecision: precision,
      trainableParams: trainable,
      fractionOfFull: trainable / full,
      ...score(model),
      ...t,
    });
  }
  const tuned = base.clone();
  const t = run("full fine-tuning", tuned, c.fullLr, epochs);
  rows.push({
    method: "full fine-tuning",
    kind: "full",
    r: null,
    trainableParams: full,
    fractionOfFull: 1,
    ...score(tuned),
    ...t,
  });
  return {
    seed,
    epochs,
    pretrainEpochs,
    pretrain: { ...baseScore, seconds: pre.seconds, lossCurve: pre.lossCurve, params: full },
    rows,
    base,
    loraModels,
    task,
  };
}
