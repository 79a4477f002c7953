// The server over the real model runtime: the PEFT golden llama base (../shared/fixtures/peft-golden) with PEFT's
// and lorakit's adapters. The first greedy token of every adapter is the argmax of PEFT's own logits; concurrent
// mixed-adapter completions equal their solo runs and the runtime's own generate(); adapters load from the golden
// folder at run time. Skips when the golden set is absent.
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generateAll } from "../../src/model/index.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { openModelEngine } from "../../src/node/serve/model.js";
import type { RunningServer } from "../../src/node/serve/server.js";
import type { ModelEngine } from "../../src/serve/model-engine.js";
import { GOLDEN, goldenFile, inputIds, readSafetensors } from "../model/golden.js";
import { postJson, startFake } from "./helpers.js";

const START = ["peft-llama-basic", "lk-llama-basic", "peft-llama-rslora-all"];

const suite = GOLDEN ? describe : describe.skip;
let server: RunningServer;
let engine: ModelEngine;
let client: Awaited<ReturnType<typeof startFake>>["client"];

// argmax of PEFT's logits at the last input position, for the variant
function pefts(variant: string): number {
  const data = readSafetensors(goldenFile(variant, "io.safetensors")).toFloat32("logits");
  const n = inputIds().length;
  const V = data.length / n;
  let best = 0;
  for (let v = 1; v < V; v++) if (data[(n - 1) * V + v]! > data[(n - 1) * V + best]!) best = v;
  return best;
}

const idsOf = (c: object) => (c as { token_ids: number[] }).token_ids;

suite("serve over the model runtime (PEFT golden llama)", () => {
  beforeAll(async () => {
    const opened = await openModelEngine(goldenFile("base", "llama"), {
      adapters: START.map((v) => [v, goldenFile(v, "adapter")]),
    });
    engine = opened.engine;
    expect(opened.name).toBe("llama");
    ({ server, client } = await startFake({
      engine: engine as never,
      modelName: "llama",
      adapterDir: dirname(goldenFile("input_ids.json")),
      maxBatch: 8,
    }));
  });
  afterAll(() => server?.close(0));

  it("the engine's last-position logits match PEFT's for each start-up adapter", async () => {
    const ids = inputIds();
    for (const [i, v] of START.entries()) {
      const logits = await engine.step([{ seq: 1000 + i, adapter: v, tokens: ids }]);
      const all = readSafetensors(goldenFile(v, "io.safetensors")).toFloat32("logits");
      const V = engine.info.vocabSize;
      const expected = all.subarray((ids.length - 1) * V, ids.length * V);
      let maxE = 0;
      let maxD = 0;
      for (let k = 0; k < V; k++) {
        maxE = Math.max(maxE, Math.abs(expected[k]!));
        maxD = Math.max(maxD, Math.abs(logits[k]! - expected[k]!));
      }
      expect(maxD / maxE, v).toBeLessThanOrEqual(1e-4);
      const dispose = vi.spyOn(KvCache.prototype, "dispose");
      engine.release(1000 + i);
      expect(dispose, "a released sequence gives its cache's kernel memory back").toHaveBeenCalledTimes(1);
      dispose.mockRestore();
    }
    expect(engine.liveSequences).toBe(0);
  });

  it("mixed-adapter completions under concurrency equal their solo runs, generate(), and PEFT's first token", async () => {
    const prompt = inputIds();
    const models = ["llama", ...START];
    const ask = (model: string, maxTokens: number) =>
      client.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0 });
    const solo: number[][] = [];
    for (const m of models) solo.push(idsOf((await ask(m, 24)).choices[0]!));
    const together = await Promise.all(models.flatMap((m) => [ask(m, 24), ask(m, 24)]));
    for (const [i, r] of together.entries()) expect(idsOf(r.choices[0]!), models[i >> 1]).toEqual(solo[i >> 1]);
    for (const [i, v] of START.entries()) expect(solo[i + 1]![0], v).toBe(pefts(v));
    // the runtime's own batched greedy decoding (it reports the end-of-sequence token; the server does not)
    const reference = generateAll(
      engine.model,
      models.map((m) => ({ ids: prompt, adapter: m === "llama" ? null : m })),
      { maxTokens: 24 },
    );
    reference.forEach((ids, i) => {
      const eos = ids.findIndex((t) => engine.info.eosTokenIds.includes(t));
      expect(solo[i]).toEqual(eos < 0 ? ids : ids.slice(0, eos));
    });
    expect(engine.liveSequences).toBe(0);
  });

  it("a seeded sampled completion is the one the runtime's generate() draws with that seed", async () => {
    const prompt = inputIds();
    const sampling = { temperature: 0.9, top_p: 0.95, top_k: 40 };
    const answers = await Promise.all(
      [7, 8].map((seed) =>
        client.completions.create({ model: "lk-llama-basic", prompt, max_tokens: 20, seed, ...sampling }),
      ),
    );
    const reference = generateAll(
      engine.model,
      [7, 8].map((seed) => ({ ids: prompt, adapter: "lk-llama-basic", seed })),
      { maxTokens: 20, temperature: 0.9, topP: 0.95, topK: 40 },
    );
    const cut = (ids: number[]) => {
      const eos = ids.findIndex((t) => engine.info.eosTokenIds.includes(t));
      return eos < 0 ? ids : ids.slice(0, eos);
    };
    const [a, b] = answers.map((r) => idsOf(r.choices[0]!));
    expect(a).toEqual(cut(reference[0]!));
    expect(b).toEqual(cut(reference[1]!));
    expect(a).not.toEqual(b);
  });

  it("loads a golden adapter at run time and serves it; refuses the base folder's parent", async () => {
    const r = await postJson(server.url, "/v1/load_lora_adapter", {
      lora_name: "dora",
      lora_path: "peft-llama-dora/adapter",
    });
    expect([r.status, r.text]).toEqual([200, "Success: LoRA adapter 'dora' added successfully."]);
    const c = await client.completions.create({ model: "dora", prompt: inputIds(), max_tokens: 1, temperature: 0 });
    expect(idsOf(c.choices[0]!)[0]).toBe(pefts("peft-llama-dora"));
    const out = await postJson(server.url, "/v1/load_lora_adapter", { lora_name: "x", lora_path: "../.." });
    expect(out.status).toBe(403);
    const bad = await postJson(server.url, "/v1/load_lora_adapter", { lora_name: "x", lora_path: "base/llama" });
    expect([bad.status, bad.json().error.code]).toEqual([400, "missing_file"]);
    expect((await postJson(server.url, "/v1/unload_lora_adapter", { lora_name: "dora" })).status).toBe(200);
  });
});
