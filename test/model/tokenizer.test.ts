// loadTokenizer: text ⇄ ids through @huggingface/tokenizers (imported on demand), and its refusal as a coded error.
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/model/tokenizer.js";
import { wordLevelTokenizer } from "../helpers/tokenizer.js";

const json = wordLevelTokenizer(["the", "cat", "sat"]); // <unk> 0, <eos> 1, the 2, cat 3, sat 4

describe("loadTokenizer", () => {
  it("encodes and decodes (special tokens skipped)", async () => {
    const tok = await loadTokenizer(json);
    expect(tok.encode("the cat sat")).toEqual([2, 3, 4]);
    // @huggingface/tokenizers 0.2.0 gives no id (undefined) for a word outside a WordLevel vocabulary
    expect(() => tok.encode("the dog")).toThrow(
      expect.objectContaining({
        code: "invalid_argument",
        message: expect.stringMatching(/no id for piece 1 \("dog"\)/),
      }),
    );
    expect(tok.decode([2, 3, 1])).toBe("the cat");
  });

  it("refuses a tokenizer.json the package cannot build, with a code", async () => {
    await expect(loadTokenizer({ ...json, model: { type: "NoSuchModel" } })).rejects.toMatchObject({
      code: "unsupported_format",
      message: expect.stringMatching(/^loadTokenizer: tokenizer.json was refused by @huggingface\/tokenizers: /),
    });
  });
});
