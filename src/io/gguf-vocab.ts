// Vocabularies for GGUF base models. From a Hugging Face tokenizer.json: byte-level BPE (GPT-2 style: model "BPE",
// pre-tokenizer "ByteLevel" with its GPT-2 regex) becomes llama.cpp's "gpt2" tokenizer with pre-tokenizer "gpt-2":
// tokens by id (ids with no token padded as "[PAD<id>]", type UNUSED, up to the embedding's row count, as
// convert_hf_to_gguf.py's get_vocab_base does), token types (NORMAL 1, CONTROL 3 for special added tokens,
// USER_DEFINED 4 for other added tokens, UNUSED 5), merges as "a b". Other tokenizers are not converted: the caller
// writes the minimal byte vocabulary instead and says why.

import type { GgufValue } from "./gguf-types.js";

/** Metadata of a converted vocabulary, or the reason it could not be converted. */
export type VocabularyResult = { metadata: Record<string, GgufValue> } | { unsupported: string };

function isByteLevelOnly(pre: unknown): boolean {
  const p = pre as { type?: string; use_regex?: boolean } | null;
  return p !== null && typeof p === "object" && p.type === "ByteLevel" && p.use_regex !== false;
}

/**
 * llama.cpp vocabulary metadata from a tokenizer.json object, for a model with `n` token rows.
 * @param config config.json, for bos_token_id / eos_token_id
 */
export function vocabularyFromTokenizerJson(
  tokenizer: unknown,
  n: number,
  config: Record<string, unknown>,
): VocabularyResult {
  const t = tokenizer as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
    pre_tokenizer?: unknown;
    added_tokens?: { id: number; content: string; special?: boolean }[];
  };
  const model = t?.model;
  if (model?.type !== "BPE" || model.vocab === undefined || !Array.isArray(model.merges))
    return {
      unsupported: `tokenizer.json model is ${JSON.stringify(model?.type)}, lorakit converts byte-level BPE only`,
    };
  if (!isByteLevelOnly(t.pre_tokenizer))
    return {
      unsupported: `tokenizer.json pre_tokenizer is ${JSON.stringify((t.pre_tokenizer as { type?: string } | null)?.type)}, lorakit converts GPT-2's ByteLevel only`,
    };
  const tokens: (string | undefined)[] = new Array(n);
  const types = new Array<number>(n).fill(1);
  for (const [tok, id] of Object.entries(model.vocab)) if (Number.isInteger(id) && id >= 0 && id < n) tokens[id] = tok;
  for (const a of t.added_tokens ?? [])
    if (Number.isInteger(a.id) && a.id >= 0 && a.id < n) {
      tokens[a.id] = a.content;
      types[a.id] = a.special ? 3 : 4;
    }
  const ids = [...Object.values(model.vocab), ...(t.added_tokens ?? []).map((a) => a.id)];
  const beyond = ids.filter((id) => id >= n).length;
  if (beyond > 0) return { unsupported: `tokenizer.json has ${beyond} token ids ≥ the model's ${n} embedding rows` };
  const list = tokens.map((tok, i) => {
    if (tok !== undefined) return tok;
    types[i] = 5;
    return `[PAD${i}]`;
  });
  const merges = model.merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const metadata: Record<string, GgufValue> = {
    "tokenizer.ggml.model": { type: "string", value: "gpt2" },
    "tokenizer.ggml.pre": { type: "string", value: "gpt-2" },
    "tokenizer.ggml.tokens": { type: "array", itemType: "string", value: list },
    "tokenizer.ggml.token_type": { type: "array", itemType: "i32", value: types },
    "tokenizer.ggml.merges": { type: "array", itemType: "string", value: merges },
  };
  for (const [k, key] of [
    ["bos_token_id", "tokenizer.ggml.bos_token_id"],
    ["eos_token_id", "tokenizer.ggml.eos_token_id"],
  ] as const) {
    const id = config[k];
    if (typeof id === "number" && Number.isInteger(id) && id >= 0 && id < n) metadata[key] = { type: "u32", value: id };
  }
  return { metadata };
}
