// A WordLevel tokenizer.json (Hugging Face tokenizers' format) over the given words: "<unk>" is id 0, "<eos>" id 1
// (a special token), the words 2, 3, … in order; whitespace pre-tokenizer, no decoder.
export function wordLevelTokenizer(words: readonly string[]) {
  const vocab: Record<string, number> = { "<unk>": 0, "<eos>": 1 };
  words.forEach((w, i) => {
    vocab[w] = i + 2;
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 1, content: "<eos>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: "<unk>" },
  };
}
