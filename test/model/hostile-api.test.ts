// The runtime's public API used carelessly or with hostile values (an adversarial pass over src/model): every
// refusal has its code and a message naming the argument, and a refused or failed call changes nothing —
// caches, scales, weights and the caller's own objects stay as they were.

import { describe, expect, it } from "vitest";
import { randomModel, randomPeftAdapter, toSafetensors } from "../../scripts/random-model.mjs";
import { loadPeftAdapter, type PeftAdapter, type PeftModuleAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { AdapterCache } from "../../src/model/adapter-cache.js";
import { generateAll } from "../../src/model/generate.js";
import { ADVANCE } from "../../src/model/kv-cache.js";
import { CausalLM } from "../../src/model/model.js";
import { caught } from "../helpers/errors.js";

const TINY = { hidden: 64, layers: 2, heads: 4, vocab: 96, positions: 32, intermediate: 80 };
const llama = randomModel({ type: "llama", ...TINY, kvHeads: 2, seed: 11 });
const build = () => new CausalLM(llama.config, parseSafetensors(toSafetensors(llama.tensors)));
const IDS = [3, 14, 15, 92, 65];

function adapter(seed = 1, modules = ["q_proj", "v_proj"]): PeftAdapter {
  const a = randomPeftAdapter(llama, modules, 4, seed);
  return loadPeftAdapter({ config: a.config, weights: toSafetensors(a.tensors) });
}

// "code: message" of the LoraError fn throws (a raw TypeError fails the test)
function code(fn: () => unknown): string {
  const e = caught(fn);
  return `${e.code}: ${e.message}`;
}

const run = (m: CausalLM, adapterName: string | null = null) =>
  m.forward([{ ids: IDS, cache: m.createCache(), adapter: adapterName }], { logits: "all" })[0]!;

// An embedding LoRA module for the model's embed_tokens: down [vocab, r], up [r, hidden]
function embeddingModule(r = 2): PeftModuleAdapter {
  const V = TINY.vocab;
  const H = TINY.hidden;
  return {
    modulePath: "model.embed_tokens",
    kind: "embedding",
    down: { data: new Float32Array(V * r).map((_, i) => ((i % 7) - 3) / 10), rows: V, cols: r },
    up: { data: new Float32Array(r * H).map((_, i) => ((i % 5) - 2) / 10), rows: r, cols: H },
    r,
    alpha: r,
    scaling: 1,
    fanInFanOut: false,
    dtype: "F32",
  };
}

describe("CausalLM.forward: a failed step changes no cache", () => {
  it("a throw after the layers (in the logits) leaves every cache's length as it was", () => {
    const model = build();
    const cache = model.createCache();
    model.forward([{ ids: [1, 2], cache }]);
    const broken = model as unknown as { logits: () => never };
    const logits = broken.logits;
    broken.logits = () => {
      throw new Error("injected");
    };
    expect(() => model.forward([{ ids: [3, 4], cache }])).toThrow("injected");
    expect(cache.length).toBe(2);
    broken.logits = logits;
    const again = model.forward([{ ids: [3, 4], cache }], { logits: "all" })[0]!;
    const fresh = model.forward([{ ids: [1, 2, 3, 4], cache: model.createCache() }], { logits: "all" })[0]!;
    expect(again).toEqual(fresh.subarray(2 * TINY.vocab));
  });

  it("options: logits other than last/all is refused; null options mean the defaults", () => {
    const model = build();
    expect(code(() => model.forward([{ ids: [1], cache: model.createCache() }], { logits: "ALL" as "all" }))).toBe(
      'invalid_argument: CausalLM.forward: options.logits is "ALL", expected "last" or "all"',
    );
    const plain = model.forward([{ ids: [1], cache: model.createCache() }])[0]!;
    expect(model.forward([{ ids: [1], cache: model.createCache() }], null as never)[0]).toEqual(plain);
  });

  it("holey steps, and a cache of another model of the same shape, are refused", () => {
    const model = build();
    const twin = build();
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const holey = [{ ids: [1], cache: model.createCache() }, , { ids: [2], cache: model.createCache() }];
    expect(code(() => model.forward(holey as never))).toMatch(
      /^invalid_argument: CausalLM.forward: steps\[1\].ids must be a non-empty array/,
    );
    const other = twin.createCache();
    expect(code(() => model.forward([{ ids: [1], cache: other }]))).toMatch(
      /^invalid_argument: CausalLM.forward: steps\[0\].cache is a cache of another model .*expected a cache of this model/,
    );
    expect(other.length).toBe(0);
  });
});

describe("KvCache: its length only the model raises", () => {
  it("truncate and length refuse what is not a count; createCache and reserve refuse absurd sizes", () => {
    const model = build();
    const cache = model.createCache();
    model.forward([{ ids: [1, 2, 3], cache }]);
    for (const bad of [Number.NaN, undefined, "abc", -2, 1.5])
      expect(code(() => cache.truncate(bad as number))).toMatch(
        /^invalid_argument: KvCache.truncate: length is .*, expected an integer ≥ 0 \(the cache holds 3 positions\)/,
      );
    expect(code(() => cache.truncate(Number.NaN))).toMatch(/length is NaN/);
    expect(code(() => (cache.length = 30))).toMatch(/^invalid_argument: KvCache.length: cannot be raised to 30/);
    expect(cache.length).toBe(3);
    cache.length = 1; // lowering is truncating
    expect(cache.length).toBe(1);
    expect(code(() => cache.reserve(1e12))).toMatch(/^invalid_argument: KvCache.reserve: extra is 1000000000000/);
    expect(code(() => model.createCache(-1))).toMatch(
      /^invalid_argument: CausalLM.createCache: initialCapacity is -1, expected an integer ≥ 0/,
    );
    // more than the model's context is never needed: the capacity stops there
    expect(model.createCache(1e12).bytes).toBe(model.createCache(TINY.positions).bytes);
    cache[ADVANCE](0);
  });
});

describe("attachAdapter: checked, then copied", () => {
  it("refuses null adapters and options, NaN factors, scalings float32 cannot hold, and data that does not fit", () => {
    const model = build();
    expect(code(() => model.attachAdapter("a", null as never))).toMatch(
      /^invalid_argument: CausalLM.attachAdapter: adapter is null, expected a loaded adapter with modules/,
    );
    expect(code(() => model.attachAdapter("a", {} as never))).toMatch(/adapter is an object, expected/);
    expect(code(() => model.attachAdapter("a", adapter(), null as never))).toMatch(
      /^invalid_argument: CausalLM.attachAdapter: options is null, expected \{ scale \}/,
    );
    expect(code(() => model.attachAdapter("a", adapter(), { scale: 1e39 }))).toMatch(
      /^invalid_argument: CausalLM.attachAdapter: scale 1e\+39 × the file's scaling 2 of adapter "a" module ".*" is 2e\+39, expected a factor float32 can hold/,
    );
    const nan = adapter();
    nan.modules[1]!.up.data[5] = Number.NaN;
    expect(code(() => model.attachAdapter("a", nan))).toMatch(
      /^non_finite: CausalLM.attachAdapter: adapter "a" model.layers.0.self_attn.v_proj up holds NaN at index 5, expected finite values/,
    );
    const short = adapter();
    short.modules.push({ ...embeddingModule(), down: { data: new Float32Array(5), rows: TINY.vocab, cols: 2 } });
    expect(code(() => model.attachAdapter("a", short))).toMatch(
      /^data_length_mismatch: .*module "model.embed_tokens": down holds 5 values, expected rows × cols = 96 × 2/,
    );
    const ints = adapter();
    ints.modules.push({ ...embeddingModule(), up: { data: new Int32Array(128), rows: 2, cols: 64 } as never });
    expect(code(() => model.attachAdapter("a", ints))).toMatch(
      /^invalid_argument: .*module "model.embed_tokens": up is a Int32Array, expected a matrix \{ data: Float32Array/,
    );
    const rank = adapter();
    rank.modules.push({ ...embeddingModule(), r: 3 });
    expect(code(() => model.attachAdapter("a", rank))).toMatch(/^shape_mismatch: .*r 3, expected down \[dIn, r\]/);
    const head = adapter();
    head.modulesToSave.set("lm_head.weight", {
      dtype: "F32",
      shape: [TINY.vocab, TINY.hidden],
      data: new Float64Array(TINY.vocab * TINY.hidden) as never,
    });
    expect(code(() => model.attachAdapter("a", head))).toMatch(
      /^data_length_mismatch: .*saves "lm_head.weight" as a Float64Array, expected a Float32Array of 6144 values/,
    );
    const dora = adapter();
    dora.modules[0]!.magnitude = new Float32Array(TINY.hidden - 1).fill(1);
    expect(code(() => model.attachAdapter("a", dora))).toMatch(
      /^shape_mismatch: .*adapter "a" saves "model.layers.0.self_attn.q_proj magnitude" with shape \[63\], expected \[64\] \(the model's\)/,
    );
    const twice = adapter();
    twice.modules.push({ ...twice.modules[0]!, modulePath: `base_model.model.${twice.modules[0]!.modulePath}` });
    expect(code(() => model.attachAdapter("a", twice))).toMatch(
      /^duplicate_name: .*adapts module "base_model.model.model.layers.0.self_attn.q_proj" twice/,
    );
    expect(model.adapterNames).toEqual([]);
    expect(run(model)).toEqual(run(build()));
  });

  it("what the caller changes afterwards (factors, embedding LoRA, saved lm_head) does not reach the model", () => {
    const model = build();
    const a = adapter();
    a.modules.push(embeddingModule());
    const head = new Float32Array(TINY.vocab * TINY.hidden).map((_, i) => Math.sin(i) / 10);
    a.modulesToSave.set("lm_head.weight", { dtype: "F32", shape: [TINY.vocab, TINY.hidden], data: head });
    model.attachAdapter("a", a);
    const before = run(model, "a");
    for (const m of a.modules) {
      m.down.data.fill(7);
      m.up.data.fill(7);
    }
    head.fill(3);
    expect(run(model, "a")).toEqual(before);
  });

  it("setAdapterScale: a refused scale leaves the old one; no scale is an error, not 1", () => {
    const model = build();
    const a = adapter();
    a.modules.push(embeddingModule());
    model.attachAdapter("a", a, { scale: 0.5 });
    const before = run(model, "a");
    expect(code(() => model.setAdapterScale("a", 1e39))).toMatch(
      /^invalid_argument: CausalLM.setAdapterScale: scale 1e\+39 × the file's scaling 2 .* expected a factor float32 can hold/,
    );
    expect(code(() => model.setAdapterScale("a", undefined as never))).toBe(
      "invalid_argument: CausalLM.setAdapterScale: scale is undefined, expected a finite number",
    );
    expect(model.adapterInfo("a").scale).toBe(0.5);
    expect(run(model, "a")).toEqual(before);
    model.setAdapterScale("a", 2);
    model.setAdapterScale("a", 0.5);
    expect(run(model, "a")).toEqual(before);
  });
});

describe("mergeAdapter: a merge that would overflow changes no weight", () => {
  it("checks every layer before merging any, so the base is bit for bit what it was", () => {
    const model = build();
    const base = run(model);
    const a = adapter(3, ["q_proj"]);
    // layer 0: a large but finite update; layer 1: one whose W + ΔW overflows float32
    for (const x of [a.modules[0]!.down.data, a.modules[0]!.up.data]) for (let i = 0; i < x.length; i++) x[i]! *= 300;
    a.modules[1]!.down.data.fill(1e20);
    a.modules[1]!.up.data.fill(1e20);
    model.attachAdapter("big", a);
    expect(code(() => model.mergeAdapter("big"))).toMatch(
      /^non_finite: CausalLM.mergeAdapter: merging adapter "big" into model.layers.1.self_attn.q_proj would make its weight non-finite .*nothing was merged/,
    );
    expect(model.mergedAdapter).toBe(null);
    expect(run(model)).toEqual(base);
  });
});

describe("generate: every option and request checked", () => {
  const model = build();
  const one = [{ ids: [1, 2] }];
  it.each([
    [{ seed: Number.NaN }, /seed is NaN, expected an integer/],
    [{ seed: Number.POSITIVE_INFINITY }, /seed is Infinity/],
    [{ seed: "abc" }, /seed is "abc"/],
    [{ seed: 1.5 }, /seed is 1.5/],
    [{ stop: 5 }, /stop is 5, expected an array of token ids in \[0, 95\]/],
    [{ stop: "12" }, /stop is "12"/],
    [{ stop: [null] }, /stop\[0\] is null, expected a token id in \[0, 95\]/],
    [{ stop: [-1] }, /stop\[0\] is -1/],
    [{ stop: [1e9] }, /stop\[0\] is 1000000000/],
    [{ temperature: Number.NaN }, /temperature is NaN/],
  ])("options %o are refused", (options, message) => {
    const e = code(() => generateAll(model, one, options as never));
    expect(e).toMatch(/^invalid_argument: generate: /);
    expect(e).toMatch(message);
  });

  it("requests that are not a list of {ids} are refused", () => {
    expect(code(() => generateAll(model, null as never))).toMatch(
      /^invalid_argument: generate: requests is null, expected an array/,
    );
    expect(code(() => generateAll(model, [{}] as never))).toMatch(
      /^invalid_argument: generate: requests\[0\].ids is undefined, expected a non-empty array of token ids/,
    );
    expect(code(() => generateAll(model, [null] as never))).toMatch(/requests\[0\] is null/);
    expect(code(() => generateAll(model, [{ ids: [1], seed: 0.5 }]))).toMatch(/requests\[0\].seed is 0.5/);
    expect(generateAll(model, [{ ids: [1], seed: -5 }], { maxTokens: 2 })[0]!.length).toBe(2);
  });
});

describe("constructors and the adapter cache", () => {
  it("new CausalLM without tensor files, and AdapterCache.acquire without a list, are refused", async () => {
    expect(code(() => new CausalLM(llama.config, null as never))).toMatch(
      /^invalid_argument: CausalLM: source is null, expected a tensor file/,
    );
    expect(code(() => new CausalLM(llama.config, [{}] as never))).toMatch(/source\[0\] is an object/);
    expect(code(() => new CausalLM(llama.config, [] as never))).toMatch(/source is an empty array/);
    const cache = new AdapterCache(build(), { maxBytes: 1e9, load: () => adapter() });
    await expect(cache.acquire(null as never)).rejects.toMatchObject({
      code: "invalid_argument",
      message: "AdapterCache.acquire: names is null, expected an array of adapter names (or nulls)",
    });
  });

  it("an adapter of the cache detached directly is forgotten, not an error on every later call", async () => {
    const model = build();
    const cache = new AdapterCache(model, { maxBytes: 1e9, load: (n) => adapter(n.length) });
    await cache.acquire(["x"]);
    model.detachAdapter("x");
    await cache.acquire(["y"]);
    expect(cache.names).toEqual(["y"]);
    expect(cache.bytes).toBe(model.adapterInfo("y").bytes);
    await cache.acquire(["x"]);
    expect(model.adapterNames.sort()).toEqual(["x", "y"]);
  });
});
