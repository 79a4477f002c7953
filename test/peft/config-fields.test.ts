// PEFT 0.21's LoraConfig fields are known: a config PEFT 0.21 wrote loads without "unknown key" warnings, a really
// unknown key still warns, and a non-default value asking for a method lorakit does not compute is refused by name.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { parsePeftConfig } from "../../src/io/peft-config.js";
import { GOLDEN_DIR, VARIANTS } from "../golden-peft/golden.js";
import { caught } from "../helpers/errors.js";

// Every key of an adapter_config.json written by PEFT 0.21.0 (save_pretrained), with its default value.
const PEFT_021 = {
  alora_invocation_tokens: null,
  alpha_pattern: {},
  arrow_config: null,
  auto_mapping: null,
  base_model_name_or_path: null,
  bias: "none",
  corda_config: null,
  ensure_weight_tying: false,
  eva_config: null,
  exclude_modules: null,
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  kasa_config: null,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 16,
  lora_bias: false,
  lora_dropout: 0.0,
  lora_ga_config: null,
  megatron_config: null,
  megatron_core: "megatron.core",
  modules_to_save: null,
  monteclora_config: null,
  peft_type: "LORA",
  peft_version: "0.21.0",
  qalora_group_size: 16,
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: ["q_proj", "v_proj"],
  target_parameters: null,
  task_type: null,
  trainable_token_indices: null,
  use_bdlora: null,
  use_dora: false,
  use_qalora: false,
  use_rslora: false,
  velora_config: null,
};

function refusal(config: object): ConfigError {
  const e = caught(() => parsePeftConfig(config));
  expect(e).toBeInstanceOf(ConfigError);
  return e as ConfigError;
}

describe("PEFT 0.21 LoraConfig fields", () => {
  it("a config with every 0.21 field loads with no warning", () => {
    expect(parsePeftConfig(PEFT_021).warnings).toEqual([]);
  });

  it.skipIf(GOLDEN_DIR === null)("every golden adapter config (PEFT 0.21 and lorakit) loads with no warning", () => {
    for (const [variant] of VARIANTS) {
      const text = readFileSync(join(GOLDEN_DIR ?? "", variant, "adapter", "adapter_config.json"), "utf8");
      expect(parsePeftConfig(text).warnings, variant).toEqual([]);
    }
  });

  it("a really unknown key warns, once, by name", () => {
    const { warnings } = parsePeftConfig({ ...PEFT_021, use_hyper_lora: true });
    expect(warnings).toEqual([
      'adapter_config.json: unknown key "use_hyper_lora" kept and ignored (newer PEFT version or another method?)',
    ]);
  });

  it("methods that do not change the eval-mode computation are accepted: VeLoRA, MonteCLoRA, LoRA-GA init", () => {
    const c = parsePeftConfig({
      ...PEFT_021,
      velora_config: { num_groups: 32, scale: 1, init_type: "batch_average_once" },
      monteclora_config: { monteclora_n: 8 },
      lora_ga_config: { direction: "ArB2r" },
    });
    expect(c.warnings).toEqual([]);
  });

  it("invalid_config: Arrow, KaSA and MergedLinear (enable_lora) are refused by name", () => {
    const cases: [object, RegExp][] = [
      [
        { arrow_config: { top_k: 3 } },
        /arrow_config is an object: Arrow routing among LoRA experts \(arrow_config\) is not supported by lorakit/,
      ],
      [
        { kasa_config: { beta: 1e-4, gamma: 1e-3 } },
        /kasa_config is an object: KaSA \(kasa_config: .*\) is not supported/,
      ],
      [{ enable_lora: [true, false, true] }, /enable_lora is an array: MergedLinear LoRA .* is not supported/],
    ];
    for (const [extra, why] of cases) {
      const e = refusal({ ...PEFT_021, ...extra });
      expect(e.code).toBe("invalid_config");
      expect(e.message).toMatch(why);
    }
  });
});
