// Sampling (greedy, temperature, top-k, top-p from a seeded generator), batched generation with stop tokens and
// length limits, and the byte-bounded adapter cache.

import { describe, expect, it, vi } from "vitest";
import { randomModel, randomPeftAdapter, toSafetensors } from "../../scripts/random-model.mjs";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { createRng } from "../../src/lora/rng.js";
import { AdapterCache } from "../../src/model/adapter-cache.js";
import { generate, generateAll } from "../../src/model/generate.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { CausalLM } from "../../src/model/model.js";
import { argmax, readSampling, sampleToken } from "../../src/model/sampling.js";

describe("sampleToken", () => {
  const logits = Float32Array.from([1, 3, 2, 3, -1]);
  it("greedy takes the first largest logit", () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, readSampling("t"), createRng(1))).toBe(1);
  });

  it("temperature 1 draws with softmax probabilities (seeded, reproducible)", () => {
    const s = readSampling("t", { temperature: 1 });
    const rng = createRng(42);
    const counts = new Array(5).fill(0);
    const draws = 20000;
    for (let i = 0; i < draws; i++) counts[sampleToken(logits, s, rng)]++;
    const z = [...logits].map(Math.exp);
    const total = z.reduce((a, b) => a + b, 0);
    counts.forEach((c, i) => {
      const p = z[i]! / total;
      // 5 standard deviations of a binomial count
      expect(Math.abs(c - draws * p)).toBeLessThanOrEqual(5 * Math.sqrt(draws * p * (1 - p)) + 1);
    });
    const again = createRng(42);
    const rng2 = createRng(42);
    const a = Array.from({ length: 50 }, () => sampleToken(logits, s, again));
    const b = Array.from({ length: 50 }, () => sampleToken(logits, s, rng2));
    expect(a).toEqual(b);
  });

  it("top-k and top-p cut the candidates", () => {
    const rng = createRng(7);
    const k2 = readSampling("t", { temperature: 5, topK: 2 });
    for (let i = 0; i < 200; i++) expect([1, 3]).toContain(sampleToken(logits, k2, rng));
    // top-p: tokens 1 and 3 hold 2·e³/Σ ≈ 0.793 of the mass, so p = 0.75 keeps only them; the first three hold
    // 0.939, so p = 0.95 adds token 0 (0.993) but never token 4
    const p = readSampling("t", { temperature: 1, topP: 0.75 });
    for (let i = 0; i < 200; i++) expect([1, 3]).toContain(sampleToken(logits, p, rng));
    const p95 = readSampling("t", { temperature: 1, topP: 0.95 });
    const seen = new Set(Array.from({ length: 500 }, () => sampleToken(logits, p95, rng)));
    expect(seen.has(2) && seen.has(0)).toBe(true);
    expect(seen.has(4)).toBe(false);
  });

  it("refuses bad settings by name", () => {
    expect(() => readSampling("generate", { temperature: -1 })).toThrow(
      expect.objectContaining({
        code: "invalid_argument",
        message: "generate: temperature is -1, expected a finite number ≥ 0",
      }),
    );
    expect(() => readSampling("generate", { topP: 0 })).toThrow(/topP is 0, expected a number in \(0, 1\]/);
    expect(() => readSampling("generate", { topK: 1.5 })).toThrow(/topK is 1.5/);
  });
});

describe("generate", () => {
  const spec = {
    type: "llama" as const,
    hidden: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    vocab: 96,
    positions: 24,
    intermediate: 80,
    seed: 11,
  };
  const rm = randomModel(spec);
  const model = new CausalLM(rm.config, parseSafetensors(toSafetensors(rm.tensors)));
  const ad = randomPeftAdapter(rm, ["q_proj", "v_proj"], 8, 5);
  // large factors so the adapter changes greedy choices
  for (const t of ad.tensors.values()) for (let i = 0; i < t.data.length; i++) t.data[i]! *= 30;
  model.attachAdapter("a", loadPeftAdapter({ config: ad.config, weights: toSafetensors(ad.tensors) }));

  it("greedy generation equals repeated argmax of the full forward", () => {
    const [out] = generateAll(model, [{ ids: [5, 6, 7] }], { maxTokens: 6, stop: [] });
    const ids = [5, 6, 7];
    for (let i = 0; i < 6; i++) {
      const [l] = model.forward([{ ids, cache: model.createCache() }]);
      ids.push(argmax(l!));
    }
    expect(out).toEqual(ids.slice(3));
  });

  it("a batch gives each sequence what it gets alone (greedy and seeded sampling, mixed adapters)", () => {
    const reqs = [
      { ids: [1, 2, 3], adapter: "a" },
      { ids: [9], adapter: null },
      { ids: [4, 4, 4, 4, 4], adapter: "a", seed: 99 },
    ];
    for (const opts of [{ maxTokens: 8 }, { maxTokens: 8, temperature: 0.9, topK: 20, topP: 0.9, seed: 3 }]) {
      const batch = generateAll(model, reqs, { ...opts, stop: [] });
      reqs.forEach((r, i) => {
        const alone = generateAll(model, [{ ...r, seed: r.seed ?? (opts.seed ?? 0) + i }], { ...opts, stop: [] });
        expect(batch[i]).toEqual(alone[0]);
      });
    }
    const plain = generateAll(model, [{ ids: [1, 2, 3] }], { maxTokens: 8, stop: [] })[0];
    expect(plain).not.toEqual(generateAll(model, [{ ids: [1, 2, 3], adapter: "a" }], { maxTokens: 8, stop: [] })[0]);
  });

  it("stops at a stop token (reported) and at maxTokens or the context", () => {
    const [free] = generateAll(model, [{ ids: [5, 6, 7] }], { maxTokens: 5, stop: [] });
    const stopAt = free![2]!;
    const events = [...generate(model, [{ ids: [5, 6, 7] }], { maxTokens: 5, stop: [stopAt] })];
    const first = free!.indexOf(stopAt);
    expect(events.map((e) => e.token)).toEqual(free!.slice(0, first + 1));
    expect(events.at(-1)!.finish).toBe("stop");
    const long = [...generate(model, [{ ids: [1, 2, 3, 4] }], { maxTokens: 100, stop: [] })];
    expect(long.length).toBe(spec.positions - 4 + 1);
    expect(long.at(-1)!.finish).toBe("length");
    expect(long.slice(0, -1).every((e) => e.finish === null)).toBe(true);
  });

  it("gives each sequence's cache back (dispose) when it finishes, and every unfinished one when the caller stops early", () => {
    const dispose = vi.spyOn(KvCache.prototype, "dispose");
    try {
      generateAll(model, [{ ids: [1, 2] }, { ids: [3] }, { ids: [4, 5, 6] }], { maxTokens: 3, stop: [] });
      expect(dispose).toHaveBeenCalledTimes(3);
      dispose.mockClear();
      for (const e of generate(model, [{ ids: [1, 2] }, { ids: [3] }], { maxTokens: 50, stop: [] }))
        if (e.index === 1) break; // both still running
      expect(dispose).toHaveBeenCalledTimes(2);
    } finally {
      dispose.mockRestore();
    }
  });
});

describe("AdapterCache", () => {
  const rm = randomModel({ type: "gpt2", hidden: 64, layers: 2, heads: 4, vocab: 64, positions: 16, seed: 12 });
  const model = new CausalLM(rm.config, parseSafetensors(toSafetensors(rm.tensors)));
  const files = (i: number) => {
    const a = randomPeftAdapter(rm, ["attn.c_attn"], 4, 20 + i);
    return loadPeftAdapter({ config: a.config, weights: toSafetensors(a.tensors) });
  };

  it("keeps the attached adapters within the byte budget, dropping the least recently used", async () => {
    const loaded: string[] = [];
    const one = files(0).modules.reduce((s, m) => s + 4 * (m.down.data.length + m.up.data.length), 0);
    const cache = new AdapterCache(model, {
      maxBytes: 2 * one,
      load: (name) => {
        loaded.push(name);
        return files(Number(name.slice(1)));
      },
    });
    await cache.acquire(["a0", "a1"]);
    expect(cache.bytes).toBe(2 * one);
    const before = model.forward([{ ids: [1, 2], cache: model.createCache(), adapter: "a0" }])[0]!;
    await cache.acquire(["a0"]); // a0 is now most recent
    await cache.acquire(["a2"]); // evicts a1
    expect(model.adapterNames.sort()).toEqual(["a0", "a2"]);
    expect(cache.evictions).toBe(1);
    await cache.acquire(["a1", null]); // reloads a1, evicts a0
    expect(cache.names).toEqual(["a2", "a1"]);
    expect(loaded).toEqual(["a0", "a1", "a2", "a1"]);
    // a batch needing more than the budget keeps all it needs
    await cache.acquire(["a0", "a1", "a2"]);
    expect(model.adapterNames.length).toBe(3);
    const after = model.forward([{ ids: [1, 2], cache: model.createCache(), adapter: "a0" }])[0]!;
    expect(after).toEqual(before);
  });

  it("refuses a bad budget", () => {
    expect(() => new AdapterCache(model, { maxBytes: -1, load: files as never })).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });
});
