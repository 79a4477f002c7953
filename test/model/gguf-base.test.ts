// GGUF base models in the runtime: the golden llama and gpt2 bases converted by lorakit (convertModelToGguf), loaded
// from the GGUF file, give the logits of the Hugging Face folder — bit for bit in F32, with and without an adapter
// (attached from PEFT and from its GGUF conversion); Q8_0 / Q4_0 within measured bounds; what it cannot run is refused.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parseGguf, serializeGguf } from "../../src/io/gguf.js";
import { adapterToGguf } from "../../src/io/gguf-lora.js";
import { ggmlTypeByName } from "../../src/io/gguf-types.js";
import { ggufModelConfig, ggufTensorFile, loadGgufModel } from "../../src/model/gguf-base.js";
import type { CausalLM } from "../../src/model/model.js";
import { loadAdapter } from "../../src/node/adapter-files.js";
import { convertModelToGguf } from "../../src/node/gguf-file.js";
import { attachAdapterDir, loadModelDir } from "../../src/node/model-files.js";
import { GOLDEN, goldenFile, inputIds, readSafetensors, relError } from "./golden.js";

const BIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const ADAPTER: Record<string, string> = { llama: "peft-llama-basic", gpt2: "peft-gpt2-conv1d" };
const ARCH_CLASS: Record<string, string> = { llama: "LlamaForCausalLM", gpt2: "GPT2LMHeadModel" };

function logitsOf(model: CausalLM, adapter?: string): Float32Array {
  const [l] = model.forward([{ ids: inputIds(), cache: model.createCache(), adapter }], { logits: "all" });
  return l!;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.skipIf(!GOLDEN)("GGUF base models in the runtime (peft-golden bases)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "lorakit-gguf-model-"));
  const gguf = (kind: string, dtype: string) => join(tmp, `${kind}-${dtype}.gguf`);
  beforeAll(async () => {
    for (const kind of ["llama", "gpt2"])
      for (const dtype of ["F32", "Q8_0", "Q4_0"] as const)
        await convertModelToGguf(goldenFile("base", kind), gguf(kind, dtype), { dtype });
  });

  for (const kind of ["llama", "gpt2"]) {
    it(`${kind}: F32 GGUF logits equal the Hugging Face folder's, with and without an adapter (PEFT and GGUF LoRA)`, async () => {
      const { model: hf } = await loadModelDir(goldenFile("base", kind), { tokenizer: false });
      const { model: g, tokenizer } = await loadModelDir(gguf(kind, "F32"));
      expect(tokenizer).toBeNull();
      expect(g.config).toMatchObject({
        family: hf.config.family,
        vocabSize: hf.config.vocabSize,
        numHeads: hf.config.numHeads,
        numKvHeads: hf.config.numKvHeads,
        headDim: hf.config.headDim,
        tieWordEmbeddings: hf.config.tieWordEmbeddings,
        maxPositions: hf.config.maxPositions,
      });
      expect(g.config.normEps).toBe(hf.config.normEps); // the float32 eps read back as config.json's decimal
      expect(g.parameterCount).toBe(hf.parameterCount);
      expect(maxAbsDiff(logitsOf(g), logitsOf(hf))).toBe(0);

      const v = ADAPTER[kind]!;
      const peft = await loadAdapter(goldenFile(v, "adapter"));
      hf.attachAdapter("peft", peft);
      g.attachAdapter("peft", peft);
      const want = logitsOf(hf, "peft");
      expect(maxAbsDiff(want, logitsOf(hf))).toBeGreaterThan(1e-3); // the adapter changes the logits
      expect(maxAbsDiff(logitsOf(g, "peft"), want)).toBe(0);
      // and PEFT's own logits for the variant (as test/model/peft-golden.test.ts checks the folder)
      expect(relError(logitsOf(g, "peft"), peftLogits(v))).toBeLessThan(1e-4);

      const cfg = g.config;
      const file = join(tmp, `${v}.gguf`);
      writeFileSync(
        file,
        adapterToGguf(peft, {
          architecture: ARCH_CLASS[kind]!,
          heads: { nHead: cfg.numHeads, nHeadKv: cfg.numKvHeads },
        }),
      );
      const info = await attachAdapterDir(g, "gguf", file);
      expect(info.format).toBe("gguf");
      // folding PEFT's scaling into lora_b rounds once in float32: within 1e-6 of the logits' magnitude
      expect(relError(logitsOf(g, "gguf"), want)).toBeLessThan(1e-6);
      expect(g.adapterNames).toEqual(["peft", "gguf"]);
    });

    it(`${kind}: Q8_0 and Q4_0 GGUF logits stay within measured bounds of F32`, async () => {
      const f32 = logitsOf(await loadModelDir(gguf(kind, "F32")).then((d) => d.model));
      const q8 = relError(logitsOf((await loadModelDir(gguf(kind, "Q8_0"))).model), f32);
      const q4 = relError(logitsOf((await loadModelDir(gguf(kind, "Q4_0"))).model), f32);
      // measured (docs/model.md): llama Q8_0 8.3e-3, Q4_0 0.16; gpt2 Q8_0 5.7e-3, Q4_0 0.091 on these tiny random
      // weights (Q4_0 keeps 4 bits per weight); the bounds leave ~3x headroom, a misplaced tensor gives order 1
      console.log(
        `${kind}: GGUF Q8_0 vs F32 logits ${q8.toExponential(2)}, Q4_0 ${q4.toExponential(2)} (max |Δ| / max |logit|)`,
      );
      expect(q8).toBeGreaterThan(0);
      expect(q8).toBeLessThan(2e-2);
      expect(q4).toBeGreaterThan(q8);
      expect(q4).toBeLessThan(0.5);
    });
  }

  it("parsed bytes (the browser path) load the same model as the file read on demand", async () => {
    const bytes = readFileSync(gguf("llama", "F32"));
    const fromBytes = await loadGgufModel(parseGguf(bytes));
    const { model } = await loadModelDir(gguf("llama", "F32"));
    expect(maxAbsDiff(logitsOf(fromBytes), logitsOf(model))).toBe(0);
  });

  it("refuses by name an architecture, a tensor type and a rope scaling it does not run", async () => {
    const g = parseGguf(readFileSync(gguf("llama", "F32")));
    const withMeta = (key: string, value: unknown) => {
      const metadata = new Map(g.metadata);
      metadata.set(key, { type: "string", value } as never);
      return { ...g, metadata, names: g.names, info: g.info, toFloat32: g.toFloat32 };
    };
    expect(() => ggufModelConfig(withMeta("general.architecture", "gemma"))).toThrow(
      expect.objectContaining({ code: "unsupported_model", message: expect.stringContaining('"gemma"') }),
    );
    expect(() => ggufModelConfig(withMeta("llama.rope.scaling.type", "yarn"))).toThrow(
      expect.objectContaining({ code: "unsupported_model", message: expect.stringContaining('"yarn"') }),
    );
    expect(() => ggufModelConfig(withMeta("general.type", "adapter"))).toThrow(
      expect.objectContaining({ code: "unsupported_model", message: expect.stringContaining("general.type") }),
    );
    const q4k = {
      ...g,
      names: g.names,
      toFloat32: g.toFloat32,
      info: (n: string) => (n === "blk.0.ffn_up.weight" ? { ...g.info(n), type: ggmlTypeByName("Q4_K")! } : g.info(n)),
    };
    expect(() => ggufTensorFile(q4k, ggufModelConfig(g))).toThrow(
      expect.objectContaining({
        code: "unsupported_dtype",
        message: expect.stringMatching(/"blk\.0\.ffn_up\.weight" is Q4_K/),
      }),
    );
    // a llama3-style rope_freqs tensor
    const file = join(tmp, "rope-freqs.gguf");
    const tensors = g
      .names()
      .map((n) => ({ name: n, shape: [...g.info(n).shape], type: "F32" as const, data: g.bytes(n) }));
    tensors.push({ name: "rope_freqs.weight", shape: [4], type: "F32", data: new Uint8Array(16) });
    writeFileSync(file, serializeGguf(Object.fromEntries(g.metadata), tensors));
    await expect(loadModelDir(file)).rejects.toMatchObject({
      code: "unsupported_model",
      message: expect.stringContaining("rope_freqs.weight"),
    });
  });

  it("lorakit generate --model FILE.gguf generates the folder's tokens", () => {
    const run = (model: string) =>
      spawnSync(process.execPath, [BIN, "generate", "--model", model, "--ids", "1,2,3", "--max-tokens", "5"], {
        encoding: "utf8",
      });
    const a = run(gguf("gpt2", "F32"));
    const b = run(goldenFile("base", "gpt2"));
    expect(a.stderr).toBe("");
    expect(a.status).toBe(0);
    expect(a.stdout.trim().split(/\s+/)).toHaveLength(5);
    expect(a.stdout).toBe(b.stdout);
  });
});

function peftLogits(variant: string): Float32Array {
  return readSafetensors(goldenFile(variant, "io.safetensors")).toFloat32("logits");
}
