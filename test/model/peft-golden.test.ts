// The runtime against Hugging Face PEFT itself: for every llama and gpt2 variant of ../shared/fixtures/peft-golden,
// the logits of input_ids.json with the adapter attached equal PEFT's `logits` (io.safetensors).

import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CausalLM } from "../../src/model/model.js";
import { loadAdapter } from "../../src/node/adapter-files.js";
import { GOLDEN, goldenFile, inputIds, readSafetensors, relError } from "./golden.js";

const variants = GOLDEN ? readdirSync(GOLDEN).filter((v) => /^(peft|lk)-(llama|gpt2)/.test(v)) : [];
// Variants the adapter loaders cannot read yet (feature being added to src/io/peft-*.ts on another branch).
const LOADER_GAPS: Record<string, string> = {
  "peft-llama-embed-mts":
    "loadPeftAdapter refuses the embedding base weight PEFT saves with save_embedding_layers (model.embed_tokens.base_layer.weight)",
};

function baseOf(variant: string): string {
  if (variant.includes("gpt2")) return "gpt2";
  return variant.includes("bf16") && variant.startsWith("peft") ? "llama-bf16" : "llama";
}

function loadBase(kind: string): CausalLM {
  return new CausalLM(
    readFileSync(goldenFile("base", kind, "config.json"), "utf8"),
    readSafetensors(goldenFile("base", kind, "model.safetensors")),
  );
}

describe.skipIf(!GOLDEN)("CausalLM against PEFT's logits (peft-golden)", () => {
  const bases = new Map<string, CausalLM>();
  const base = (k: string) => {
    if (!bases.has(k)) bases.set(k, loadBase(k));
    return bases.get(k)!;
  };

  it("lists the variants it checks", () => {
    expect(variants.length).toBeGreaterThanOrEqual(14);
  });

  for (const v of variants) {
    const gap = LOADER_GAPS[v];
    // an expected gap is skipped (with its reason) while the loader refuses the file, and checked once it reads it
    it(`${v}: logits equal PEFT's${gap ? ` (expected gap while ${gap})` : ""}`, async (ctx) => {
      const model = base(baseOf(v));
      let adapter: Awaited<ReturnType<typeof loadAdapter>>;
      try {
        adapter = await loadAdapter(goldenFile(v, "adapter"));
      } catch (e) {
        if (gap && (e as { code?: string }).code === "unexpected_tensor") return ctx.skip(`expected gap: ${gap}`);
        throw e;
      }
      model.attachAdapter(v, adapter);
      try {
        const cache = model.createCache();
        const [logits] = model.forward([{ ids: inputIds(), cache, adapter: v }], { logits: "all" });
        const expected = readSafetensors(goldenFile(v, "io.safetensors")).toFloat32("logits");
        const err = relError(logits!, expected);
        // 1e-4 relative; the bfloat16 base: PEFT computed in bfloat16 (8 significant bits), we in float32
        const bf16Base = baseOf(v) === "llama-bf16";
        const tol = bf16Base ? 3e-2 : 1e-4;
        expect(err, `${v}: max |Δ| / max |logit| = ${err}`).toBeLessThanOrEqual(tol);
        // the adapter matters: the base model alone is far from PEFT's logits
        const [plain] = model.forward([{ ids: inputIds(), cache: model.createCache() }], { logits: "all" });
        expect(relError(plain!, expected)).toBeGreaterThan(bf16Base ? 0.1 : 1e-3);
        if (process.env.LORAKIT_REPORT) console.log(`${v}: rel err ${err.toExponential(2)}`);
      } finally {
        model.detachAdapter(v);
      }
    });
  }
});
