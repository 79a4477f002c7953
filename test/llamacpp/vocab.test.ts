// A byte-level BPE tokenizer.json converted by lorakit (GPT-2's, rebuilt from llama.cpp's own vocabulary file)
// tokenizes like the Hugging Face tokenizer in llama.cpp: the same ids for every test text. Skips without
// node-llama-cpp or @huggingface/tokenizers (an optional dependency).

import { describe, expect, it } from "vitest";
import { convertModelToGguf } from "../../src/node/gguf-file.js";
import { tmpFile } from "../gguf/helpers.js";
import { gpt2ModelWithTokenizer, gpt2TokenizerJson } from "../gguf/vocab-fixture.js";
import { LLAMACPP_MISSING, llamaTokenize } from "./harness.js";

const TEXTS = [
  "Hello world",
  " leading space and  two spaces",
  "LoRA adapters: rsLoRA's α/√r, 12345 and 3.14!",
  "naïve café — 東京 🚀",
  "line one\nline two\n\n\ttabbed",
  "it's we'll they've I'm",
];

let hf: { Tokenizer: new (j: object, c: object) => { encode(t: string, o?: object): { ids: number[] } } } | null = null;
try {
  hf = await import("@huggingface/tokenizers");
} catch {
  hf = null;
}

describe.skipIf(LLAMACPP_MISSING !== null || hf === null)("tokenizer.json → GGUF, tokenized by llama.cpp", () => {
  it("GPT-2: llama.cpp's ids equal @huggingface/tokenizers' for every text", async () => {
    const out = tmpFile("gpt2-tok-llama.gguf");
    await convertModelToGguf(gpt2ModelWithTokenizer(), out, { dtype: "F16" });
    const ours = await llamaTokenize(out, TEXTS);
    const tok = new hf!.Tokenizer(gpt2TokenizerJson().json, {});
    TEXTS.forEach((t, i) => {
      const ref = tok.encode(t, { add_special_tokens: false }).ids;
      expect(ours[i], JSON.stringify(t)).toEqual(ref);
    });
  }, 300_000);
});

if (LLAMACPP_MISSING !== null) it.skip(`llama.cpp tokenizer check skipped: ${LLAMACPP_MISSING}`, () => {});
if (hf === null)
  it.skip("llama.cpp tokenizer check skipped: @huggingface/tokenizers (optional dependency) is not installed", () => {});
