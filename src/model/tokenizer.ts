// Text ⇄ token ids through Hugging Face's own JavaScript tokenizers (@huggingface/tokenizers, an optional
// dependency). It is imported only when a tokenizer is loaded, so the rest of the runtime works without it.

import { ArgumentError, ModelError } from "../errors.js";

/** Encodes prompts and decodes generated ids. */
export interface TextTokenizer {
  /** Token ids of `text` (with the tokenizer's special tokens, e.g. a BOS, when its post-processor adds them). */
  encode(text: string): number[];
  /** Text of `ids`, special tokens skipped. */
  decode(ids: readonly number[]): string;
}

interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[]; tokens?: string[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
}

// A variable specifier keeps bundlers from resolving the optional package at build time.
const PACKAGE = "@huggingface/tokenizers";

/**
 * Builds a tokenizer from tokenizer.json (parsed) and tokenizer_config.json (parsed, or {}).
 * @throws {ModelError} "unsupported_format" when @huggingface/tokenizers is not installed or rejects the file
 * @example const tok = await loadTokenizer(tokenizerJson, tokenizerConfig); tok.encode("Hello")
 */
export async function loadTokenizer(tokenizerJson: object, tokenizerConfig: object = {}): Promise<TextTokenizer> {
  let mod: { Tokenizer: new (t: object, c: object) => HfTokenizer };
  try {
    mod = (await import(/* @vite-ignore */ PACKAGE)) as typeof mod;
  } catch (e) {
    throw new ModelError(
      "unsupported_format",
      `loadTokenizer: ${PACKAGE} is not installed (${(e as Error).message}); install it for text prompts, or pass token ids`,
      { package: PACKAGE },
    );
  }
  let tok: HfTokenizer;
  try {
    tok = new mod.Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new ModelError(
      "unsupported_format",
      `loadTokenizer: tokenizer.json was refused by ${PACKAGE}: ${(e as Error).message}`,
      {
        package: PACKAGE,
      },
    );
  }
  return {
    encode: (text) => {
      const e = tok.encode(text);
      const bad = e.ids.findIndex((id) => !Number.isSafeInteger(id));
      // a vocabulary without the piece (and no usable unknown token) leaves a hole rather than an id
      if (bad >= 0)
        throw new ArgumentError(
          "invalid_argument",
          `TextTokenizer.encode: the tokenizer has no id for piece ${bad} (${JSON.stringify(e.tokens?.[bad] ?? null)}) of the text`,
          { index: bad, token: e.tokens?.[bad] },
        );
      return [...e.ids];
    },
    decode: (ids) => tok.decode([...ids], { skip_special_tokens: true }),
  };
}
