// A GPT-2 tokenizer.json rebuilt from llama.cpp's models/ggml-vocab-gpt-2.gguf (its tokens and merges are GPT-2's,
// written by convert_hf_to_gguf.py), and a one-layer random GPT-2 checkpoint with that vocabulary, for the
// tokenizer.json → GGUF tests.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseGguf } from "../../src/io/gguf.js";
import { serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { GGUF_FIXTURES, tmpFile } from "./helpers.js";

/** The tokenizer.json object and the vocabulary's token list. */
export function gpt2TokenizerJson(): { json: Record<string, unknown>; tokens: string[]; merges: string[] } {
  const g = parseGguf(new Uint8Array(readFileSync(join(GGUF_FIXTURES, "ggml-vocab-gpt-2.gguf"))));
  const tokens = g.metadata.get("tokenizer.ggml.tokens")!.value as string[];
  const types = g.metadata.get("tokenizer.ggml.token_type")!.value as number[];
  const merges = g.metadata.get("tokenizer.ggml.merges")!.value as string[];
  const vocab: Record<string, number> = {};
  const added: { id: number; content: string; special: boolean }[] = [];
  tokens.forEach((t, i) => {
    if (types[i] === 3) added.push({ id: i, content: t, special: true });
    vocab[t] = i;
  });
  const json = {
    version: "1.0",
    added_tokens: added.map((a) => ({ ...a, single_word: false, lstrip: false, rstrip: false, normalized: false })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  return { json, tokens, merges };
}

/** A folder with config.json, tokenizer.json and a random one-layer GPT-2 (n_embd 32) over the GPT-2 vocabulary. */
export function gpt2ModelWithTokenizer(): string {
  const { json, tokens } = gpt2TokenizerJson();
  const V = tokens.length;
  const E = 32;
  const dir = tmpFile("gpt2-tok-model");
  mkdirSync(dir, { recursive: true });
  let seed = 7;
  const rnd = (n: number, s = 0.05) =>
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return ((seed / 2 ** 32) * 2 - 1) * s;
    });
  const ones = (n: number) => new Float32Array(n).fill(1);
  const t = new Map<string, TensorToWrite>();
  const put = (name: string, shape: number[], data: Float32Array) => t.set(name, { dtype: "F32", shape, data });
  put("transformer.wte.weight", [V, E], rnd(V * E));
  put("transformer.wpe.weight", [64, E], rnd(64 * E));
  put("transformer.h.0.ln_1.weight", [E], ones(E));
  put("transformer.h.0.ln_1.bias", [E], rnd(E));
  put("transformer.h.0.attn.c_attn.weight", [E, 3 * E], rnd(3 * E * E));
  put("transformer.h.0.attn.c_attn.bias", [3 * E], rnd(3 * E));
  put("transformer.h.0.attn.c_proj.weight", [E, E], rnd(E * E));
  put("transformer.h.0.attn.c_proj.bias", [E], rnd(E));
  put("transformer.h.0.ln_2.weight", [E], ones(E));
  put("transformer.h.0.ln_2.bias", [E], rnd(E));
  put("transformer.h.0.mlp.c_fc.weight", [E, 4 * E], rnd(4 * E * E));
  put("transformer.h.0.mlp.c_fc.bias", [4 * E], rnd(4 * E));
  put("transformer.h.0.mlp.c_proj.weight", [4 * E, E], rnd(4 * E * E));
  put("transformer.h.0.mlp.c_proj.bias", [E], rnd(E));
  put("transformer.ln_f.weight", [E], ones(E));
  put("transformer.ln_f.bias", [E], rnd(E));
  put("lm_head.weight", [V, E], rnd(V * E));
  writeFileSync(join(dir, "model.safetensors"), serializeSafetensors(t));
  const config = {
    architectures: ["GPT2LMHeadModel"],
    n_embd: E,
    n_head: 2,
    n_layer: 1,
    n_positions: 64,
    vocab_size: V,
    layer_norm_epsilon: 1e-5,
    bos_token_id: 50256,
    eos_token_id: 50256,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
  return dir;
}
