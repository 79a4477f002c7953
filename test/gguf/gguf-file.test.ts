// lorakit/node GGUF files: openGguf grows its header read past the first MiB, writeGgufFile streams and leaves
// nothing behind on failure, convertModelToGguf writes a base model (sharded input too) that @huggingface/gguf reads
// and whose tensors decode to the checkpoint's values (transposed / permuted as llama.cpp expects).

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { GgufError } from "../../src/errors.js";
import { parseGguf } from "../../src/io/gguf.js";
import { permuteHeadRows } from "../../src/io/gguf-names.js";
import { parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.js";
import { convertModelToGguf, openGguf, writeGgufFile } from "../../src/node/gguf-file.js";
import { crossCheck, GGUF_FIXTURES, GOLDEN, tmpFile } from "./helpers.js";
import { gpt2ModelWithTokenizer, gpt2TokenizerJson } from "./vocab-fixture.js";

describe("openGguf", () => {
  it("reads a 1.7 MB vocabulary header (more than the first read) and equals parseGguf", async () => {
    const path = join(GGUF_FIXTURES, "ggml-vocab-gpt-2.gguf");
    const f = await openGguf(path);
    try {
      const p = parseGguf(new Uint8Array(readFileSync(path)));
      expect(f.metadata).toEqual(p.metadata);
      expect(f.dataStart).toBe(p.dataStart);
    } finally {
      await f.close();
    }
  });
  it("reads tensors on demand and reports a truncated file", async () => {
    const path = tmpFile("stream.gguf");
    const x = Float32Array.from({ length: 64 }, (_, i) => i / 7);
    await writeGgufFile(path, { "general.architecture": { type: "string", value: "llama" } }, [
      { name: "a", shape: [64], type: "F32", data: () => new Uint8Array(x.buffer) },
      { name: "b", shape: [32, 2], type: "Q8_0", data: async () => new Uint8Array(68) },
    ]);
    const f = await openGguf(path);
    expect(await f.readFloat32("a")).toEqual(x);
    expect(await f.readFloat32("b")).toEqual(new Float32Array(64));
    await f.close();
    const cut = tmpFile("cut.gguf");
    writeFileSync(cut, readFileSync(path).subarray(0, 300));
    await expect(openGguf(cut)).rejects.toThrow(expect.objectContaining({ code: "truncated_file" }));
  });
  it("writeGgufFile: a tensor of the wrong size fails and leaves no file", async () => {
    const path = tmpFile("bad.gguf");
    await expect(
      writeGgufFile(path, {}, [{ name: "a", shape: [4], type: "F32", data: () => new Uint8Array(8) }]),
    ).rejects.toThrow(GgufError);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dirname(path)).filter((n) => n.includes("bad.gguf"))).toEqual([]);
  });
});

describe.skipIf(GOLDEN === null)("convertModelToGguf on the golden bases", () => {
  it("llama: hyperparameters, byte vocabulary, Q/K permutation, cross-checked", async () => {
    const dir = join(GOLDEN!, "base", "llama");
    const out = tmpFile("llama-f32.gguf");
    const s = await convertModelToGguf(dir, out, { dtype: "F32" });
    expect(s.architecture).toBe("llama");
    const bytes = new Uint8Array(readFileSync(out));
    const g = parseGguf(bytes);
    await crossCheck(bytes, g);
    const md = (k: string) => g.metadata.get(k)?.value;
    expect([md("llama.block_count"), md("llama.embedding_length"), md("llama.attention.head_count")]).toEqual([
      2, 64, 4,
    ]);
    expect(md("llama.rope.dimension_count")).toBe(16);
    expect((md("tokenizer.ggml.tokens") as string[]).slice(0, 2)).toEqual(["<0x00>", "<0x01>"]);
    const st = parseSafetensors(new Uint8Array(readFileSync(join(dir, "model.safetensors"))));
    const q = st.toFloat32("model.layers.0.self_attn.q_proj.weight");
    expect(g.info("blk.0.attn_q.weight").shape).toEqual([64, 64]);
    expect(g.toFloat32("blk.0.attn_q.weight")).toEqual(permuteHeadRows(q, 64, 64, 4));
    expect(g.toFloat32("blk.0.attn_v.weight")).toEqual(st.toFloat32("model.layers.0.self_attn.v_proj.weight"));
    expect(g.info("blk.0.attn_norm.weight").type.name).toBe("F32");
  });

  it("gpt2, sharded, Q8_0: Conv1D transposed, biases F32, masks dropped", async () => {
    const src = join(GOLDEN!, "base", "gpt2");
    const dir = tmpFile("gpt2-sharded");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(src, "config.json"), join(dir, "config.json"));
    const st = parseSafetensors(new Uint8Array(readFileSync(join(src, "model.safetensors"))));
    const names = st.names();
    const half = Math.ceil(names.length / 2);
    const weightMap: Record<string, string> = {};
    [names.slice(0, half), names.slice(half)].forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const m = new Map(
        part.map((n) => [n, { dtype: "F32" as const, shape: [...st.info(n).shape], data: st.toFloat32(n) }]),
      );
      writeFileSync(join(dir, file), serializeSafetensors(m));
      for (const n of part) weightMap[n] = file;
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
    const out = tmpFile("gpt2-q8.gguf");
    await convertModelToGguf(dir, out, { dtype: "Q8_0" });
    const bytes = new Uint8Array(readFileSync(out));
    const g = parseGguf(bytes);
    await crossCheck(bytes, g);
    expect(g.metadata.get("general.file_type")?.value).toBe(7);
    expect(g.names().some((n) => n.includes("masked_bias"))).toBe(false);
    const w = st.toFloat32("transformer.h.0.attn.c_attn.weight"); // Conv1D [64, 192] = [in, out]
    expect(g.info("blk.0.attn_qkv.weight").shape).toEqual([64, 192]);
    expect(g.info("blk.0.attn_qkv.weight").type.name).toBe("Q8_0");
    expect(g.info("blk.0.attn_qkv.bias").type.name).toBe("F32");
    const y = g.toFloat32("blk.0.attn_qkv.weight"); // [out, in] row-major
    let maxErr = 0;
    let amax = 0;
    for (let i = 0; i < 64; i++)
      for (let o = 0; o < 192; o++) {
        maxErr = Math.max(maxErr, Math.abs(y[o * 64 + i]! - w[i * 192 + o]!));
        amax = Math.max(amax, Math.abs(w[i * 192 + o]!));
      }
    expect(maxErr).toBeLessThanOrEqual(amax / 127); // one Q8_0 step of the largest block at most
    expect(maxErr).toBeGreaterThan(0);
  });

  it("refuses an architecture it does not convert", async () => {
    const dir = tmpFile("mamba");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["MambaForCausalLM"] }));
    copyFileSync(join(GOLDEN!, "base", "gpt2", "model.safetensors"), join(dir, "model.safetensors"));
    await expect(convertModelToGguf(dir, tmpFile("mamba.gguf"))).rejects.toThrow(
      expect.objectContaining({ code: "unsupported_architecture" }),
    );
  });
});

describe("tokenizer.json → GGUF vocabulary", () => {
  it("GPT-2's byte-level BPE: tokens, types and merges as llama.cpp's own GPT-2 vocabulary", async () => {
    const dir = gpt2ModelWithTokenizer();
    const out = tmpFile("gpt2-tok.gguf");
    const s = await convertModelToGguf(dir, out, { dtype: "F16" });
    expect(s.warnings).toEqual([]);
    const g = parseGguf(new Uint8Array(readFileSync(out)));
    const ref = parseGguf(new Uint8Array(readFileSync(join(GGUF_FIXTURES, "ggml-vocab-gpt-2.gguf"))));
    for (const k of [
      "tokenizer.ggml.model",
      "tokenizer.ggml.pre",
      "tokenizer.ggml.tokens",
      "tokenizer.ggml.token_type",
      "tokenizer.ggml.merges",
    ])
      expect(g.metadata.get(k), k).toEqual(ref.metadata.get(k));
    expect(g.metadata.get("tokenizer.ggml.eos_token_id")?.value).toBe(50256);
  });
  it("another tokenizer kind falls back to the byte vocabulary with a warning", async () => {
    const dir = gpt2ModelWithTokenizer();
    const { json } = gpt2TokenizerJson();
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...json, model: { type: "Unigram", vocab: [] } }));
    const s = await convertModelToGguf(dir, tmpFile("gpt2-unigram.gguf"), { dtype: "F16" });
    expect(s.warnings).toEqual([
      expect.stringMatching(
        /model is "Unigram", lorakit converts byte-level BPE only: wrote lorakit's minimal byte vocabulary/,
      ),
    ]);
  });
});
