// Merging adapters that carry full tensors: save_embedding_layers (the embedding's and lm_head's base layers, here
// with added tokens, so the merged tensors take the saved shape), a module's own bias and bias "all" tensors.
// Expected values are computed here in float64 from the same numbers.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";

const V = 6; // base vocabulary
const V2 = 8; // after two added tokens
const D = 4;
const R = 2;

function arr(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed * 13.1 + i * 0.7) / 2));
}
const f32 = (shape: number[], data: Float32Array): TensorToWrite => ({ dtype: "F32", shape, data });

describe("merging saved base layers and biases", () => {
  const dir = mkdtempSync(join(tmpdir(), "lorakit-merge-saved-"));
  const base = join(dir, "model.safetensors");
  writeFileSync(
    base,
    serializeSafetensors({
      "model.embed_tokens.weight": f32([V, D], arr(V * D, 1)),
      "model.layers.0.dense.weight": f32([D, D], arr(D * D, 2)),
      "model.layers.0.dense.bias": f32([D], arr(D, 3)),
      "model.norm.bias": f32([D], arr(D, 4)),
      "lm_head.weight": f32([V, D], arr(V * D, 5)),
    }),
  );
  const P = "base_model.model.";
  const t = {
    embA: arr(R * V2, 6), // lora_embedding_A [r, V2]
    embB: arr(D * R, 7), // lora_embedding_B [D, r]
    embBase: arr(V2 * D, 8),
    headA: arr(R * D, 9), // lora_A [r, D]
    headB: arr(V2 * R, 10), // lora_B [V2, r]
    headBase: arr(V2 * D, 11),
    bias: arr(D, 12),
    norm: arr(D, 13),
  };
  const weights = serializeSafetensors({
    [`${P}model.embed_tokens.lora_embedding_A`]: f32([R, V2], t.embA),
    [`${P}model.embed_tokens.lora_embedding_B`]: f32([D, R], t.embB),
    [`${P}model.embed_tokens.base_layer.weight`]: f32([V2, D], t.embBase),
    [`${P}lm_head.lora_A.weight`]: f32([R, D], t.headA),
    [`${P}lm_head.lora_B.weight`]: f32([V2, R], t.headB),
    [`${P}lm_head.base_layer.weight`]: f32([V2, D], t.headBase),
    [`${P}model.layers.0.dense.lora_A.weight`]: f32([R, D], arr(R * D, 14)),
    [`${P}model.layers.0.dense.lora_B.weight`]: f32([D, R], arr(D * R, 15)),
    [`${P}model.layers.0.dense.base_layer.bias`]: f32([D], t.bias),
    [`${P}model.norm.bias`]: f32([D], t.norm),
  });
  const adapter = loadPeftAdapter({ config: { peft_type: "LORA", r: R, lora_alpha: 4, bias: "all" }, weights });

  it("embedding and lm_head: saved base layer (added tokens) + ΔW, output shape [V2, D]; biases replaced", async () => {
    const out = join(dir, "merged.safetensors");
    const summary = await mergeAdapterIntoModel(base, adapter, { out });
    expect(summary.merged.size).toBe(3);
    const m = parseSafetensors(readFileSync(out));
    expect(m.info("model.embed_tokens.weight").shape).toEqual([V2, D]);
    expect(m.info("lm_head.weight").shape).toEqual([V2, D]);
    const s = 4 / R;
    // embedding: W [V2, D] += s·downᵀ... down = Aᵀ [V2, r], up = Bᵀ [r, D]: ΔW[v][d] = s·Σ_k A[k][v]·B[d][k]
    const emb = m.toFloat32("model.embed_tokens.weight");
    const head = m.toFloat32("lm_head.weight");
    let worst = 0;
    for (let v = 0; v < V2; v++)
      for (let d = 0; d < D; d++) {
        let e = 0;
        let h = 0;
        for (let k = 0; k < R; k++) {
          e += t.embA[k * V2 + v]! * t.embB[d * R + k]!;
          h += t.headB[v * R + k]! * t.headA[k * D + d]!; // Linear: Wᵀ [V2, D] += s·B·A
        }
        worst = Math.max(worst, Math.abs(emb[v * D + d]! - (t.embBase[v * D + d]! + s * e)));
        worst = Math.max(worst, Math.abs(head[v * D + d]! - (t.headBase[v * D + d]! + s * h)));
      }
    expect(worst).toBeLessThan(1e-6);
    expect([...m.toFloat32("model.layers.0.dense.bias")]).toEqual([...t.bias]);
    expect([...m.toFloat32("model.norm.bias")]).toEqual([...t.norm]);
    expect(summary.replaced.sort()).toEqual(["model.layers.0.dense.bias", "model.norm.bias"]);
  });
});
