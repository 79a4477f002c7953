// Text in and out through a real Hugging Face tokenizer (@huggingface/tokenizers, the optional dependency): the PEFT
// golden llama (vocab 256) served from a folder that adds a byte-level BPE tokenizer.json whose 256 ids are the 256
// bytes. Text prompts equal their id prompts, whole and streamed text equal the tokenizer's decode of the ids, and
// stop strings cut real text. Skips when the golden set or the tokenizer package is absent.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/node/serve/server.js";
import type { ModelEngine } from "../../src/serve/model-engine.js";
import { GOLDEN } from "../model/golden.js";
import { goldenTextEngine, hasTokenizers, startFake } from "./helpers.js";

const suite = GOLDEN && hasTokenizers() ? describe : describe.skip;
let server: RunningServer;
let engine: ModelEngine;
let client: Awaited<ReturnType<typeof startFake>>["client"];
const idsOf = (c: object) => (c as { token_ids: number[] }).token_ids;

suite("serve with a tokenizer (golden llama + byte-level tokenizer.json)", () => {
  beforeAll(async () => {
    engine = await goldenTextEngine(mkdtempSync(join(tmpdir(), "lorakit-serve-tok-")));
    expect(engine.info.hasTokenizer).toBe(true);
    ({ server, client } = await startFake({ engine: engine as never, modelName: "llama" }));
  });
  afterAll(() => server?.close(0));

  it("a text prompt is its bytes; the text is the tokenizer's decoding of the returned ids, whole and streamed", async () => {
    const text = await client.completions.create({ model: "basic", prompt: "Hello", max_tokens: 24, temperature: 0 });
    const ids = await client.completions.create({
      model: "basic",
      prompt: [72, 101, 108, 108, 111],
      max_tokens: 24,
      temperature: 0,
    });
    expect(text.usage!.prompt_tokens).toBe(5);
    expect(idsOf(text.choices[0]!)).toEqual(idsOf(ids.choices[0]!));
    const out = idsOf(text.choices[0]!);
    expect(out.length).toBeGreaterThan(0);
    expect(text.choices[0]!.text).toBe(engine.decode(out));
    let streamed = "";
    const s = await client.completions.create({
      model: "basic",
      prompt: "Hello",
      max_tokens: 24,
      temperature: 0,
      stream: true,
    });
    for await (const c of s) streamed += c.choices[0]?.text ?? "";
    expect(streamed).toBe(text.choices[0]!.text);
  });

  it("a stop string cuts the text where it first appears", async () => {
    const free = await client.completions.create({ model: "llama", prompt: "abc", max_tokens: 40, temperature: 0 });
    const whole = free.choices[0]!.text;
    // the first two printable ASCII characters in a row (the random model writes mostly other bytes)
    const at = whole.search(/[!-~]{2}/);
    expect(at).toBeGreaterThan(0);
    const stop = whole.slice(at, at + 2);
    const cut = await client.completions.create({
      model: "llama",
      prompt: "abc",
      max_tokens: 40,
      temperature: 0,
      stop,
    });
    expect(cut.choices[0]!.text).toBe(whole.slice(0, whole.indexOf(stop)));
    expect(cut.choices[0]!.finish_reason).toBe("stop");
  });
});
