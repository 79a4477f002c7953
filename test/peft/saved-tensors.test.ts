// Non-LoRA tensors of a PEFT adapter file, read as PEFT loads them (peft-saved.ts): modules_to_save by name suffix
// (so "classifier" also saves "pre_classifier"), heads with sub-modules saved whole, task heads saved by older PEFT
// with modules_to_save null, a LoRA module's own bias and base weight; `lorakit inspect` names each saved tensor.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inspectCommand } from "../../cli/inspect.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapter } from "../../src/io/peft-save.js";
import { savedByModulesToSave } from "../../src/io/peft-saved.js";
import { parseSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { caught } from "../helpers/errors.js";
import { adapterBytes } from "./synthetic.js";

const q = { path: "encoder.layer.0.attention.query", dIn: 4, dOut: 4, r: 2 };
const t = (...shape: number[]): TensorToWrite => ({
  dtype: "F32",
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i / 7),
});

function load(config: object, extra: Record<string, TensorToWrite>, modules = [q]) {
  return loadPeftAdapter({ config: { peft_type: "LORA", r: 2, ...config }, weights: adapterBytes(modules, extra) });
}

describe("modules_to_save as PEFT matches it", () => {
  it("an entry selects every module whose name ends with it: classifier also saves pre_classifier", () => {
    const a = load(
      { modules_to_save: ["classifier"] },
      {
        "base_model.model.pre_classifier.weight": t(4, 4),
        "base_model.model.pre_classifier.bias": t(4),
        "base_model.model.classifier.weight": t(2, 4),
      },
    );
    expect([...a.modulesToSave.keys()].sort()).toEqual([
      "classifier.weight",
      "pre_classifier.bias",
      "pre_classifier.weight",
    ]);
    expect([...a.modulesToSave.values()].every((s) => s.role === "modules_to_save")).toBe(true);
    expect(a.warnings).toEqual([]);
  });

  it("a head with sub-modules is saved whole (classifier.dense, classifier.out_proj), in-memory wrapper removed", () => {
    const a = load(
      { modules_to_save: ["classifier"] },
      {
        "base_model.model.classifier.modules_to_save.default.dense.weight": t(4, 4),
        "base_model.model.classifier.out_proj.weight": t(2, 4),
        "base_model.model.classifier.out_proj.bias": t(2),
      },
    );
    expect([...a.modulesToSave.keys()].sort()).toEqual([
      "classifier.dense.weight",
      "classifier.out_proj.bias",
      "classifier.out_proj.weight",
    ]);
  });

  it("modules_to_save null with score.weight / classifier.*: older PEFT's task heads, kept with one warning", () => {
    const a = load(
      { modules_to_save: null, task_type: "SEQ_CLS" },
      { "base_model.model.score.weight": t(2, 4), "base_model.model.classifier.bias": t(2) },
    );
    expect([...a.modulesToSave.keys()].sort()).toEqual(["classifier.bias", "score.weight"]);
    expect([...a.modulesToSave.values()].every((s) => s.role === "task_head")).toBe(true);
    expect(a.warnings).toHaveLength(1);
    expect(a.warnings[0]).toMatch(/score\.weight.*saved with modules_to_save null: read as a task head's full tensors/);
  });

  it("savedByModulesToSave is a suffix test on the module or an ancestor, not on the parameter name", () => {
    expect(savedByModulesToSave(["classifier"], "distilbert.pre_classifier.weight")).toBe(true);
    expect(savedByModulesToSave(["classifier"], "classifier.out_proj.bias")).toBe(true);
    expect(savedByModulesToSave(["weight"], "head.weight")).toBe(false);
    expect(savedByModulesToSave(["lm_head"], "model.embed_tokens.weight")).toBe(false);
    expect(savedByModulesToSave(null, "classifier.weight")).toBe(false);
  });

  it("unexpected_tensor: a tensor PEFT would not have saved is still refused", () => {
    const e = caught(() => load({ modules_to_save: ["lm_head"] }, { "base_model.model.pooler.dense.weight": t(4, 4) }));
    expect(e.code).toBe("unexpected_tensor");
    expect(e.message).toMatch(/tensor "base_model\.model\.pooler\.dense\.weight" is neither a LoRA tensor/);
  });
});

describe("a LoRA module's own base layer", () => {
  it("<module>.base_layer.bias is the module's bias, <module>.base_layer.weight its full base weight", () => {
    const a = load(
      { bias: "lora_only" },
      {
        "base_model.model.encoder.layer.0.attention.query.base_layer.bias": t(4),
        "base_model.model.encoder.layer.0.attention.query.base_layer.weight": t(4, 4),
      },
    );
    const m = a.modules[0]!;
    expect([...m.bias!]).toEqual([0, 1 / 7, 2 / 7, 3 / 7].map(Math.fround));
    expect(m.baseWeight!.shape).toEqual([4, 4]);
    expect(a.modulesToSave.size).toBe(0);
    // saved back under the same keys
    const names = parseSafetensors(savePeftAdapter(a.modules, a.config).weights).names();
    expect(names).toContain("base_model.model.encoder.layer.0.attention.query.base_layer.bias");
    expect(names).toContain("base_model.model.encoder.layer.0.attention.query.base_layer.weight");
  });

  it("shape_mismatch: a bias that is not [dOut], a base weight not in the stored layout", () => {
    const e1 = caught(() =>
      load({ bias: "all" }, { "base_model.model.encoder.layer.0.attention.query.base_layer.bias": t(3) }),
    );
    expect(e1.code).toBe("shape_mismatch");
    expect(e1.message).toMatch(/base_layer\.bias" has shape \[3\], expected \[4\] \(the bias of linear module/);
    const wide = { ...q, dOut: 6 };
    const e2 = caught(() =>
      load({}, { "base_model.model.encoder.layer.0.attention.query.base_layer.weight": t(4, 6) }, [wide]),
    );
    expect(e2.code).toBe("shape_mismatch");
    expect(e2.message).toMatch(/has shape \[4, 6\], expected \[6, 4\] \(the base weight of module/);
  });

  it("bias 'all' keeps other modules' biases as saved full tensors", () => {
    const a = load({ bias: "all" }, { "base_model.model.encoder.layer.0.output.LayerNorm.bias": t(4) });
    expect(a.modulesToSave.get("encoder.layer.0.output.LayerNorm.bias")?.role).toBe("bias");
  });
});

describe("lorakit inspect names the saved full tensors", () => {
  it("one line per saved tensor with the reason, and savedTensors in --json", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "lorakit-saved-")), "adapter");
    mkdirSync(dir);
    const a = load(
      { bias: "lora_only", modules_to_save: ["classifier"] },
      {
        "base_model.model.encoder.layer.0.attention.query.base_layer.bias": t(4),
        "base_model.model.classifier.weight": t(2, 4),
      },
    );
    const saved = savePeftAdapter(a.modules, a.config, { modulesToSave: a.modulesToSave });
    writeFileSync(join(dir, "adapter_config.json"), saved.configJson);
    writeFileSync(join(dir, "adapter_model.safetensors"), saved.weights);
    let out = "";
    const io = { stdout: (s: string) => void (out += s), stderr: () => {} };
    expect(await inspectCommand.run([dir], io as never)).toBe(0);
    expect(out).toMatch(
      /saved full tensor: encoder\.layer\.0\.attention\.query\.bias F32 \[4\] \(the module's own bias\)\n/,
    );
    expect(out).toMatch(/saved full tensor: classifier\.weight F32 \[2, 4\] \(modules_to_save\)\n/);
    out = "";
    await inspectCommand.run([dir, "--json"], io as never);
    expect(JSON.parse(out).savedTensors).toHaveLength(2);
  });
});
