// /v1/completions and /v1/models through the official OpenAI client against the real server (loopback).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/node/serve/server.js";
import type { FakeEngine } from "./fake-engine.js";
import { ADAPTERS, ascii, postJson, raw, soloGreedy, startFake } from "./helpers.js";

type Client = Awaited<ReturnType<typeof startFake>>["client"];
let server: RunningServer;
let engine: FakeEngine;
let client: Client;

beforeAll(async () => {
  ({ server, engine, client } = await startFake());
});
afterAll(() => server.close(0));

// the generated ids (vLLM's token_ids field, which the OpenAI types do not declare)
const idsOf = (choice: object) => (choice as { token_ids: number[] }).token_ids;

describe("GET /v1/models, /health", () => {
  it("lists the base model, then every adapter with the base as parent", async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models.map((m) => m.id)).toEqual(["base", ...ADAPTERS]);
    expect(models[0]).toMatchObject({ object: "model", owned_by: "lorakit", parent: null, root: "base" });
    expect(models[3]).toMatchObject({ id: "a3", parent: "base", root: "base" });
    expect((await client.models.retrieve("a2")).id).toBe("a2");
  });

  it("answers /health", async () => {
    const r = await raw(server.url, "GET", "/health");
    expect([r.status, JSON.parse(r.text)]).toEqual([200, { status: "ok" }]);
  });
});

describe("POST /v1/completions", () => {
  it("a greedy completion is the solo decode, token for token, on the base and on an adapter", async () => {
    for (const model of ["base", "a3"]) {
      const r = await client.completions.create({ model, prompt: "The cat", max_tokens: 12, temperature: 0 });
      const expected = await soloGreedy(model === "base" ? null : model, ascii("The cat"), 12);
      const choice = r.choices[0]!;
      expect(idsOf(choice)).toEqual(expected);
      expect(choice.text).toBe(String.fromCharCode(...expected));
      expect(choice.finish_reason).toBe(expected.length === 12 ? "length" : "stop");
      expect(r).toMatchObject({ object: "text_completion", model });
      expect(r.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
      expect(r.usage).toEqual({
        prompt_tokens: 7,
        completion_tokens: expected.length,
        total_tokens: 7 + expected.length,
      });
    }
    const base = await client.completions.create({ model: "base", prompt: "The cat", max_tokens: 12, temperature: 0 });
    const a3 = await client.completions.create({ model: "a3", prompt: "The cat", max_tokens: 12, temperature: 0 });
    expect(base.choices[0]!.text).not.toBe(a3.choices[0]!.text);
  });

  it("ends with finish_reason 'stop' at the end-of-sequence token, which is not returned", async () => {
    // find a prompt whose solo decode hits end-of-sequence before 40 tokens
    let prompt = "";
    let expected: number[] = [];
    for (let i = 0; i < 50 && prompt === ""; i++) {
      const ids = await soloGreedy("a1", ascii(`p${i}`), 40);
      if (ids.length < 40) [prompt, expected] = [`p${i}`, ids];
    }
    expect(prompt).not.toBe("");
    const r = await client.completions.create({ model: "a1", prompt, max_tokens: 40, temperature: 0 });
    expect(idsOf(r.choices[0]!)).toEqual(expected);
    expect(r.choices[0]!.finish_reason).toBe("stop");
  });

  it("streams the same text as one chunk per token, then finish_reason, usage and [DONE]", async () => {
    const whole = await client.completions.create({ model: "a5", prompt: "stream me", max_tokens: 20, temperature: 0 });
    const stream = await client.completions.create({
      model: "a5",
      prompt: "stream me",
      max_tokens: 20,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual(whole.usage);
    const parts = chunks.slice(0, -1);
    expect(parts.map((c) => c.choices[0]!.text).join("")).toBe(whole.choices[0]!.text);
    expect(parts.flatMap((c) => idsOf(c.choices[0]!))).toEqual(idsOf(whole.choices[0]!));
    expect(parts.at(-1)!.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    expect(parts.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
    const rawStream = await postJson(server.url, "/v1/completions", { model: "a5", prompt: "x", stream: true });
    expect(rawStream.headers["content-type"]).toContain("text/event-stream");
    expect(rawStream.text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("stops before a stop string, in whole and streamed answers alike", async () => {
    const free = await client.completions.create({ model: "a2", prompt: "once", max_tokens: 30, temperature: 0 });
    const text = free.choices[0]!.text;
    const stop = text.slice(10, 12);
    const cut = text.indexOf(stop);
    const r = await client.completions.create({ model: "a2", prompt: "once", max_tokens: 30, temperature: 0, stop });
    expect(r.choices[0]!.text).toBe(text.slice(0, cut));
    expect(r.choices[0]!.finish_reason).toBe("stop");
    const s = await client.completions.create({
      model: "a2",
      prompt: "once",
      max_tokens: 30,
      temperature: 0,
      stop: [stop, "@@"],
      stream: true,
    });
    let streamed = "";
    for await (const c of s) streamed += c.choices[0]?.text ?? "";
    expect(streamed).toBe(text.slice(0, cut));
  });

  it("a seed fixes a sampled completion; other seeds give others", async () => {
    const ask = (seed: number) =>
      client.completions.create({ model: "a4", prompt: "dice", max_tokens: 24, temperature: 1, top_p: 0.9, seed });
    const [a, b, c] = await Promise.all([ask(11), ask(11), ask(12)]);
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
    expect(a.choices[0]!.text).not.toBe(c.choices[0]!.text);
    const greedy = await soloGreedy("a4", ascii("dice"), 24);
    expect(idsOf(a.choices[0]!)).not.toEqual(greedy);
  });

  it("takes token ids and lists of prompts (one choice each, by index)", async () => {
    const ids = ascii("hello");
    const r = await client.completions.create({ model: "a6", prompt: ids, max_tokens: 8, temperature: 0 });
    expect(idsOf(r.choices[0]!)).toEqual(await soloGreedy("a6", ids, 8));
    const many = await client.completions.create({
      model: "a6",
      // text and ids mixed in one list (lorakit accepts it; the OpenAI types only allow one kind per list)
      prompt: ["hello", [104, 105], "third"] as unknown as string[],
      max_tokens: 8,
      temperature: 0,
    });
    expect(many.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(idsOf(many.choices[0]!)).toEqual(await soloGreedy("a6", ids, 8));
    expect(idsOf(many.choices[1]!)).toEqual(await soloGreedy("a6", [104, 105], 8));
    expect(idsOf(many.choices[2]!)).toEqual(await soloGreedy("a6", ascii("third"), 8));
    expect(many.usage!.prompt_tokens).toBe(5 + 2 + 5);
  });

  it("a request's prompts share steps, and every engine cache is released afterwards", async () => {
    const before = engine.steps.length;
    await client.completions.create({ model: "a7", prompt: ["a", "b", "c", "d"], max_tokens: 5, temperature: 0 });
    const mine = engine.steps.slice(before);
    expect(mine[0]!.rows.map((r) => r.adapter)).toEqual(["a7", "a7", "a7", "a7"]);
    expect(engine.live.size).toBe(0);
    expect(server.service.stats()).toMatchObject({ running: 0, waiting: 0, cached: 0, adapterUses: {} });
  });
});
