import { describe, expect, it } from "vitest";
import {
  baseIsTransposed,
  baseTensorCandidates,
  baseWeightShape,
  downFromPeft,
  downToPeft,
  PEFT_PREFIX,
  parsePeftKey,
  peftKey,
  plainModelKey,
  upFromPeft,
  upToPeft,
} from "../../src/io/peft-keys.js";

describe("PEFT keys ⇄ module paths", () => {
  it("parses on-disk factor keys with either prefix", () => {
    const k = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";
    expect(parsePeftKey(k)).toEqual({ modulePath: "transformer.h.0.attn.c_attn", role: "down" });
    expect(parsePeftKey("base_model.transformer.h.0.attn.c_attn.lora_B.weight")).toEqual({
      modulePath: "transformer.h.0.attn.c_attn",
      role: "up",
    });
    expect(parsePeftKey("model.layers.0.q_proj.lora_B.weight")).toEqual({
      modulePath: "model.layers.0.q_proj",
      role: "up",
    });
  });

  it("strips the adapter name right before the last segment or as the final suffix, never mid-key", () => {
    expect(parsePeftKey("base_model.model.a.q_proj.lora_A.default.weight")).toEqual({
      modulePath: "a.q_proj",
      role: "down",
      adapterName: "default",
    });
    expect(parsePeftKey("base_model.model.emb.lora_embedding_B.other")).toEqual({
      modulePath: "emb",
      role: "embeddingUp",
      adapterName: "other",
    });
    // a module path segment that happens to equal an adapter name stays in the path
    expect(parsePeftKey("base_model.model.default.q_proj.lora_A.weight")).toEqual({
      modulePath: "default.q_proj",
      role: "down",
    });
  });

  it("parses DoRA magnitudes and embedding factors (no .weight suffix on disk)", () => {
    expect(parsePeftKey("base_model.model.m.lora_magnitude_vector")).toEqual({ modulePath: "m", role: "magnitude" });
    expect(parsePeftKey("base_model.model.m.lora_magnitude_vector.default.weight")).toEqual({
      modulePath: "m",
      role: "magnitude",
      adapterName: "default",
    });
    expect(parsePeftKey("base_model.model.wte.lora_embedding_A")).toEqual({ modulePath: "wte", role: "embeddingDown" });
  });

  it("returns null for modules_to_save and bias keys and maps them to plain model keys", () => {
    expect(parsePeftKey("base_model.model.classifier.weight")).toBeNull();
    expect(plainModelKey("base_model.model.classifier.weight")).toBe("classifier.weight");
    expect(plainModelKey("base_model.model.classifier.modules_to_save.default.bias")).toBe("classifier.bias");
  });

  it("writes keys exactly as PEFT saves them", () => {
    expect(peftKey("transformer.h.0.attn.c_attn", "down")).toBe(
      "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
    );
    expect(peftKey("x", "up")).toBe(`${PEFT_PREFIX}x.lora_B.weight`);
    expect(peftKey("x", "magnitude")).toBe(`${PEFT_PREFIX}x.lora_magnitude_vector`);
    expect(peftKey("wte", "embeddingUp")).toBe(`${PEFT_PREFIX}wte.lora_embedding_B`);
    for (const role of ["down", "up", "magnitude", "embeddingDown", "embeddingUp"] as const)
      expect(parsePeftKey(peftKey("a.b.c", role))).toEqual({ modulePath: "a.b.c", role });
  });
});

describe("PEFT layout", () => {
  it("lora_A [r, dIn] = downᵀ and lora_B [dOut, r] = upᵀ, round trip exact", () => {
    // r = 2, dIn = 3: stored lora_A rows are down's columns
    const loraA = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const down = downFromPeft(loraA, 2, 3);
    expect(down.rows).toBe(3);
    expect(down.cols).toBe(2);
    expect(Array.from(down.data)).toEqual([1, 4, 2, 5, 3, 6]);
    expect(downToPeft(down)).toEqual(loraA);
    const loraB = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // dOut = 4, r = 2
    const up = upFromPeft(loraB, 4, 2);
    expect([up.rows, up.cols]).toEqual([2, 4]);
    expect(Array.from(up.data)).toEqual([1, 3, 5, 7, 2, 4, 6, 8]);
    expect(upToPeft(up)).toEqual(loraB);
  });

  it("base weight layout: Linear [dOut, dIn], Conv1D (fan_in_fan_out) and embeddings [dIn, dOut]", () => {
    expect(baseIsTransposed("linear", false)).toBe(true);
    expect(baseWeightShape("linear", false, 768, 2304)).toEqual([2304, 768]);
    expect(baseWeightShape("linear", true, 768, 2304)).toEqual([768, 2304]);
    expect(baseWeightShape("embedding", false, 50257, 768)).toEqual([50257, 768]);
  });

  it("base tensor candidates: the full path, then without the wrapper's first segment", () => {
    expect(baseTensorCandidates("transformer.h.0.attn.c_attn")).toEqual([
      "transformer.h.0.attn.c_attn.weight",
      "h.0.attn.c_attn.weight",
    ]);
    expect(baseTensorCandidates("lm_head")).toEqual(["lm_head.weight"]);
  });
});
