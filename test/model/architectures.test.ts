// Architectures without a PEFT reference in the golden set (mistral, qwen2, grouped-query attention) on random
// models from scripts/random-model.mjs, and every error the runtime raises.

import { describe, expect, it } from "vitest";
import { type RandomModel, randomModel, randomPeftAdapter, toSafetensors } from "../../scripts/random-model.mjs";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { parseModelConfig } from "../../src/model/config.js";
import { CausalLM } from "../../src/model/model.js";
import { relError } from "./golden.js";

const TINY = { hidden: 64, layers: 2, heads: 4, vocab: 96, positions: 32, intermediate: 80 };

function build(m: RandomModel, config: Record<string, unknown> = m.config): CausalLM {
  return new CausalLM(config, parseSafetensors(toSafetensors(m.tensors)));
}

function logits(model: CausalLM, ids: number[], adapter: string | null = null): Float32Array {
  return model.forward([{ ids, cache: model.createCache(), adapter }], { logits: "all" })[0]!;
}

const IDS = [3, 14, 15, 92, 65, 35, 8, 9, 79];

describe("architectures", () => {
  it("grouped-query attention equals full attention with the key/value heads repeated", () => {
    const gqa = randomModel({ type: "llama", ...TINY, kvHeads: 2, seed: 3 });
    // the same model with 4 kv heads: head h of k/v_proj is head ⌊h/2⌋ of the GQA model
    const D = TINY.hidden / TINY.heads;
    const expand = (pick: (h: number) => number): RandomModel => {
      const m: RandomModel = { config: { ...gqa.config, num_key_value_heads: 4 }, tensors: new Map(gqa.tensors) };
      const block = D * TINY.hidden; // one head's rows of k_proj / v_proj [D, hidden]
      for (const [name, t] of gqa.tensors) {
        if (!/(k_proj|v_proj)\.weight$/.test(name)) continue;
        const data = new Float32Array(4 * block);
        for (let h = 0; h < 4; h++) data.set(t.data.subarray(pick(h) * block, (pick(h) + 1) * block), h * block);
        m.tensors.set(name, { shape: [4 * D, TINY.hidden], data });
      }
      return m;
    };
    const a = logits(build(gqa), IDS);
    expect(relError(a, logits(build(expand((h) => Math.floor(h / 2))), IDS))).toBeLessThanOrEqual(1e-6);
    // the grouping matters: query heads 0,1 share kv head 0 (HF's repeat_kv), not heads 0,2
    expect(relError(a, logits(build(expand((h) => h % 2)), IDS))).toBeGreaterThan(1e-4);
  });

  it("qwen2 uses its q/k/v biases; mistral runs the llama forward", () => {
    const q = randomModel({ type: "qwen2", ...TINY, kvHeads: 2, seed: 4 });
    const withBias = logits(build(q), IDS);
    const zeroed: RandomModel = { config: q.config, tensors: new Map(q.tensors) };
    for (const [n, t] of q.tensors)
      if (n.endsWith(".bias")) zeroed.tensors.set(n, { shape: t.shape, data: new Float32Array(t.data.length) });
    expect(relError(logits(build(zeroed), IDS), withBias)).toBeGreaterThan(1e-3);
    // a llama model of the same weights without the biases equals qwen2 with zero biases
    const asLlama: RandomModel = {
      config: { ...q.config, model_type: "llama" },
      tensors: new Map([...q.tensors].filter(([n]) => !n.endsWith(".bias"))),
    };
    expect(relError(logits(build(asLlama), IDS), logits(build(zeroed), IDS))).toBeLessThanOrEqual(1e-6);
    const mistral = { ...asLlama.config, model_type: "mistral", sliding_window: null };
    expect(relError(logits(build(asLlama, mistral), IDS), logits(build(asLlama), IDS))).toBe(0);
  });

  it("tied embeddings: gpt2 without lm_head.weight reads wte", () => {
    const g = randomModel({ type: "gpt2", ...TINY, seed: 5 });
    expect(g.tensors.has("lm_head.weight")).toBe(false);
    const model = build(g);
    const out = logits(model, IDS);
    expect(out.length).toBe(IDS.length * TINY.vocab);
    expect(out.every(Number.isFinite)).toBe(true);
  });
});

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
  return "no error";
}

describe("runtime errors", () => {
  const llama = randomModel({ type: "llama", ...TINY, kvHeads: 2, seed: 6 });
  const gpt2 = randomModel({ type: "gpt2", ...TINY, seed: 7 });

  it("unsupported_model names what is not implemented", () => {
    expect(code(() => parseModelConfig({ ...llama.config, model_type: "bert" }))).toMatch(
      /^unsupported_model: config.json: model_type "bert" is not supported \(the runtime runs "llama", "mistral", "qwen2", "gpt2"\)/,
    );
    expect(code(() => parseModelConfig({ ...llama.config, rope_scaling: { rope_type: "llama3", factor: 8 } }))).toMatch(
      /^unsupported_model: config.json: rope_scaling "llama3" is not supported/,
    );
    expect(
      code(() => parseModelConfig({ ...llama.config, rope_parameters: { rope_type: "yarn", rope_theta: 1e4 } })),
    ).toMatch(/rope_scaling "yarn"/);
    // a sliding window is not approximated: sequences stop at it
    expect(parseModelConfig({ ...llama.config, model_type: "mistral", sliding_window: 16 }).maxPositions).toBe(16);
    expect(parseModelConfig({ ...llama.config, model_type: "qwen2", sliding_window: 16 }).maxPositions).toBe(32);
    expect(
      parseModelConfig({ ...llama.config, model_type: "qwen2", sliding_window: 16, use_sliding_window: true })
        .maxPositions,
    ).toBe(16);
    expect(code(() => parseModelConfig({ ...gpt2.config, activation_function: "relu" }))).toMatch(
      /^unsupported_model: .*activation_function "relu"/,
    );
  });

  it("invalid_config collects every bad field", () => {
    const e = code(() => parseModelConfig({ ...llama.config, hidden_size: 0, vocab_size: "many" }));
    expect(e).toMatch(/^invalid_config: config.json: 2 problems/);
    expect(e).toMatch(/hidden_size must be a positive integer, got 0/);
  });

  it("invalid_config: an epsilon below 0, a rotary base or linear factor at or below 0 (NaN logits otherwise)", () => {
    const bad = (extra: object) => code(() => parseModelConfig({ ...llama.config, ...extra }));
    expect(bad({ rms_norm_eps: -1 })).toMatch(
      /^invalid_config: .*rms_norm_eps must be a finite number at least 0, got -1/,
    );
    expect(parseModelConfig({ ...llama.config, rms_norm_eps: 0 }).normEps).toBe(0);
    expect(bad({ rope_theta: 0 })).toMatch(/rope_theta must be a finite number above 0, got 0/);
    expect(bad({ rope_parameters: { rope_type: "default", rope_theta: -5 } })).toMatch(
      /rope_parameters\.rope_theta must be a finite number above 0, got -5/,
    );
    expect(bad({ rope_scaling: { type: "linear", factor: 0 } })).toMatch(
      /rope_scaling\.factor must be a finite number above 0, got 0/,
    );
    expect(code(() => parseModelConfig({ ...gpt2.config, layer_norm_epsilon: -0.5 }))).toMatch(
      /layer_norm_epsilon must be a finite number at least 0, got -0.5/,
    );
  });

  it("missing_tensor and shape_mismatch for a checkpoint that does not fit its config", () => {
    expect(code(() => build(llama, { ...llama.config, num_hidden_layers: 3 }))).toMatch(
      /^missing_tensor: loadCausalLM: the checkpoint has no tensor "model.layers.2.input_layernorm.weight"/,
    );
    expect(code(() => build(llama, { ...llama.config, intermediate_size: 81 }))).toMatch(
      /^shape_mismatch: loadCausalLM: tensor "model.layers.0.mlp.gate_proj.weight" has shape \[80, 64\], expected \[81, 64\]/,
    );
  });

  it("unknown_module and shape_mismatch for adapters that do not fit; duplicate and unknown names", () => {
    const model = build(llama);
    const onGpt2 = randomPeftAdapter(gpt2, ["attn.c_attn"], 4, 1);
    const a = loadPeftAdapter({ config: onGpt2.config, weights: toSafetensors(onGpt2.tensors) });
    expect(code(() => model.attachAdapter("g", a))).toMatch(
      /^unknown_module: CausalLM.attachAdapter: adapter "g" targets linear "transformer.h.0.attn.c_attn", which is not a module of this llama model/,
    );
    const other = randomModel({ type: "llama", ...TINY, hidden: 32, seed: 8 });
    const wrong = randomPeftAdapter(other, ["q_proj"], 4, 2);
    const b = loadPeftAdapter({ config: wrong.config, weights: toSafetensors(wrong.tensors) });
    expect(code(() => model.attachAdapter("w", b))).toMatch(
      /^shape_mismatch: .*module "model.layers.0.self_attn.q_proj" has down \[32, 4\] and up \[4, 32\], expected \[64, r\] and \[r, 64\]/,
    );
    expect(model.adapterNames).toEqual([]);
    const ok = randomPeftAdapter(llama, ["q_proj", "v_proj"], 4, 3);
    const c = loadPeftAdapter({ config: ok.config, weights: toSafetensors(ok.tensors) });
    model.attachAdapter("ok", c);
    expect(code(() => model.attachAdapter("ok", c))).toMatch(/^duplicate_adapter: .*"ok" is already attached/);
    expect(code(() => logits(model, IDS, "nope"))).toMatch(
      /^unknown_adapter: CausalLM.forward: steps\[0\].adapter is "nope", which is not attached \(adapters: "ok"\)/,
    );
    expect(code(() => model.detachAdapter("nope"))).toMatch(/^unknown_adapter/);
    expect(code(() => model.setAdapterScale("ok", Number.NaN))).toMatch(
      /^invalid_argument: .*scale must be a finite number/,
    );
  });

  it("context_length, bad ids and bad caches", () => {
    const model = build(gpt2);
    const cache = model.createCache();
    model.forward([{ ids: new Array(30).fill(1), cache }]);
    expect(code(() => model.forward([{ ids: [1, 2, 3], cache }]))).toMatch(
      /^context_length: CausalLM.forward: steps\[0\] would reach position 33, expected at most 32 .*the cache holds 30/,
    );
    expect(cache.length).toBe(30);
    expect(code(() => model.forward([{ ids: [96], cache: model.createCache() }]))).toMatch(
      /^invalid_argument: .*holds 96, expected token ids in \[0, 95\]/,
    );
    expect(code(() => model.forward([{ ids: [], cache: model.createCache() }]))).toMatch(
      /non-empty array of token ids/,
    );
    const c2 = model.createCache();
    expect(
      code(() =>
        model.forward([
          { ids: [1], cache: c2 },
          { ids: [2], cache: c2 },
        ]),
      ),
    ).toMatch(/used twice/);
    const otherCache = build(llama).createCache();
    expect(code(() => model.forward([{ ids: [1], cache: otherCache }]))).toMatch(
      /is a cache of another model.*expected a cache of this model/,
    );
  });
});
