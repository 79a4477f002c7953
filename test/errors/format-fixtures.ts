// The one-module adapter the format entry-point tests (format-arguments*.test.ts) pass around: down [2, 1],
// up [1, 2], scaling 1, as loadMlxAdapter would return it.

export const ADAPTER_PATH = "model.layers.0.self_attn.v_proj";
export const MOD = {
  modulePath: ADAPTER_PATH,
  kind: "linear" as const,
  down: { data: Float32Array.of(0.5, -1), rows: 2, cols: 1 },
  up: { data: Float32Array.of(2, 0.25), rows: 1, cols: 2 },
  r: 1,
  alpha: 1,
  scaling: 1,
  fanInFanOut: false,
  dtype: "F32" as const,
};
export const adapter = (m: unknown) => ({ format: "mlx", config: {}, warnings: [], modules: [m] }) as never;
export const MLX_CONFIG = { lora_parameters: { rank: 1, scale: 1 } };
export const ARCH = { architecture: "qwen2" };
