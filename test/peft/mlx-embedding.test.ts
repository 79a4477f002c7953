// MLX-LM embedding LoRA (mlx-lm tuner/lora.py LoRAEmbedding): lora_a [num_embeddings, r], lora_b [r, dims];
// a looked-up row x gets scale·lora_a[x]·lora_b added, i.e. the table becomes W + scale·lora_a·lora_b (its fuse).
// Loaded as kind "embedding" (down = lora_a [vocab, r], up = lora_b [r, hidden]) and checked on the golden llama
// base against a float64 reference of that formula.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseGguf } from "../../src/io/gguf.js";
import { adapterToGguf, ggufToAdapter } from "../../src/io/gguf-lora.js";
import { loadMlxAdapter } from "../../src/io/mlx-adapter.js";
import { parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.js";
import { CausalLM } from "../../src/model/model.js";
import { caught } from "../helpers/errors.js";
import { GOLDEN, goldenFile, inputIds, readSafetensors, relError } from "../model/golden.js";

const V = 256; // the golden llama base: vocab_size 256, hidden_size 64
const H = 64;
const R = 4;
const SCALE = 2.5;
const loraA = Float32Array.from({ length: V * R }, (_, i) => 0.05 * Math.sin(i + 1)); // [vocab, r]
const loraB = Float32Array.from({ length: R * H }, (_, i) => 0.05 * Math.cos(i)); // [r, dims]
const config = { fine_tune_type: "lora", num_layers: 2, lora_parameters: { rank: R, alpha: 16, scale: SCALE } };
const weights = serializeSafetensors({
  "model.embed_tokens.lora_a": { dtype: "F32", shape: [V, R], data: loraA },
  "model.embed_tokens.lora_b": { dtype: "F32", shape: [R, H], data: loraB },
});

describe("MLX-LM embedding LoRA", () => {
  it("loads model.embed_tokens as an embedding module: down = lora_a [vocab, r], up = lora_b [r, dims]", () => {
    const [m] = loadMlxAdapter({ config, weights }).modules;
    expect(m).toMatchObject({ modulePath: "model.embed_tokens", kind: "embedding", r: R, scaling: SCALE });
    expect([m!.down.rows, m!.down.cols, m!.up.rows, m!.up.cols]).toEqual([V, R, R, H]);
    expect(m!.down.data).toEqual(loraA);
    expect(m!.up.data).toEqual(loraB);
    // and is written as llama.cpp's token_embd pair: lora_a ne [r, vocab] (= down as stored), lora_b ne [r, dims]
    const bytes = adapterToGguf(loadMlxAdapter({ config, weights }), { architecture: "llama" });
    const g = parseGguf(bytes);
    expect(g.info("token_embd.weight.lora_a").shape).toEqual([R, V]);
    expect(g.info("token_embd.weight.lora_b").shape).toEqual([R, H]);
    // read back: the same embedding module, its scale folded into up (scaling 1)
    const [back] = ggufToAdapter(bytes).modules;
    expect(back).toMatchObject({ modulePath: "model.embed_tokens", kind: "embedding", r: R, scaling: 1 });
    expect(back!.down.data).toEqual(loraA);
    expect(back!.up.data).toEqual(loraB.map((v) => SCALE * v));
  });

  it("a factor of the wrong shape is named with the embedding's dimensions", () => {
    const bad = serializeSafetensors({
      "model.embed_tokens.lora_a": { dtype: "F32", shape: [V, R], data: loraA },
      "model.embed_tokens.lora_b": { dtype: "F32", shape: [R + 1, H], data: new Float32Array((R + 1) * H) },
    });
    const e = caught(() => loadMlxAdapter({ config, weights: bad }));
    expect([e.name, e.code]).toEqual(["ShapeError", "shape_mismatch"]);
    expect(e.message).toBe(
      `loadMlxAdapter: module "model.embed_tokens" has lora_a [${V}, ${R}] and lora_b [${R + 1}, ${H}], expected [vocab, ${R}] and [${R}, dims] (lora_parameters.rank = ${R})`,
    );
  });

  it.skipIf(!GOLDEN)(
    "attached to the golden llama, gives the logits of the float64-fused table W + scale·lora_a·lora_b",
    () => {
      const configText = readFileSync(goldenFile("base", "llama", "config.json"), "utf8");
      const base = readSafetensors(goldenFile("base", "llama", "model.safetensors"));
      const W = base.toFloat32("model.embed_tokens.weight");
      expect(base.info("model.embed_tokens.weight").shape).toEqual([V, H]);
      // mlx-lm's formula in float64: row t of the table + scale·Σ_k lora_a[t, k]·lora_b[k, j], rounded once
      const fused = new Float32Array(V * H);
      for (let t = 0; t < V; t++)
        for (let j = 0; j < H; j++) {
          let s = 0;
          for (let k = 0; k < R; k++) s += loraA[t * R + k]! * loraB[k * H + j]!;
          fused[t * H + j] = W[t * H + j]! + SCALE * s;
        }
      const tensors = Object.fromEntries(
        base.names().map((n) => [
          n,
          {
            dtype: "F32" as const,
            shape: base.info(n).shape,
            data: n === "model.embed_tokens.weight" ? fused : base.toFloat32(n),
          },
        ]),
      );
      const reference = new CausalLM(configText, parseSafetensors(serializeSafetensors(tensors)));
      const model = new CausalLM(configText, base);
      const info = model.attachAdapter("mlx-embed", loadMlxAdapter({ config, weights }));
      expect(info.hasEmbedding).toBe(true);
      const ids = inputIds();
      const run = (m: CausalLM, adapter: string | null) =>
        m.forward([{ ids, cache: m.createCache(), adapter }], { logits: "all" })[0]!;
      const expected = run(reference, null);
      // float32 rounding of the added term only (one ulp of a table entry), carried through two layers
      expect(relError(run(model, "mlx-embed"), expected)).toBeLessThanOrEqual(1e-5);
      // the comparison can fail: the base alone is far from it
      expect(relError(run(model, null), expected)).toBeGreaterThan(1e-3);
    },
  );
});
