// CausalLM behaviour on the golden bases: mixed-adapter batches equal solo runs bit for bit, incremental decoding
// with the KV cache equals the full forward, merge/unmerge, scale, grouped-query attention.

import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { loadPeftAdapter, type PeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.js";
import { CausalLM } from "../../src/model/model.js";
import { loadAdapter } from "../../src/node/adapter-files.js";
import { GOLDEN, goldenFile, inputIds, readSafetensors, relError } from "./golden.js";

function loadBase(kind: string): CausalLM {
  return new CausalLM(
    readFileSync(goldenFile("base", kind, "config.json"), "utf8"),
    readSafetensors(goldenFile("base", kind, "model.safetensors")),
  );
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

const PROMPTS = [inputIds(), [5, 9, 200], [17], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]];

describe.skipIf(!GOLDEN)("CausalLM runtime", () => {
  let llama: CausalLM;
  let gpt2: CausalLM;
  beforeAll(async () => {
    llama = loadBase("llama");
    gpt2 = loadBase("gpt2");
    for (const v of [
      "peft-llama-basic",
      "lk-llama-mixed",
      "peft-llama-rslora-all",
      "lk-llama-basic",
      "peft-llama-dora",
    ])
      llama.attachAdapter(v, await loadAdapter(goldenFile(v, "adapter")));
    for (const v of ["peft-gpt2-conv1d", "lk-gpt2-conv1d", "peft-gpt2-bias"])
      gpt2.attachAdapter(v, await loadAdapter(goldenFile(v, "adapter")));
  });

  const solo = (m: CausalLM, ids: number[], adapter: string | null) =>
    m.forward([{ ids, cache: m.createCache(), adapter }], { logits: "all" })[0]!;

  for (const [name, adapters] of [
    ["llama", ["peft-llama-basic", null, "lk-llama-mixed", "peft-llama-basic", "lk-llama-basic", null]],
    ["gpt2", ["peft-gpt2-conv1d", null, "lk-gpt2-conv1d", "peft-gpt2-conv1d", "peft-gpt2-bias"]],
  ] as const) {
    it(`${name}: each row of a mixed-adapter batch equals its solo run bit for bit`, () => {
      const m = name === "llama" ? llama : gpt2;
      const steps = adapters.map((adapter, i) => ({
        ids: PROMPTS[i % PROMPTS.length]!,
        cache: m.createCache(),
        adapter,
      }));
      const batch = m.forward(steps, { logits: "all" });
      steps.forEach((s, i) => {
        expect(bitsEqual(batch[i]!, solo(m, s.ids, s.adapter)), `row ${i} (${s.adapter})`).toBe(true);
      });
      // and the adapters differ from each other (the test could fail)
      expect(bitsEqual(solo(m, PROMPTS[0]!, adapters[0]), solo(m, PROMPTS[0]!, null))).toBe(false);
      // decode steps mix too: one new token per sequence on top of the caches
      const next = m.forward(
        steps.map((s) => ({ ...s, ids: [7] })),
        { logits: "all" },
      );
      steps.forEach((s, i) => {
        const c = m.createCache();
        m.forward([{ ids: s.ids, cache: c, adapter: s.adapter }]);
        const [one] = m.forward([{ ids: [7], cache: c, adapter: s.adapter }], { logits: "all" });
        expect(bitsEqual(next[i]!, one!), `decode row ${i}`).toBe(true);
      });
    });
  }

  it("incremental decoding with the KV cache equals the full forward", () => {
    for (const [m, adapter] of [
      [llama, "lk-llama-basic"],
      [gpt2, "peft-gpt2-bias"],
      [llama, null],
    ] as const) {
      const ids = PROMPTS[3]!;
      const full = solo(m, ids, adapter);
      const cache = m.createCache(2); // forces the cache to grow
      const V = m.config.vocabSize;
      const parts = [ids.slice(0, 4), ...ids.slice(4).map((t) => [t])];
      let row = 0;
      for (const p of parts) {
        const [logits] = m.forward([{ ids: p, cache, adapter }], { logits: "all" });
        const want = full.subarray(row * V, (row + p.length) * V);
        expect(relError(logits!, want)).toBeLessThanOrEqual(1e-6);
        row += p.length;
      }
      expect(cache.length).toBe(ids.length);
    }
  });

  it("merge folds an adapter into the weights and unmerge takes it out", () => {
    const ids = PROMPTS[0]!;
    const base = solo(llama, ids, null);
    const unmerged = solo(llama, ids, "peft-llama-rslora-all");
    llama.mergeAdapter("peft-llama-rslora-all");
    try {
      expect(llama.mergedAdapter).toBe("peft-llama-rslora-all");
      expect(relError(solo(llama, ids, "peft-llama-rslora-all"), unmerged)).toBeLessThanOrEqual(1e-5);
      // while merged, every sequence must use the merged adapter
      expect(() => solo(llama, ids, null)).toThrow(expect.objectContaining({ code: "adapter_state" }));
      expect(() => llama.detachAdapter("peft-llama-rslora-all")).toThrow(/merged/);
    } finally {
      llama.unmergeAdapter();
    }
    expect(llama.mergedAdapter).toBe(null);
    expect(relError(solo(llama, ids, null), base)).toBeLessThanOrEqual(1e-6);
  });

  it("setAdapterScale: 0 gives the base model bit for bit, 1 restores the adapter", () => {
    const ids = PROMPTS[1]!;
    const base = solo(llama, ids, null);
    const withAdapter = solo(llama, ids, "peft-llama-basic");
    llama.setAdapterScale("peft-llama-basic", 0);
    expect(bitsEqual(solo(llama, ids, "peft-llama-basic"), base)).toBe(true);
    llama.setAdapterScale("peft-llama-basic", 1);
    expect(bitsEqual(solo(llama, ids, "peft-llama-basic"), withAdapter)).toBe(true);
    expect(llama.adapterInfo("peft-llama-basic").scale).toBe(1);
  });

  it("setAdapterScale(s) equals attaching with { scale: s }, bit for bit, LoRA and DoRA alike", async () => {
    const ids = PROMPTS[0]!;
    for (const name of ["peft-llama-basic", "peft-llama-dora"]) {
      // the same adapter attached again with the scale (on this model: an earlier merge may have moved its weights)
      llama.attachAdapter(`${name}@0.37`, await loadAdapter(goldenFile(name, "adapter")), { scale: 0.37 });
      llama.setAdapterScale(name, 0.37);
      try {
        expect(bitsEqual(solo(llama, ids, name), solo(llama, ids, `${name}@0.37`))).toBe(true);
        expect(relError(solo(llama, ids, name), solo(llama, ids, null))).toBeGreaterThan(1e-4); // it still acts
      } finally {
        llama.setAdapterScale(name, 1);
        llama.detachAdapter(`${name}@0.37`);
      }
    }
  });

  it("a DoRA adapter runs alone but may not share a batch", () => {
    const ids = PROMPTS[0]!;
    const expected = readSafetensors(goldenFile("peft-llama-dora", "io.safetensors")).toFloat32("logits");
    expect(relError(solo(llama, ids, "peft-llama-dora"), expected)).toBeLessThanOrEqual(1e-4);
    const steps = [
      { ids, cache: llama.createCache(), adapter: "peft-llama-dora" },
      { ids, cache: llama.createCache(), adapter: null },
    ];
    expect(() => llama.forward(steps)).toThrow(expect.objectContaining({ code: "adapter_state" }));
    expect(() => llama.forward(steps)).toThrow(/DoRA adapter, which cannot share a batch/);
  });

  it("a module's own bias given on the module (as loaders that read base_layer tensors give it) equals PEFT", async () => {
    const a = (await loadAdapter(goldenFile("peft-gpt2-bias", "adapter"))) as PeftAdapter;
    const modules = a.modules.map((m) => {
      const bias = a.modulesToSave.get(`${m.modulePath}.base_layer.bias`);
      return bias ? { ...m, bias: bias.data } : m;
    });
    expect(modules.filter((m) => "bias" in m).length).toBe(2);
    gpt2.attachAdapter("own-bias", { ...a, modules, modulesToSave: new Map() });
    try {
      const expected = readSafetensors(goldenFile("peft-gpt2-bias", "io.safetensors")).toFloat32("logits");
      expect(relError(solo(gpt2, PROMPTS[0]!, "own-bias"), expected)).toBeLessThanOrEqual(1e-4);
      expect(bitsEqual(solo(gpt2, PROMPTS[0]!, "own-bias"), solo(gpt2, PROMPTS[0]!, "peft-gpt2-bias"))).toBe(true);
    } finally {
      gpt2.detachAdapter("own-bias");
    }
  });

  it("modules_to_save lm_head and an embedding LoRA (peft-llama-embed-mts, its base embedding copy left out)", () => {
    // The file also holds PEFT's copy of the base embedding (save_embedding_layers), which loadPeftAdapter does not
    // read yet; without it the adapter is exactly what PEFT ran (the copy equals the base weight).
    const dir = goldenFile("peft-llama-embed-mts", "adapter");
    const st = parseSafetensors(readFileSync(`${dir}/adapter_model.safetensors`));
    const keep = st.names().filter((n) => !n.endsWith("embed_tokens.base_layer.weight"));
    expect(keep.length).toBe(st.names().length - 1);
    const weights = serializeSafetensors(
      Object.fromEntries(
        keep.map((n) => [n, { dtype: "F32" as const, shape: st.info(n).shape, data: st.toFloat32(n) }]),
      ),
    );
    const adapter: PeftAdapter = loadAdapterFiles(readFileSync(`${dir}/adapter_config.json`, "utf8"), weights);
    const info = llama.attachAdapter("embed-mts", adapter);
    try {
      expect(info.replacesLmHead && info.hasEmbedding).toBe(true);
      const expected = readSafetensors(goldenFile("peft-llama-embed-mts", "io.safetensors")).toFloat32("logits");
      expect(relError(solo(llama, PROMPTS[0]!, "embed-mts"), expected)).toBeLessThanOrEqual(1e-4);
      // a mixed batch with it still gives each row its solo logits
      const steps = [
        { ids: PROMPTS[0]!, cache: llama.createCache(), adapter: "embed-mts" },
        { ids: PROMPTS[1]!, cache: llama.createCache(), adapter: null },
      ];
      const out = llama.forward(steps, { logits: "all" });
      expect(bitsEqual(out[0]!, solo(llama, PROMPTS[0]!, "embed-mts"))).toBe(true);
      expect(bitsEqual(out[1]!, solo(llama, PROMPTS[1]!, null))).toBe(true);
    } finally {
      llama.detachAdapter("embed-mts");
    }
    // the embedding base weight given on the module (as a loader reading base_layer tensors gives it) is used too
    const baseLayer = st.names().find((n) => n.endsWith("embed_tokens.base_layer.weight"))!;
    const table = { dtype: "F32" as const, shape: [...st.info(baseLayer).shape], data: st.toFloat32(baseLayer) };
    const modules = adapter.modules.map((m) => (m.kind === "embedding" ? { ...m, baseWeight: table } : m));
    llama.attachAdapter("embed-mts-own", { ...adapter, modules });
    try {
      const expected = readSafetensors(goldenFile("peft-llama-embed-mts", "io.safetensors")).toFloat32("logits");
      expect(relError(solo(llama, PROMPTS[0]!, "embed-mts-own"), expected)).toBeLessThanOrEqual(1e-4);
      expect(llama.adapterInfo("embed-mts-own").bytes).toBeGreaterThan(4 * table.data.length);
    } finally {
      llama.detachAdapter("embed-mts-own");
    }
    // and it is really read: a different table gives other logits
    const doubled = { ...table, data: table.data.map((v) => 2 * v) };
    llama.attachAdapter("embed-mts-2x", {
      ...adapter,
      modules: adapter.modules.map((m) => (m.kind === "embedding" ? { ...m, baseWeight: doubled } : m)),
    });
    try {
      const expected = readSafetensors(goldenFile("peft-llama-embed-mts", "io.safetensors")).toFloat32("logits");
      expect(relError(solo(llama, PROMPTS[0]!, "embed-mts-2x"), expected)).toBeGreaterThan(1e-3);
    } finally {
      llama.detachAdapter("embed-mts-2x");
    }
  });
});

function loadAdapterFiles(config: string, weights: Uint8Array): PeftAdapter {
  return loadPeftAdapter({ config, weights });
}
