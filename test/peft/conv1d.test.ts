// Conv1D modules in an adapter whose config says fan_in_fan_out false (PEFT switches such modules to
// fan_in_fan_out itself): the merge reads the layout from the base's config.json or from non-square shapes, and
// refuses a square module whose layout cannot be known.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inspectCommand } from "../../cli/inspect.js";
import { LoraError } from "../../src/errors.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { loraLinearForModule } from "../../src/io/peft-layer.js";
import { savePeftAdapter } from "../../src/io/peft-save.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { architectureFromConfig, isConv1dModuleName } from "../../src/node/conv1d.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";
import { adapterBytes, GPT2_CONFIG, gpt2BaseBytes, gpt2Modules } from "./synthetic.js";

const LAYERS = 2;
const D = 8;
const R = 4;

function folder(config?: object): string {
  const dir = mkdtempSync(join(tmpdir(), "lorakit-conv1d-"));
  writeFileSync(join(dir, "model.safetensors"), gpt2BaseBytes(LAYERS, D));
  if (config) writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

const weights = adapterBytes(gpt2Modules(LAYERS, D, R));
const fif = loadPeftAdapter({ config: GPT2_CONFIG, weights });
const noFif = loadPeftAdapter({ config: { ...GPT2_CONFIG, fan_in_fan_out: false }, weights });

async function merged(dir: string, adapter: typeof fif, name: string) {
  const out = join(dir, name);
  const summary = await mergeAdapterIntoModel(join(dir, "model.safetensors"), adapter, { out });
  return { summary, bytes: readFileSync(out) };
}

describe("Conv1D with fan_in_fan_out false", () => {
  it("a GPT-2 config.json: merged exactly as with fan_in_fan_out true, with a warning", async () => {
    const dir = folder({ model_type: "gpt2", architectures: ["GPT2LMHeadModel"] });
    const want = await merged(dir, fif, "a.safetensors");
    const got = await merged(dir, noFif, "b.safetensors");
    expect(Buffer.compare(got.bytes, want.bytes)).toBe(0);
    expect(want.summary.warnings).toEqual([]);
    expect(got.summary.warnings).toHaveLength(1);
    expect(got.summary.warnings[0]).toMatch(
      /6 module\(s\) have fan_in_fan_out false but are Conv1D layers \(stored \[dIn, dOut\]\); merged as fan_in_fan_out true, as PEFT does: transformer\.h\.0\.attn\.c_attn, .* and 3 more/,
    );
  });

  it("no config.json: non-square modules are settled by their shapes, a square one is refused (ambiguous_layout)", async () => {
    const dir = folder();
    const out = join(dir, "never.safetensors");
    let err: unknown;
    try {
      await mergeAdapterIntoModel(join(dir, "model.safetensors"), noFif, { out });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoraError);
    expect((err as LoraError).code).toBe("ambiguous_layout");
    expect((err as LoraError).message).toMatch(
      /2 square module\(s\) have fan_in_fan_out false in a model that looks like a Conv1D one \(GPT-2 kin\), so their stored layout .* cannot be known: "transformer\.h\.0\.attn\.c_proj" \("h\.0\.attn\.c_proj\.weight" \[8, 8\]\)/,
    );
    // only the non-square modules: merged as Conv1D without a config
    const nonSquare = loadPeftAdapter({
      config: { ...GPT2_CONFIG, fan_in_fan_out: false },
      weights: adapterBytes(gpt2Modules(LAYERS, D, R).filter((m) => m.dIn !== m.dOut)),
    });
    const fifNonSquare = loadPeftAdapter({
      config: GPT2_CONFIG,
      weights: adapterBytes(gpt2Modules(LAYERS, D, R).filter((m) => m.dIn !== m.dOut)),
    });
    const a = await merged(dir, nonSquare, "c.safetensors");
    const b = await merged(dir, fifNonSquare, "d.safetensors");
    expect(Buffer.compare(a.bytes, b.bytes)).toBe(0);
    expect(parseSafetensors(a.bytes).names().length).toBeGreaterThan(0);
  });

  it("a config.json of a Linear architecture: square modules are nn.Linear", async () => {
    const dir = folder({ model_type: "llama" });
    const square = loadPeftAdapter({
      config: { ...GPT2_CONFIG, fan_in_fan_out: false },
      weights: adapterBytes(gpt2Modules(LAYERS, D, R).filter((m) => m.dIn === m.dOut)),
    });
    const { summary } = await merged(dir, square, "e.safetensors");
    expect(summary.merged.size).toBe(LAYERS);
    expect(summary.warnings).toEqual([]);
  });

  it("architectureFromConfig and isConv1dModuleName", () => {
    expect(architectureFromConfig({ model_type: "gpt2" })).toEqual({ known: true, conv1d: true, modelType: "gpt2" });
    expect(architectureFromConfig({ architectures: ["OpenAIGPTLMHeadModel"] })).toMatchObject({ conv1d: true });
    expect(architectureFromConfig({ model_type: "qwen2" })).toMatchObject({ known: true, conv1d: false });
    expect(architectureFromConfig(null)).toEqual({ known: false, conv1d: false });
    expect(isConv1dModuleName("transformer.h.0.mlp.c_fc")).toBe(true);
    expect(isConv1dModuleName("model.layers.0.self_attn.q_proj")).toBe(false);
  });
});

describe("loraLinearForModule on a Conv1D weight with fan_in_fan_out false", () => {
  it("a stored shape [dIn, dOut] ≠ [dOut, dIn] makes it read as Conv1D: same output as with fan_in_fan_out true", () => {
    const m = fif.modules.find((x) => x.modulePath === "transformer.h.0.attn.c_attn")!;
    const mNo = noFif.modules.find((x) => x.modulePath === "transformer.h.0.attn.c_attn")!;
    const base = parseSafetensors(gpt2BaseBytes(LAYERS, D));
    const weight = base.toFloat32("h.0.attn.c_attn.weight");
    const x = { data: Float32Array.from({ length: 2 * D }, (_, i) => Math.sin(i)), rows: 2, cols: D };
    const want = loraLinearForModule(m, { weight }).forward(x).data;
    const got = loraLinearForModule(mNo, { weight, shape: base.info("h.0.attn.c_attn.weight").shape }).forward(x).data;
    expect([...got]).toEqual([...want]);
    // without the shape it cannot know, and reads the weight as nn.Linear: a different result
    const blind = loraLinearForModule(mNo, { weight }).forward(x).data;
    expect([...blind]).not.toEqual([...want]);
  });
});

describe("lorakit inspect --base on Conv1D modules with fan_in_fan_out false", () => {
  it("non-square ones are reported as Conv1D (merged as fan_in_fan_out), not as a mismatch", async () => {
    const dir = folder();
    const adapterDir = join(dir, "adapter");
    const saved = savePeftAdapter(
      loadPeftAdapter({
        config: { ...GPT2_CONFIG, fan_in_fan_out: false },
        weights: adapterBytes(gpt2Modules(1, D, R).filter((m) => m.dIn !== m.dOut)),
      }).modules,
      { ...GPT2_CONFIG, fan_in_fan_out: false },
    );
    mkdirSync(adapterDir);
    writeFileSync(join(adapterDir, "adapter_config.json"), saved.configJson);
    writeFileSync(join(adapterDir, "adapter_model.safetensors"), saved.weights);
    let out = "";
    const io = { stdout: (s: string) => void (out += s), stderr: () => {}, isTTY: false };
    expect(await inspectCommand.run([adapterDir, "--base", join(dir, "model.safetensors"), "--json"], io)).toBe(0);
    const doc = JSON.parse(out) as { modules: { baseStatus: string }[] };
    expect(doc.modules.map((m) => m.baseStatus)).toEqual([
      "ok (Conv1D: merged as fan_in_fan_out)",
      "ok (Conv1D: merged as fan_in_fan_out)",
    ]);
  });
});
