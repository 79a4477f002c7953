// Property: saving never changes what an adapter computes. Any adapter loaded from a supported format (PEFT with
// random r / alpha / rank_pattern / alpha_pattern / rsLoRA / DoRA / fan_in_fan_out / embeddings, or MLX-LM with a
// random scale), saved with its own config or with an unrelated one ({r: 8, lora_alpha: 16}, use_rslora, nothing),
// and loaded again has, per module, the same r, scaling bits, layout, kind and factor bits. Plus the refusals.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LoraError } from "../../src/errors.js";
import { loadMlxAdapter } from "../../src/io/mlx-adapter.js";
import { loadPeftAdapter, type PeftModuleAdapter } from "../../src/io/peft-adapter.js";
import { moduleHyperparams, parsePeftConfig } from "../../src/io/peft-config.js";
import { savePeftAdapter } from "../../src/io/peft-save.js";
import { serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { SEED } from "../helpers/seed.js";

const PATHS = [
  "model.layers.0.self_attn.q_proj",
  "model.layers.1.self_attn.q_proj",
  "model.layers.0.self_attn.v_proj",
  "model.layers.10.mlp.down_proj",
  "model.layers.1.mlp.down_proj",
];
const value = fc.float({ noNaN: true, noDefaultInfinity: true, min: -4, max: 4 });
const values = (n: number) => fc.array(value, { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));

const peftCase = fc.record({
  r: fc.integer({ min: 1, max: 4 }),
  alpha: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.double({ min: 0.1, max: 100, noNaN: true })),
  rslora: fc.boolean(),
  dora: fc.boolean(),
  fif: fc.boolean(),
  embedding: fc.boolean(),
  count: fc.integer({ min: 1, max: PATHS.length }),
  rankPattern: fc.dictionary(
    fc.constantFrom("q_proj", "down_proj", "layers.1.*", "model.layers.1.mlp.down_proj"),
    fc.integer({ min: 1, max: 4 }),
  ),
  alphaPattern: fc.dictionary(fc.constantFrom("v_proj", "mlp.*", "q_proj"), fc.integer({ min: 1, max: 32 })),
  dims: fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })), {
    minLength: 6,
    maxLength: 6,
  }),
  seed: fc.integer(),
});

function peftAdapter(
  c: fc.Arbitrary<unknown> extends never ? never : typeof peftCase extends fc.Arbitrary<infer T> ? T : never,
) {
  const config = {
    peft_type: "LORA",
    r: c.r,
    lora_alpha: c.alpha,
    use_rslora: c.rslora,
    use_dora: c.dora,
    fan_in_fan_out: c.fif,
    rank_pattern: c.rankPattern,
    alpha_pattern: c.alphaPattern,
  };
  const parsed = parsePeftConfig(config).config;
  const gen = fc.sample(fc.array(value, { minLength: 4096, maxLength: 4096 }), { seed: c.seed, numRuns: 1 })[0]!;
  let at = 0;
  const take = (n: number) => Float32Array.from({ length: n }, () => gen[at++ % gen.length]!);
  const t: Record<string, TensorToWrite> = {};
  PATHS.slice(0, c.count).forEach((path, k) => {
    const r = moduleHyperparams(parsed, path).r;
    const [dIn, dOut] = c.dims[k]!;
    const p = `base_model.model.${path}`;
    t[`${p}.lora_A.weight`] = { dtype: "F32", shape: [r, dIn], data: take(r * dIn) };
    t[`${p}.lora_B.weight`] = { dtype: "F32", shape: [dOut, r], data: take(dOut * r) };
    if (c.dora) t[`${p}.lora_magnitude_vector`] = { dtype: "F32", shape: [dOut], data: take(dOut).map(Math.abs) };
  });
  if (c.embedding && !c.dora) {
    const r = moduleHyperparams(parsed, "model.embed_tokens").r;
    t["base_model.model.model.embed_tokens.lora_embedding_A"] = { dtype: "BF16", shape: [r, 5], data: take(r * 5) };
    t["base_model.model.model.embed_tokens.lora_embedding_B"] = { dtype: "BF16", shape: [3, r], data: take(3 * r) };
  }
  return loadPeftAdapter({ config, weights: serializeSafetensors(t, { format: "pt" }) });
}

const mlxCase = fc.record({
  rank: fc.integer({ min: 1, max: 4 }),
  scale: fc.double({ min: 0.01, max: 100, noNaN: true }),
  count: fc.integer({ min: 1, max: PATHS.length }),
  a: values(64),
});

function mlxAdapter(c: typeof mlxCase extends fc.Arbitrary<infer T> ? T : never) {
  const t: Record<string, TensorToWrite> = {};
  for (const path of PATHS.slice(0, c.count)) {
    t[`${path}.lora_a`] = { dtype: "F32", shape: [3, c.rank], data: c.a.slice(0, 3 * c.rank) };
    t[`${path}.lora_b`] = { dtype: "F32", shape: [c.rank, 2], data: c.a.slice(16, 16 + 2 * c.rank) };
  }
  return loadMlxAdapter({
    config: { fine_tune_type: "lora", num_layers: 2, lora_parameters: { rank: c.rank, alpha: 16, scale: c.scale } },
    weights: serializeSafetensors(t),
  });
}

const bits = (a: Float32Array | undefined) =>
  a === undefined ? [] : [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
function facts(modules: readonly PeftModuleAdapter[]) {
  return [...modules]
    .sort((x, y) => (x.modulePath < y.modulePath ? -1 : 1))
    .map((m) => ({
      path: m.modulePath,
      kind: m.kind,
      r: m.r,
      scaling: m.scaling,
      fanInFanOut: m.kind === "linear" ? m.fanInFanOut : null,
      dtype: m.dtype,
      down: bits(m.down.data),
      up: bits(m.up.data),
      magnitude: bits(m.magnitude),
    }));
}

// A config that forces use_rslora may be refused when a scaling is not alpha/√r for any double alpha: then the
// refusal must say so (config_conflict naming use_rslora); anything else must save.
function saveOrRslora(modules: readonly PeftModuleAdapter[], config: object) {
  try {
    return savePeftAdapter(modules, config);
  } catch (e) {
    const forced = "use_rslora" in config && (config as { use_rslora: unknown }).use_rslora === true;
    if (!forced || !(e instanceof LoraError) || e.code !== "config_conflict" || !/use_rslora true/.test(e.message))
      throw e;
    return null;
  }
}

const otherConfigs = [
  { peft_type: "LORA", r: 8, lora_alpha: 16 },
  { peft_type: "LORA", use_rslora: true },
  { peft_type: "LORA" },
];

describe("saving never changes what an adapter computes (property)", () => {
  it("PEFT adapters: save with their own or an unrelated config, load again: same r, scaling, layout, bits", () => {
    fc.assert(
      fc.property(peftCase, fc.integer({ min: 0, max: otherConfigs.length }), (c, which) => {
        const a = peftAdapter(c);
        const config = which === otherConfigs.length ? a.config : otherConfigs[which]!;
        const saved = saveOrRslora(a.modules, config);
        if (saved === null) return;
        const b = loadPeftAdapter({ config: saved.configJson, weights: saved.weights });
        expect(facts(b.modules)).toEqual(facts(a.modules));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("MLX-LM adapters: the same after saving as PEFT", () => {
    fc.assert(
      fc.property(mlxCase, fc.integer({ min: 0, max: otherConfigs.length - 1 }), (c, which) => {
        const a = mlxAdapter(c);
        const saved = saveOrRslora(a.modules, otherConfigs[which]!);
        if (saved === null) return;
        const b = loadPeftAdapter({ config: saved.configJson, weights: saved.weights });
        expect(facts(b.modules)).toEqual(facts(a.modules));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("the issue's case: MLX scaling 20 saved with {r: 8, lora_alpha: 16} stays 20", () => {
    const t: Record<string, TensorToWrite> = {
      "m.q_proj.lora_a": { dtype: "F32", shape: [2, 8], data: new Float32Array(16).fill(1) },
      "m.q_proj.lora_b": { dtype: "F32", shape: [8, 2], data: new Float32Array(16).fill(1) },
    };
    const mlx = loadMlxAdapter({
      config: { num_layers: 1, lora_parameters: { rank: 8, scale: 20 } },
      weights: serializeSafetensors(t),
    });
    const saved = savePeftAdapter(mlx.modules, { peft_type: "LORA", r: 8, lora_alpha: 16 });
    expect(JSON.parse(saved.configJson).alpha_pattern).toEqual({ "m\\.q_proj": 160 });
    expect(loadPeftAdapter({ config: saved.configJson, weights: saved.weights }).modules[0]!.scaling).toBe(20);
  });
});

describe("config_conflict: a config that contradicts the modules is refused", () => {
  const gpt2 = loadPeftAdapter({
    config: { peft_type: "LORA", r: 1, fan_in_fan_out: true },
    weights: serializeSafetensors({
      "base_model.model.h.0.attn.c_proj.lora_A.weight": { dtype: "F32", shape: [1, 2], data: new Float32Array(2) },
      "base_model.model.h.0.attn.c_proj.lora_B.weight": { dtype: "F32", shape: [2, 1], data: new Float32Array(2) },
    }),
  });

  function refused(f: () => unknown): LoraError {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(LoraError);
      expect((e as LoraError).code).toBe("config_conflict");
      return e as LoraError;
    }
    throw new Error("expected config_conflict");
  }

  it("a config without fan_in_fan_out writes true for GPT-2 modules; one saying false is refused", () => {
    const saved = savePeftAdapter(gpt2.modules, { peft_type: "LORA", r: 1 });
    expect(JSON.parse(saved.configJson).fan_in_fan_out).toBe(true);
    const e = refused(() => savePeftAdapter(gpt2.modules, { peft_type: "LORA", fan_in_fan_out: false }));
    expect(e.message).toMatch(
      /savePeftAdapter: the config has fan_in_fan_out false but the modules are stored \[dIn, dOut\] \(fan_in_fan_out, Conv1D\)/,
    );
  });

  it("use_dora that contradicts the magnitudes, modules that mix layouts", () => {
    const e1 = refused(() => savePeftAdapter(gpt2.modules, { peft_type: "LORA", use_dora: true }));
    expect(e1.message).toMatch(/the config has use_dora true but the modules are plain LoRA \(no magnitude\)/);
    const mixed = [gpt2.modules[0]!, { ...gpt2.modules[0]!, modulePath: "h.1.attn.c_proj", fanInFanOut: false }];
    const e2 = refused(() => savePeftAdapter(mixed, { peft_type: "LORA" }));
    expect(e2.message).toMatch(
      /the modules mix stored \[dIn, dOut\] .* and stored \[dOut, dIn\] .*, which one fan_in_fan_out cannot express/,
    );
  });

  it("a non-finite scaling", () => {
    const bad = [{ ...gpt2.modules[0]!, scaling: Number.POSITIVE_INFINITY }];
    const e = refused(() => savePeftAdapter(bad, { peft_type: "LORA" }));
    expect(e.message).toMatch(/module "h\.0\.attn\.c_proj" has scaling Infinity, expected a finite number/);
  });
});

describe("bias derived from the modules", () => {
  const withBias = loadPeftAdapter({
    config: { peft_type: "LORA", r: 1, bias: "lora_only" },
    weights: serializeSafetensors({
      "base_model.model.m.lora_A.weight": { dtype: "F32", shape: [1, 2], data: new Float32Array(2) },
      "base_model.model.m.lora_B.weight": { dtype: "F32", shape: [2, 1], data: new Float32Array(2) },
      "base_model.model.m.base_layer.bias": { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) },
    }),
  });

  it('modules with their own bias saved with a config that does not set bias: bias "lora_only"', () => {
    const saved = savePeftAdapter(withBias.modules, { peft_type: "LORA", r: 1 });
    expect(JSON.parse(saved.configJson).bias).toBe("lora_only");
    const back = loadPeftAdapter({ config: saved.configJson, weights: saved.weights });
    expect([...back.modules[0]!.bias!]).toEqual([1, 2]);
  });

  it('config_conflict: bias "none" set explicitly', () => {
    let err: unknown;
    try {
      savePeftAdapter(withBias.modules, { peft_type: "LORA", bias: "none" });
    } catch (e) {
      err = e;
    }
    expect((err as LoraError).code).toBe("config_conflict");
    expect((err as LoraError).message).toMatch(/the config has bias "none" but modules carry their own bias/);
  });
});
