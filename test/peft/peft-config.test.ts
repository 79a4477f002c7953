import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import {
  moduleHyperparams,
  parsePeftConfig,
  patternKeyFor,
  peftScaling,
  targetsModule,
} from "../../src/io/peft-config.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/peft/", import.meta.url));

function configsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...configsUnder(p));
    else if (e === "adapter_config.json") out.push(p);
  }
  return out.sort();
}

function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("parsePeftConfig on the real PEFT configs", () => {
  const files = configsUnder(join(FIXTURES, "method_comparison"));
  it("finds all 15 method_comparison configs", () => expect(files).toHaveLength(15));

  const refusedMethod = (f: string) => f.includes("bdlora") || f.includes("kasa");
  const rejected = files.filter((f) => f.includes("bdlora"));
  const accepted = files.filter((f) => !refusedMethod(f));
  it.each(accepted.map((f) => [f.slice(FIXTURES.length), f]))("accepts %s", (_name, file) => {
    const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    const { config, warnings } = parsePeftConfig(readFileSync(file, "utf8"));
    expect(config.r).toBe(raw.r);
    expect(config.loraAlpha).toBe(raw.lora_alpha);
    expect(config.useDora).toBe(raw.use_dora ?? false);
    expect(config.useRslora).toBe(raw.use_rslora ?? false);
    // every key of these files is a LoraConfig field
    expect(warnings).toEqual([]);
  });

  it("refuses the KaSA configs by name (a method lorakit does not compute)", () => {
    const kasa = files.filter((f) => f.includes("kasa"));
    expect(kasa).toHaveLength(2);
    for (const f of kasa) {
      const e = configError(() => parsePeftConfig(readFileSync(f, "utf8")));
      expect(e.issues).toEqual([expect.objectContaining({ path: ["kasa_config"] })]);
      expect(e.message).toMatch(/kasa_config is an object: KaSA .* is not supported by lorakit/);
    }
  });

  it("rejects the object-valued use_bdlora config with a ConfigError naming the path", () => {
    expect(rejected).toHaveLength(1);
    const e = configError(() => parsePeftConfig(readFileSync(rejected[0]!, "utf8")));
    expect(e.code).toBe("invalid_config");
    expect(e.message).toMatch(
      /use_bdlora is an object: block-diagonal LoRA is not supported by lorakit \(path: use_bdlora\)/,
    );
    expect(e.issues).toEqual([expect.objectContaining({ path: ["use_bdlora"] })]);
  });

  it("reads the special cases: null targets, rsLoRA scaling 8, DoRA, init 'mica', duplicates, dotted names", () => {
    const mm = join(FIXTURES, "method_comparison", "MetaMathQA", "lora");
    const rs = parsePeftConfig(readFileSync(join(mm, "llama-3.2-3B-rank64-rslora", "adapter_config.json"), "utf8"));
    expect(rs.config.targetModules).toBeNull();
    expect(peftScaling(rs.config.loraAlpha, rs.config.r, rs.config.useRslora)).toBe(8);
    const mica = parsePeftConfig(readFileSync(join(mm, "llama-3.2-3B-rank32-mica", "adapter_config.json"), "utf8"));
    expect(mica.config.initLoraWeights).toBe("mica");
    const flux = join(FIXTURES, "method_comparison", "image-gen", "lora", "flux2-klein-default", "adapter_config.json");
    const fx = parsePeftConfig(readFileSync(flux, "utf8")).config;
    expect(fx.targetModules).toHaveLength(11); // 12 entries, "to_add_out" twice
    expect(targetsModule(fx.targetModules, "transformer_blocks.0.attn.to_out.0")).toBe(true);
    expect(targetsModule(fx.targetModules, "transformer_blocks.0.attn.to_out.1")).toBe(false);
  });

  it("fills defaults for the old ESM2 config (no use_rslora, use_dora, lora_bias, patterns)", () => {
    const { config, warnings } = parsePeftConfig(
      readFileSync(join(FIXTURES, "esm2-bindingsites", "adapter_config.json"), "utf8"),
    );
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({ r: 2, loraAlpha: 1, useRslora: false, useDora: false, loraBias: false });
    expect(config.rankPattern.size).toBe(0);
    expect(config.targetModules).toEqual(["query", "key", "value"]);
  });

  it("reads the GPT-2 adapter config", () => {
    const { config, warnings } = parsePeftConfig(
      readFileSync(join(FIXTURES, "gpt2-tigrinya-lora", "adapter_config.json"), "utf8"),
    );
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({ r: 8, loraAlpha: 32, fanInFanOut: true, targetModules: ["c_attn", "c_proj"] });
    expect(targetsModule(config.targetModules, "transformer.h.0.attn.c_proj")).toBe(true);
    expect(targetsModule(config.targetModules, "transformer.h.0.mlp.c_proj")).toBe(true);
    expect(targetsModule(config.targetModules, "transformer.h.0.mlp.c_fc")).toBe(false);
  });
});

describe("parsePeftConfig defaults and errors", () => {
  it("defaults r = 8, lora_alpha = 8 (scaling 1) for the documented minimum", () => {
    const { config } = parsePeftConfig({ peft_type: "LORA", target_modules: ["q_proj"] });
    expect(config).toMatchObject({ r: 8, loraAlpha: 8, bias: "none", fanInFanOut: false, initLoraWeights: true });
    expect(peftScaling(config.loraAlpha, config.r, config.useRslora)).toBe(1);
  });

  it("collects every problem with its path in one ConfigError", () => {
    const e = configError(() =>
      parsePeftConfig({
        r: 0,
        lora_alpha: "big",
        use_rslora: "yes",
        bias: "some",
        rank_pattern: { q_proj: 2.5, "(": 3 },
        target_modules: ["q", 7],
        lora_dropout: 1.5,
        use_qalora: true,
        layer_replication: [[0, 4]],
        init_lora_weights: 3,
      }),
    );
    expect(e.code).toBe("invalid_config");
    const paths = e.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(
      expect.arrayContaining([
        "peft_type",
        "r",
        "lora_alpha",
        "use_rslora",
        "bias",
        "rank_pattern.q_proj",
        "rank_pattern.(",
        "target_modules.1",
        "lora_dropout",
        "use_qalora",
        "layer_replication",
        "init_lora_weights",
      ]),
    );
    expect(e.message).toMatch(/^adapter_config\.json: \d+ problems:/);
    expect(e.message).toMatch(/r must be a positive integer, got 0 \(path: r\)/);
    expect(e.message).toMatch(/peft_type is required \(expected "LORA"\) \(path: peft_type\)/);
  });

  it("rejects malformed JSON, non-objects and other PEFT types", () => {
    expect(configError(() => parsePeftConfig("{nope")).message).toMatch(/^adapter_config\.json: malformed JSON/);
    expect(configError(() => parsePeftConfig("[1]")).message).toMatch(/expected a JSON object, got an array/);
    const e = configError(() => parsePeftConfig({ peft_type: "IA3" }));
    expect(e.code).toBe("invalid_config");
    expect(e.message).toMatch(/peft_type must be "LORA", got "IA3"/);
  });

  it("rejects lora_bias, aLoRA, target_parameters and trainable tokens", () => {
    const e = configError(() =>
      parsePeftConfig({
        peft_type: "LORA",
        lora_bias: true,
        alora_invocation_tokens: [1, 2],
        target_parameters: ["experts.gate_up_proj"],
        trainable_token_indices: [5],
      }),
    );
    expect(e.issues.map((i) => i.path[0])).toEqual([
      "alora_invocation_tokens",
      "lora_bias",
      "target_parameters",
      "trainable_token_indices",
    ]);
  });

  it("accepts unset variant keys (false, null, empty)", () => {
    const { config } = parsePeftConfig({
      peft_type: "LORA",
      use_qalora: false,
      use_bdlora: null,
      layer_replication: null,
      target_parameters: [],
      trainable_token_indices: null,
    });
    expect(config.r).toBe(8);
  });
});

describe("rank_pattern / alpha_pattern matching (PEFT get_pattern_key)", () => {
  const { config } = parsePeftConfig({
    peft_type: "LORA",
    r: 8,
    lora_alpha: 16,
    rank_pattern: { q_proj: 4, "^model.decoder.layers.0.encoder_attn.k_proj": 2, "layers\\.1\\..*v_proj": 6 },
    alpha_pattern: { v_proj: 3 },
  });

  it("a plain key matches every module ending in it, at a segment boundary", () => {
    expect(moduleHyperparams(config, "model.layers.0.self_attn.q_proj")).toEqual({ r: 4, alpha: 16 });
    expect(moduleHyperparams(config, "q_proj")).toEqual({ r: 4, alpha: 16 });
    expect(moduleHyperparams(config, "model.layers.0.self_attn.xq_proj")).toEqual({ r: 8, alpha: 16 });
  });

  it("an anchored key matches only that module", () => {
    expect(moduleHyperparams(config, "model.decoder.layers.0.encoder_attn.k_proj")).toEqual({ r: 2, alpha: 16 });
    expect(moduleHyperparams(config, "x.model.decoder.layers.0.encoder_attn.k_proj")).toEqual({ r: 8, alpha: 16 });
  });

  it("the first matching key in insertion order wins; rank and alpha are matched separately", () => {
    expect(moduleHyperparams(config, "model.layers.1.self_attn.v_proj")).toEqual({ r: 6, alpha: 3 });
    expect(patternKeyFor(["proj", "v_proj"], "a.v_proj")).toBe("v_proj");
    expect(patternKeyFor(["v_proj", ".*proj"], "a.v_proj")).toBe("v_proj");
    expect(patternKeyFor([".*proj", "v_proj"], "a.v_proj")).toBe(".*proj");
  });

  it("scaling: alpha / r and alpha / √r exactly", () => {
    expect(peftScaling(32, 8, false)).toBe(4);
    expect(peftScaling(64, 64, true)).toBe(8);
    expect(peftScaling(2, 2, true)).toBe(2 / Math.sqrt(2)); // as PEFT: lora_alpha / math.sqrt(r)
  });

  it("a string target_modules must match the whole path", () => {
    expect(targetsModule(".*\\.(q|v)_proj", "model.layers.0.self_attn.q_proj")).toBe(true);
    expect(targetsModule("q_proj", "model.layers.0.self_attn.q_proj")).toBe(false);
    expect(targetsModule(null, "q_proj")).toBe(false);
  });
});
