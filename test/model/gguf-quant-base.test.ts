// Quantized GGUF bases in the runtime: the golden llama and gpt2 bases converted by lorakit to Q8_0 and Q4_0 keep
// their projection weights, token embedding and output head quantized (QuantMatrix, layout "out_in") and run through
// the quantized kernels, adapters unmerged on top. Against the same file decoded to float32 at load (dequantize: true) the weights are the same
// values (f16 scale × int8 or nibble is exact in float32), so logits differ only by float32 summation order.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { randomModel, toSafetensors } from "../../scripts/random-model.mjs";
import { parseGguf } from "../../src/io/gguf.js";
import { panelIndex } from "../../src/kernels/panel.js";
import { dequantizeMatrix, type QuantMatrix } from "../../src/lora/quant.js";
import { loadGgufModel } from "../../src/model/gguf-base.js";
import type { CausalLM } from "../../src/model/model.js";
import type { ModelWeights } from "../../src/model/weights.js";
import { loadAdapter } from "../../src/node/adapter-files.js";
import { convertModelToGguf } from "../../src/node/gguf-file.js";
import { loadModelDir } from "../../src/node/model-files.js";
import { GOLDEN, goldenFile, inputIds, relError } from "./golden.js";

const ADAPTER: Record<string, string> = { llama: "peft-llama-basic", gpt2: "peft-gpt2-conv1d" };

// the model's weights (private to CausalLM; read here to check what stays quantized)
const weightsOf = (m: CausalLM) => (m as unknown as { weights: ModelWeights }).weights;

function logitsOf(model: CausalLM, adapter?: string, ids = inputIds()): Float32Array {
  const [l] = model.forward([{ ids, cache: model.createCache(), adapter }], { logits: "all" });
  return l!;
}

// Float32 rounding bound for max|Δ| / max|logit| between two summation orders of the same products: each dot
// product of length K ≤ Kmax carries a relative error ≤ K·u (u = 2⁻²⁴) in either order, so two orders differ by
// ≤ 2·K·u of Σ|x·w|; a model chains ~7 products per layer plus the head, so to first order (taking Σ|x·w| ≈ the
// logits' scale on these tiny random weights) max|Δ| / max|logit| ≤ (7L + 1)·2·Kmax·u. Measured: 0 through the
// GEMM path (the quantized GEMM dequantizes blocks while packing, then runs the float32 micro-kernel), ~1e-7
// between the GEMV (< 4 rows) and the GEMM.
function roundingBound(m: CausalLM): number {
  const c = m.config;
  const kMax = Math.max(c.hiddenSize, c.intermediateSize);
  return (7 * c.numLayers + 1) * 2 * kMax * 2 ** -24;
}

describe.skipIf(!GOLDEN)("quantized GGUF bases run unmerged through the quantized kernels", () => {
  const tmp = mkdtempSync(join(tmpdir(), "lorakit-gguf-quant-"));
  const gguf = (kind: string, dtype: string) => join(tmp, `${kind}-${dtype}.gguf`);
  beforeAll(async () => {
    for (const kind of ["llama", "gpt2"])
      for (const dtype of ["F32", "Q8_0", "Q4_0"] as const)
        await convertModelToGguf(goldenFile("base", kind), gguf(kind, dtype), { dtype });
  });

  for (const kind of ["llama", "gpt2"])
    for (const dtype of ["Q8_0", "Q4_0"]) {
      it(`${kind} ${dtype}: logits equal the dequantize-at-load path within float32 rounding, with and without an adapter`, async () => {
        const file = parseGguf(readFileSync(gguf(kind, dtype)));
        const q = await loadGgufModel(file);
        const f = await loadGgufModel(file, { dequantize: true });
        // the file read on demand keeps them quantized too, and reads the same blocks
        const { model: onDemand } = await loadModelDir(gguf(kind, dtype));
        const f32 = await loadGgufModel(parseGguf(readFileSync(gguf(kind, "F32"))));
        const bound = roundingBound(q);
        expect(q.parameterCount).toBe(f.parameterCount);
        const peft = await loadAdapter(goldenFile(ADAPTER[kind]!, "adapter"));
        for (const m of [q, f, onDemand]) m.attachAdapter("peft", peft);

        const base = relError(logitsOf(q), logitsOf(f));
        const withAdapter = relError(logitsOf(q, "peft"), logitsOf(f, "peft"));
        console.log(
          `${kind} ${dtype}: quantized kernels vs dequantize-at-load logits ${base.toExponential(2)}, with adapter ${withAdapter.toExponential(2)} (bound ${bound.toExponential(2)})`,
        );
        expect(base).toBeLessThan(bound);
        expect(withAdapter).toBeLessThan(bound);
        // one token (decode): the quantized GEMV reads the blocks directly
        const one = [inputIds()[0]!];
        expect(relError(logitsOf(q, "peft", one), logitsOf(f, "peft", one))).toBeLessThan(bound);
        expect(relError(logitsOf(onDemand, "peft"), logitsOf(q, "peft"))).toBe(0);
        // the bound is far below what quantization itself changes and what the adapter changes
        expect(relError(logitsOf(q), logitsOf(f32))).toBeGreaterThan(10 * bound);
        expect(relError(logitsOf(q, "peft"), logitsOf(q))).toBeGreaterThan(10 * bound);

        // the projections are quantized: merging is refused (and leaves the model untouched); the float32 copy merges
        const before = logitsOf(q, "peft");
        expect(() => q.mergeAdapter("peft")).toThrow(
          expect.objectContaining({ code: "adapter_state", message: expect.stringContaining("quantized") }),
        );
        expect(q.mergedAdapter).toBeNull();
        expect(relError(logitsOf(q, "peft"), before)).toBe(0);
        f.mergeAdapter("peft");
        expect(f.mergedAdapter).toBe("peft");
        if (kind === "llama") {
          // DoRA needs a float base's column norms: refused at attach, the model keeps only "peft"
          const dora = await loadAdapter(goldenFile("peft-llama-dora", "adapter"));
          expect(() => q.attachAdapter("dora", dora)).toThrow(
            expect.objectContaining({ code: "adapter_state", message: expect.stringContaining("DoRA") }),
          );
          expect(q.adapterNames).toEqual(["peft"]);
          expect(relError(logitsOf(q, "peft"), before)).toBe(0);
        }
      });
    }

  for (const kind of ["llama", "gpt2"])
    for (const dtype of ["Q8_0", "Q4_0"] as const)
      it(`${kind} ${dtype}: token_embd and output stay quantized, holding the values the float32 load decodes`, async () => {
        const file = parseGguf(readFileSync(gguf(kind, dtype)));
        const q = weightsOf(await loadGgufModel(file));
        const f = weightsOf(await loadGgufModel(file, { dequantize: true }));
        const { vocabSize: V, hiddenSize: H } = (await loadGgufModel(file)).config;
        // the head: [vocab, hidden] blocks ("out_in"), the values of the float32 head (packed as [hidden, vocab])
        expect(q.lmHead).toMatchObject({ type: dtype.toLowerCase(), rows: V, cols: H, layout: "out_in" });
        expect(f.lmHead).toBeInstanceOf(Float32Array);
        const head = dequantizeMatrix(q.lmHead as QuantMatrix).data;
        let same = 0;
        for (let t = 0; t < V; t++)
          for (let p = 0; p < H; p++) if (head[t * H + p] === (f.lmHead as Float32Array)[panelIndex(H, p, t)]) same++;
        expect(same).toBe(V * H);
        // untied (both goldens have an output tensor): the embedding table is quantized on its own
        expect(q.embed).toMatchObject({ type: dtype.toLowerCase(), rows: V, cols: H });
        expect(dequantizeMatrix(q.embed as QuantMatrix).data).toEqual(f.embed);
      });

  it("a block whose float16 scale is Infinity or NaN (a corrupt file) is refused at load, both read paths", async () => {
    for (const [dtype, scale] of [
      ["Q8_0", 0x7c00],
      ["Q4_0", 0x7e00],
    ] as const) {
      const bytes = new Uint8Array(readFileSync(gguf("llama", dtype)));
      const info = parseGguf(bytes).info("blk.1.ffn_down.weight");
      const at = parseGguf(bytes).dataStart + info.offset + 3 * (dtype === "Q8_0" ? 34 : 18); // block 3's scale
      bytes[at] = scale & 0xff;
      bytes[at + 1] = scale >> 8;
      const message = new RegExp(
        `^loadCausalLM: quantized tensor "blk.1.ffn_down.weight" \\(${dtype.toLowerCase()}\\) has block 3 with scale ${scale === 0x7c00 ? "Infinity" : "NaN"} \\(float16 0x${scale.toString(16)}\\), expected finite scales`,
      );
      await expect(loadGgufModel(parseGguf(bytes))).rejects.toMatchObject({ code: "non_finite", message });
      const path = join(tmp, `corrupt-${dtype}.gguf`);
      writeFileSync(path, bytes);
      await expect(loadModelDir(path)).rejects.toMatchObject({ code: "non_finite", message });
    }
  });

  for (const kind of ["llama", "gpt2"])
    it(`${kind} Q4_0: mixed-adapter batch rows equal solo runs (within float32 rounding; bit-equal dequantized)`, async () => {
      const file = parseGguf(readFileSync(gguf(kind, "Q4_0")));
      const peft = await loadAdapter(goldenFile(ADAPTER[kind]!, "adapter"));
      const ids = inputIds();
      const rows = [
        { ids, adapter: "peft" },
        { ids: ids.slice(0, 3), adapter: null },
        { ids: ids.slice(1), adapter: "peft" },
      ];
      for (const dequantize of [false, true]) {
        const q = await loadGgufModel(file, { dequantize });
        q.attachAdapter("peft", peft);
        const bound = roundingBound(q);
        const batch = q.forward(
          rows.map((r) => ({ ids: r.ids, cache: q.createCache(), adapter: r.adapter })),
          { logits: "all" },
        );
        rows.forEach((r, i) => {
          const err = relError(batch[i]!, logitsOf(q, r.adapter ?? undefined, r.ids));
          // quantized: a solo row of < 4 tokens takes the GEMV, the batch the GEMM (different summation orders)
          if (dequantize) expect(err).toBe(0);
          else expect(err).toBeLessThan(bound);
        });
        // and the adapter row differs from the plain one by far more than that
        expect(relError(batch[0]!, logitsOf(q, undefined, ids))).toBeGreaterThan(10 * bound);
      }
    });
});

describe("a quantized GGUF base with tied embeddings", () => {
  it("keeps token_embd quantized as both the embedding and the head: logits as the float32 load's", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "lorakit-gguf-tied-"));
    const rm = randomModel({
      type: "llama",
      hidden: 64,
      layers: 2,
      heads: 4,
      vocab: 96,
      positions: 32,
      tie: true,
      seed: 9,
    });
    writeFileSync(join(tmp, "config.json"), JSON.stringify(rm.config));
    writeFileSync(join(tmp, "model.safetensors"), toSafetensors(rm.tensors));
    for (const dtype of ["Q8_0", "Q4_0"] as const) {
      const out = join(tmp, `tied-${dtype}.gguf`);
      await convertModelToGguf(tmp, out, { dtype });
      const file = parseGguf(readFileSync(out));
      expect(file.names()).not.toContain("output.weight");
      const q = await loadGgufModel(file);
      const f = await loadGgufModel(file, { dequantize: true });
      expect(q.config.tieWordEmbeddings).toBe(true);
      expect(weightsOf(q).embed).toBeNull();
      expect(weightsOf(q).lmHead).toMatchObject({ type: dtype.toLowerCase(), layout: "out_in" });
      // every position's logits (the embedding rows come out of the quantized head's blocks)
      const ids = Array.from({ length: 12 }, (_, i) => (i * 37 + 5) % q.config.vocabSize);
      const bound = roundingBound(q);
      expect(relError(logitsOf(q, undefined, ids), logitsOf(f, undefined, ids))).toBeLessThan(bound);
      expect(relError(logitsOf(q, undefined, [ids[3]!]), logitsOf(f, undefined, [ids[3]!]))).toBeLessThan(bound);
    }
  });
});
