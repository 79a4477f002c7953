// MLX-LM scaling by the version that wrote the config (mlx-adapter.ts header): scale·alpha/rank only for configs
// of the 2024-01-25 … 2024-06-02 era, scale alone otherwise, a warning where the fields fit both, an override, and
// non-finite scalings refused.

import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { loadMlxAdapter, mlxScalingRule } from "../../src/io/mlx-adapter.js";
import { serializeSafetensors } from "../../src/io/safetensors.js";

const weights = serializeSafetensors({
  "model.layers.0.self_attn.q_proj.lora_a": { dtype: "F32", shape: [4, 8], data: new Float32Array(32).fill(0.5) },
  "model.layers.0.self_attn.q_proj.lora_b": { dtype: "F32", shape: [8, 4], data: new Float32Array(32).fill(0.25) },
});
const params = { rank: 8, alpha: 16, dropout: 0, scale: 10 };

describe("MLX-LM scaling by config version", () => {
  it("current mlx-lm (fine_tune_type, num_layers, alpha still written): scale alone, no warning", () => {
    const a = loadMlxAdapter({ config: { fine_tune_type: "lora", num_layers: 16, lora_parameters: params }, weights });
    expect(a.modules[0]).toMatchObject({ scaling: 10, alpha: 80 });
    expect(a.warnings).toEqual([]);
    expect(mlxScalingRule({ num_layers: 4, lora_parameters: params })).toMatchObject({
      rule: "scale",
      ambiguous: false,
    });
  });

  it("mlx-examples 2024-04-02 … 05-16 (lora_layers, no use_dora): scale·alpha/rank", () => {
    const a = loadMlxAdapter({ config: { lora_layers: 16, lora_parameters: params }, weights });
    expect(a.modules[0]!.scaling).toBe(20);
    expect(a.warnings).toEqual([]);
  });

  it("no alpha: scale", () => {
    const a = loadMlxAdapter({ config: { lora_layers: 16, lora_parameters: { rank: 8, scale: 20 } }, weights });
    expect(a.modules[0]!.scaling).toBe(20);
    expect(a.warnings).toEqual([]);
  });

  it("use_dora without fine_tune_type (2024-05-16 … 09-30): scale, with a warning naming the other reading", () => {
    const a = loadMlxAdapter({ config: { lora_layers: 16, use_dora: false, lora_parameters: params }, weights });
    expect(a.modules[0]!.scaling).toBe(10);
    expect(a.warnings).toHaveLength(1);
    expect(a.warnings[0]).toMatch(
      /scaling = scale = 10 \(use_dora without fine_tune_type: .*\); if mlx-lm of 2024-01-25 … 2024-06-02 trained it, it was scale·alpha\/rank = 20: pass \{scaling: "scale_alpha_rank"\} then/,
    );
    const b = loadMlxAdapter(
      { config: { lora_layers: 16, use_dora: false, lora_parameters: params }, weights },
      { scaling: "scale_alpha_rank" },
    );
    expect(b.modules[0]!.scaling).toBe(20);
    expect(b.warnings).toEqual([]);
  });

  it("alpha with no version field: ambiguous, scale with a warning", () => {
    expect(mlxScalingRule({ lora_parameters: params })).toMatchObject({ rule: "scale", ambiguous: true });
  });

  it("invalid_config: a non-finite scaling (scale 1e308 · alpha / rank), a bad override", () => {
    const cases: [object, object, RegExp][] = [
      [
        { lora_layers: 4, lora_parameters: { ...params, scale: 1e308 } },
        {},
        /scale·alpha\/rank = Infinity is not finite/,
      ],
      [{ num_layers: 4, lora_parameters: { rank: 8, scale: 1e308 * 10 } }, {}, /scale must be a finite number/],
      [{ num_layers: 4, lora_parameters: params }, { scaling: "alpha" }, /options\.scaling must be "scale" or/],
      [{ num_layers: 4, lora_parameters: { rank: 8, scale: 2 } }, { scaling: "scale_alpha_rank" }, /there is no alpha/],
    ];
    for (const [config, options, why] of cases) {
      let err: unknown;
      try {
        loadMlxAdapter({ config, weights }, options as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe("invalid_config");
      expect((err as ConfigError).message).toMatch(why);
    }
  });
});
