// A short seeded training run on a small fixed task: the loss decreases, the accuracy passes a threshold, and
// the same seed gives bit-identical parameters.

import { describe, expect, it } from "vitest";
import { expectLoraError } from "../../test/helpers/train-errors.js";
import { ArgumentError } from "../errors.js";
import { createRng } from "../lora/rng.js";
import { gatherBatch, makeSpiralTask } from "./data.js";
import { evaluateClassifier, trainClassifier } from "./loop.js";
import { Mlp } from "./mlp.js";

// One-turn, 3-arm spirals in R^8; 512 training rows.
const task = makeSpiralTask({ seed: 11, dIn: 8, turns: 1, nTrain: 512, nTest: 256 });

function trainSmall(seed: number) {
  const mlp = Mlp.init({ sizes: [8, 32, 32, 3] }, createRng(seed));
  const before = evaluateClassifier(mlp, task.source.test);
  const result = trainClassifier(mlp, task.source.train, { epochs: 8, lr: 0.02, seed, clipNorm: 1, batchSize: 32 });
  return { mlp, before, result, after: evaluateClassifier(mlp, task.source.test) };
}

describe("trainClassifier", () => {
  it("decreases the loss and reaches > 90% test accuracy in 8 epochs", () => {
    const { before, result, after } = trainSmall(1);
    expect(result.steps).toBe(8 * 16);
    expect(result.epochLosses).toHaveLength(8);
    expect(result.epochLosses.at(-1)!).toBeLessThan(result.epochLosses[0]! / 2);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.accuracy).toBeGreaterThan(0.9);
  });

  it("is deterministic: the same seed gives bit-identical parameters", () => {
    const a = trainSmall(5).mlp.parameters();
    const b = trainSmall(5).mlp.parameters();
    const c = trainSmall(6).mlp.parameters();
    expect(a.map((p) => Array.from(p.value))).toEqual(b.map((p) => Array.from(p.value)));
    expect(a.map((p) => Array.from(p.value))).not.toEqual(c.map((p) => Array.from(p.value)));
  });

  it("reports every step to onStep", () => {
    const mlp = Mlp.init({ sizes: [8, 4, 3] }, createRng(1));
    const seen: string[] = [];
    trainClassifier(mlp, task.source.train, {
      epochs: 2,
      lr: 0.01,
      seed: 1,
      batchSize: 256,
      schedule: "constant",
      onStep: (s) => seen.push(`${s.epoch}.${s.step}/${s.stepsPerEpoch}`),
    });
    expect(seen).toEqual(["0.0/2", "0.1/2", "1.0/2", "1.1/2"]);
  });

  it("rejects bad epochs or batch sizes (invalid_argument)", () => {
    const mlp = Mlp.init({ sizes: [8, 3] }, createRng(1));
    expectLoraError(
      () => trainClassifier(mlp, task.source.train, { epochs: 1.5, lr: 0.1, seed: 1 }),
      ArgumentError,
      "invalid_argument",
      /^trainClassifier: epochs 1.5 and batchSize 64, expected integers epochs ≥ 0 and batchSize ≥ 1$/,
    );
    expectLoraError(
      () => trainClassifier(mlp, task.source.train, { epochs: 1, batchSize: 0, lr: 0.1, seed: 1 }),
      ArgumentError,
      "invalid_argument",
      /^trainClassifier: epochs 1 and batchSize 0/,
    );
  });
});

describe("spiral task", () => {
  it("is reproducible, balanced, and puts source and target in different planes", () => {
    const again = makeSpiralTask({ seed: 11, dIn: 8, turns: 1, nTrain: 512, nTest: 256 });
    expect(Array.from(again.target.train.x.data)).toEqual(Array.from(task.target.train.x.data));
    const counts = [0, 0, 0];
    for (const y of task.source.train.labels) counts[y]!++;
    expect(counts).toEqual([171, 171, 170]);
    // a base model trained on the source does much worse on the target (the shift is real)
    const { mlp } = trainSmall(1);
    expect(evaluateClassifier(mlp, task.target.test).accuracy).toBeLessThan(0.85);
  });

  it("gatherBatch copies the chosen rows", () => {
    const b = gatherBatch(task.source.train, [2, 0], 0, 2);
    expect(Array.from(b.x.data.subarray(0, 8))).toEqual(Array.from(task.source.train.x.data.subarray(16, 24)));
    expect(Array.from(b.labels)).toEqual([task.source.train.labels[2], task.source.train.labels[0]]);
  });

  it("rejects too few dims or classes, and empty splits (invalid_argument)", () => {
    expectLoraError(
      () => makeSpiralTask({ seed: 1, dIn: 3 }),
      ArgumentError,
      "invalid_argument",
      /^makeSpiralTask: dIn 3 and classes 3, expected integers dIn ≥ 4 \(two orthogonal planes\) and classes ≥ 2$/,
    );
    expectLoraError(
      () => makeSpiralTask({ seed: 1, nTest: 0 }),
      ArgumentError,
      "invalid_argument",
      /^makeSpiralTask: nTrain 2048 and nTest 0, expected positive integers$/,
    );
  });
});
