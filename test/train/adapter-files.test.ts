// LoRA training end to end on a small fixed task: determinism (same seed → bit-identical adapters), and a saved
// adapter (PEFT files) plus base (safetensors) that reload and give the same outputs.

import { describe, expect, it } from "vitest";
import { AdapterStateError, ArgumentError, SafetensorsError } from "../../src/errors.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapter } from "../../src/io/peft-save.js";
import { serializeSafetensors } from "../../src/io/safetensors.js";
import { LoraLinear } from "../../src/lora/layer.js";
import { createRng } from "../../src/lora/rng.js";
import { makeSpiralTask } from "../../src/train/data.js";
import { runLoraDemo, withLora } from "../../src/train/demo.js";
import { evaluateClassifier, trainClassifier } from "../../src/train/loop.js";
import { Mlp } from "../../src/train/mlp.js";
import { applyLoraModules, loraModules, mlpFromSafetensors, mlpToSafetensors } from "../../src/train/mlp-files.js";
import { expectLoraError } from "../helpers/train-errors.js";

const task = makeSpiralTask({ seed: 3, dIn: 8, turns: 1, nTrain: 384, nTest: 256 });

function pretrained(): Mlp {
  const base = Mlp.init({ sizes: [8, 24, 24, 3] }, createRng(1));
  trainClassifier(base, task.source.train, { epochs: 6, lr: 0.02, seed: 2, clipNorm: 1, batchSize: 32 });
  return base;
}

function adapt(base: Mlp, seed: number): Mlp {
  const model = withLora(base, 2, seed);
  trainClassifier(model, task.target.train, { epochs: 4, lr: 0.03, seed, clipNorm: 1, batchSize: 32 });
  return model;
}

const snapshot = (m: Mlp) => m.parameters().map((p) => Array.from(p.value));

describe("LoRA training", () => {
  const base = pretrained();
  const baseWeights = snapshot(base);

  it("adapts to the target task and leaves the base weights untouched", () => {
    const before = evaluateClassifier(base, task.target.test).accuracy;
    const model = adapt(base, 4);
    expect(evaluateClassifier(model, task.target.test).accuracy).toBeGreaterThan(before + 0.2);
    expect(snapshot(base)).toEqual(baseWeights);
  });

  it("is deterministic: the same seed gives bit-identical adapters, another seed different ones", () => {
    const a = snapshot(adapt(base, 4));
    expect(snapshot(adapt(base, 4))).toEqual(a);
    expect(snapshot(adapt(base, 5))).not.toEqual(a);
  });

  it("a saved adapter and base reload and give the same outputs", () => {
    const model = adapt(base, 4);
    // adapters are saved as F32: round the live ones to float32 so the reloaded model must match bit for bit
    for (const p of model.parameters()) for (let i = 0; i < p.value.length; i++) p.value[i] = Math.fround(p.value[i]!);
    const files = savePeftAdapter(loraModules(model, "default"), { peft_type: "LORA", r: 2, lora_alpha: 4 });
    const loaded = loadPeftAdapter({ config: files.configJson, weights: files.weights });
    expect(loaded.modules.map((m) => [m.modulePath, m.r, m.scaling])).toEqual([
      ["0", 2, 2],
      ["2", 2, 2],
      ["4", 2, 2],
    ]);
    const reloadedBase = mlpFromSafetensors(mlpToSafetensors(base));
    const reloaded = applyLoraModules(reloadedBase, loaded.modules);
    const x = task.target.test.x;
    expect(Array.from(reloaded.forward(x).data)).toEqual(Array.from(model.forward(x).data));
    expect(Array.from(reloadedBase.forward(x).data)).toEqual(Array.from(base.forward(x).data));
    expect(reloaded.linears.every((l) => l instanceof LoraLinear)).toBe(true);
  });

  it("applyLoraModules leaves layers without an adapter as they are", () => {
    const model = adapt(base, 4);
    const only = loraModules(model, "default").filter((m) => m.modulePath === "2");
    const partial = applyLoraModules(base, only);
    expect(partial.linears.map((l) => l instanceof LoraLinear)).toEqual([false, true, false]);
    expect(loraModules(partial, "other")).toEqual([]);
  });

  it("rejects adapters for unknown modules, non-Linear bases, and saving a LoRA model as the base", () => {
    const model = adapt(base, 4);
    const modules = loraModules(model, "default");
    expectLoraError(
      () => applyLoraModules(base, [{ ...modules[0]!, modulePath: "6" }]),
      ArgumentError,
      "invalid_argument",
      /^applyLoraModules: adapter module "6" is not a dense layer of the model \(module paths: 0, 2, 4\)$/,
    );
    expectLoraError(
      () => applyLoraModules(model, modules),
      ArgumentError,
      "invalid_argument",
      /^applyLoraModules: dense layer 0 is not a plain Linear; apply adapters to a base Mlp$/,
    );
    expectLoraError(
      () => mlpToSafetensors(model),
      ArgumentError,
      "invalid_argument",
      /^mlpToSafetensors: dense layer 0 is not a plain Linear; save the base Mlp$/,
    );
    expectLoraError(
      () => mlpFromSafetensors(serializeSafetensors(new Map())),
      SafetensorsError,
      "tensor_not_found",
      /no tensor named "0.weight"/,
    );
  });

  it("LoraLinear.backward outside training mode is refused (adapter_state)", () => {
    const model = withLora(base, 1, 1);
    model.train(false);
    const x = task.target.test.x;
    const h = model.forward(x);
    expectLoraError(
      () => model.backward(h),
      AdapterStateError,
      "adapter_state",
      /^LoraLinear.backward: no training-mode forward pass to differentiate/,
    );
  });
});

describe("runLoraDemo", () => {
  it("one epoch: a row per method, parameter fractions, phases in order, timings from the clock", () => {
    const ticks = [0];
    const clock = () => (ticks[0]! += 250);
    const seen = new Set<string>();
    const a = runLoraDemo({ seed: 1, epochs: 1, ranks: [1, 4], clock, onProgress: (p) => seen.add(p.phase) });
    expect(a.pretrainEpochs).toBe(2);
    expect([...seen]).toEqual(["pretrain", "LoRA r=1", "LoRA r=4", "full fine-tuning"]);
    expect(a.rows.map((r) => [r.method, r.trainableParams])).toEqual([
      ["frozen base", 0],
      ["LoRA r=1", 531],
      ["LoRA r=4", 2124],
      ["full fine-tuning", 19075],
    ]);
    expect(a.rows[1]!.fractionOfFull).toBeCloseTo(531 / 19075, 15);
    expect(a.rows[1]!.seconds).toBe(0.25);
    expect(a.rows.every((r) => r.lossCurve.length === (r.kind === "frozen" ? 0 : 1))).toBe(true);
    expect(a.rows[0]!.targetAccuracy).toBe(a.pretrain.targetAccuracy);
  });

  it("rejects bad epochs and ranks (invalid_argument)", () => {
    expectLoraError(
      () => runLoraDemo({ epochs: 0 }),
      ArgumentError,
      "invalid_argument",
      /^runLoraDemo: epochs is 0, expected a positive integer$/,
    );
    expectLoraError(
      () => runLoraDemo({ ranks: [2, 0] }),
      ArgumentError,
      "invalid_argument",
      /^runLoraDemo: rank 0, expected a positive integer$/,
    );
  });
});
