// MLX-LM LoRA adapters (ml-explore/mlx-examples llms/mlx_lm): adapters.safetensors + an MLX training config.
// Keys "<module path>.lora_a" [dIn, r] = down and ".lora_b" [r, dOut] = up: already lorakit's layout, no prefix,
// no ".weight". Base weights are MLX Linear [dOut, dIn]. A module's alpha is reported as scaling·rank; its scaling is
// the one the mlx-lm version that trained it applied, read from the config's fields (mlxScalingRule):
//   2024-01-25 (mlx-examples b1dec281) … 2024-06-02 (c457a3f8): LoRALinear used scale·alpha/rank;
//   before and after: scale alone, although the config kept writing "alpha": 16 (CONFIG_DEFAULTS).
// adapter_config.json is written since 2024-04-02 (2bd64b78) with "lora_layers"; "use_dora" joined it on
// 2024-05-16 (42458914); "fine_tune_type" and "num_layers" replaced both on 2024-09-30 (50e5ca81). So:
//   fine_tune_type or num_layers, or no alpha          → scale                  (certain)
//   lora_layers without use_dora, with alpha           → scale·alpha/rank       (certain: 2024-04-02 … 05-16)
//   use_dora, or alpha with none of those fields       → scale, with a warning  (05-16 … 06-02 used alpha/rank)
// options.scaling overrides the rule. A scaling that is not finite is refused.
// Embeddings (mlx-lm tuner/lora.py LoRAEmbedding, on an nn.Embedding such as "model.embed_tokens"): lora_a
// [num_embeddings, r] = down [vocab, r], lora_b [r, dims] = up, the same positions as a Linear's; it adds
// scale·lora_a[x]·lora_b to the looked-up rows (fuse: W + scale·lora_a·lora_b), so it loads as kind "embedding".

import { AdapterFormatError, ConfigError, type ConfigIssue, ShapeError } from "../errors.js";
import { optionsArg, requireBytes, requireObject, shown } from "./format-args.js";
import type { AdapterDtype, PeftModuleAdapter } from "./peft-adapter.js";
import { refuseNonSafetensors } from "./peft-adapter.js";
import { parseSafetensors } from "./safetensors.js";

/** A loaded MLX adapter: the same per-module adapters as a PEFT one. */
export interface MlxAdapter {
  format: "mlx";
  /** The MLX training config as read. */
  config: Record<string, unknown>;
  modules: PeftModuleAdapter[];
  warnings: string[];
}

const OP = "loadMlxAdapter";
const SOURCE = "adapter_config.json (MLX)";
const KEY = /^(.+)\.lora_(a|b)$/;
// The nn.Embedding modules of the models mlx-lm trains (llama, mistral, qwen2, gemma, phi3: model.embed_tokens;
// gpt2: wte, wpe); mlx-lm wraps them in LoRAEmbedding, every other LoRA module is a LoRALinear.
const EMBEDDING = /(?:^|\.)(?:embed_tokens|wte|wpe)$/;

/** How an MLX-LM version scaled the low-rank term: "scale", or "scale_alpha_rank" (scale·alpha/rank). */
export type MlxScalingRule = "scale" | "scale_alpha_rank";

/** Options of loadMlxAdapter. */
export interface MlxLoadOptions {
  /** Overrides the rule read from the config (for an ambiguous one; see mlxScalingRule). */
  scaling?: MlxScalingRule;
}

/**
 * The scaling rule of the mlx-lm version that wrote an MLX training config, from its fields (see the module header
 * for the history), with `ambiguous` true when the fields fit versions that scaled differently.
 * @example mlxScalingRule({ fine_tune_type: "lora", lora_parameters: { rank: 8, alpha: 16, scale: 10 } }).rule // "scale"
 */
export function mlxScalingRule(config: Record<string, unknown>): {
  rule: MlxScalingRule;
  ambiguous: boolean;
  why: string;
} {
  requireObject("mlxScalingRule", "config", config, "an MLX training config (adapter_config.json's object)");
  const lp = config.lora_parameters as Record<string, unknown> | undefined;
  const hasAlpha = lp !== undefined && lp !== null && typeof lp === "object" && lp.alpha !== undefined;
  if ("fine_tune_type" in config || "num_layers" in config)
    return { rule: "scale", ambiguous: false, why: "fine_tune_type / num_layers: mlx-lm from 2024-09-30 on" };
  if (!hasAlpha) return { rule: "scale", ambiguous: false, why: "lora_parameters has no alpha" };
  if ("lora_layers" in config && !("use_dora" in config))
    return {
      rule: "scale_alpha_rank",
      ambiguous: false,
      why: "lora_layers without use_dora: mlx-examples 2024-04-02 … 2024-05-16",
    };
  if ("use_dora" in config)
    return {
      rule: "scale",
      ambiguous: true,
      why: "use_dora without fine_tune_type: mlx-examples 2024-05-16 … 2024-09-30, which used scale·alpha/rank until 2024-06-02",
    };
  return { rule: "scale", ambiguous: true, why: "alpha without lora_layers, use_dora, fine_tune_type or num_layers" };
}

function readParams(
  config: string | object,
  options: MlxLoadOptions,
): {
  raw: Record<string, unknown>;
  rank: number;
  scaling: number;
  alpha: number;
  warnings: string[];
} {
  let doc: unknown = config;
  if (typeof config === "string") {
    try {
      doc = JSON.parse(config);
    } catch (e) {
      throw new ConfigError(SOURCE, [{ path: [], message: `malformed JSON (${(e as Error).message})` }]);
    }
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigError(SOURCE, [{ path: [], message: "expected a JSON object" }]);
  const raw = doc as Record<string, unknown>;
  const lp = raw.lora_parameters as Record<string, unknown> | undefined;
  const issues: ConfigIssue[] = [];
  if (lp === null || typeof lp !== "object" || Array.isArray(lp)) {
    issues.push({ path: ["lora_parameters"], message: "lora_parameters must be an object {rank, alpha?, scale}" });
    throw new ConfigError(SOURCE, issues);
  }
  const { rank, alpha, scale } = lp;
  if (typeof rank !== "number" || !Number.isSafeInteger(rank) || rank <= 0)
    issues.push({
      path: ["lora_parameters", "rank"],
      message: `rank must be a positive integer, got ${JSON.stringify(rank)}`,
    });
  if (typeof scale !== "number" || !Number.isFinite(scale))
    issues.push({
      path: ["lora_parameters", "scale"],
      message: `scale must be a finite number, got ${JSON.stringify(scale)}`,
    });
  if (alpha !== undefined && (typeof alpha !== "number" || !Number.isFinite(alpha)))
    issues.push({
      path: ["lora_parameters", "alpha"],
      message: `alpha must be a finite number, got ${JSON.stringify(alpha)}`,
    });
  if (options.scaling !== undefined && options.scaling !== "scale" && options.scaling !== "scale_alpha_rank")
    issues.push({
      path: ["options", "scaling"],
      message: `options.scaling must be "scale" or "scale_alpha_rank", got ${shown(options.scaling)}`,
    });
  if (issues.length > 0) throw new ConfigError(SOURCE, issues);
  const r = rank as number;
  const s = scale as number;
  const read = mlxScalingRule(raw);
  const rule = options.scaling ?? read.rule;
  if (rule === "scale_alpha_rank" && alpha === undefined)
    throw new ConfigError(SOURCE, [
      { path: ["lora_parameters", "alpha"], message: 'options.scaling is "scale_alpha_rank" but there is no alpha' },
    ]);
  const scaling = rule === "scale" ? s : (s * (alpha as number)) / r;
  if (!Number.isFinite(scaling))
    throw new ConfigError(SOURCE, [
      {
        path: ["lora_parameters", "scale"],
        message: `the scaling ${rule === "scale" ? "scale" : "scale·alpha/rank"} = ${scaling} is not finite (scale ${s}, alpha ${String(alpha)}, rank ${r})`,
      },
    ]);
  const warnings =
    read.ambiguous && options.scaling === undefined
      ? [
          `${SOURCE}: scaling = scale = ${scaling} (${read.why}); if mlx-lm of 2024-01-25 … 2024-06-02 trained it, it was scale·alpha/rank = ${(s * (alpha as number)) / r}: pass {scaling: "scale_alpha_rank"} then`,
        ]
      : [];
  return { raw, rank: r, scaling, alpha: scaling * r, warnings };
}

/**
 * Loads an MLX-LM LoRA adapter (adapters.safetensors + its training config).
 * @param files {config: the MLX adapter_config.json, weights: adapters.safetensors bytes}
 * @param options {scaling} to settle an ambiguous config (mlxScalingRule)
 * @throws {ConfigError} bad lora_parameters   @throws {AdapterFormatError} missing factor, bad dtype
 * @throws {ShapeError} factor shapes that disagree with each other or with lora_parameters.rank
 * @example loadMlxAdapter({ config, weights }).modules[0].scaling // 10 for {fine_tune_type, rank 8, alpha 16, scale 10}
 */
export function loadMlxAdapter(
  files: { config: string | object; weights: Uint8Array },
  options: MlxLoadOptions = {},
): MlxAdapter {
  requireObject(
    OP,
    "files",
    files,
    "{ config, weights } (adapter_config.json's text or object, adapters.safetensors' bytes)",
  );
  const p = readParams(files.config, optionsArg<MlxLoadOptions>(OP, "options", options, "{ scaling? }"));
  requireBytes(OP, "files.weights", files.weights, "adapters.safetensors' bytes");
  refuseNonSafetensors(OP, "adapters.safetensors", files.weights);
  const st = parseSafetensors(files.weights);
  const groups = new Map<string, { a?: string; b?: string }>();
  for (const name of st.names()) {
    const m = KEY.exec(name);
    if (!m)
      throw new AdapterFormatError(
        "unexpected_tensor",
        `${OP}: tensor "${name}" is not an MLX LoRA factor (<module>.lora_a or <module>.lora_b)`,
        {
          name,
        },
      );
    const g = groups.get(m[1]!) ?? {};
    groups.set(m[1]!, g);
    if (m[2] === "a") g.a = name;
    else g.b = name;
  }
  const modules: PeftModuleAdapter[] = [];
  for (const [modulePath, g] of [...groups].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))) {
    if (g.a === undefined || g.b === undefined) {
      const missing = `${modulePath}.lora_${g.a === undefined ? "a" : "b"}`;
      throw new AdapterFormatError("missing_tensor", `${OP}: module "${modulePath}" has no tensor "${missing}"`, {
        module: modulePath,
        name: missing,
      });
    }
    const ia = st.info(g.a);
    const ib = st.info(g.b);
    for (const i of [ia, ib])
      if (i.dtype !== "F32" && i.dtype !== "F16" && i.dtype !== "BF16")
        throw new AdapterFormatError(
          "unsupported_dtype",
          `${OP}: tensor "${i.name}" has dtype ${i.dtype}, expected F32, F16 or BF16`,
          {
            name: i.name,
            dtype: i.dtype,
          },
        );
    const [dIn, r] = ia.shape;
    const embedding = EMBEDDING.test(modulePath);
    const [rB, dOut] = ib.shape;
    if (ia.shape.length !== 2 || ib.shape.length !== 2 || r !== rB || r !== p.rank)
      throw new ShapeError(
        "shape_mismatch",
        `${OP}: module "${modulePath}" has lora_a [${ia.shape.join(", ")}] and lora_b [${ib.shape.join(", ")}], expected ${embedding ? "[vocab" : "[dIn"}, ${p.rank}] and [${p.rank}, ${embedding ? "dims" : "dOut"}] (lora_parameters.rank = ${p.rank})`,
        { module: modulePath, rank: p.rank },
      );
    modules.push({
      modulePath,
      kind: embedding ? "embedding" : "linear",
      down: { data: st.toFloat32(g.a), rows: dIn!, cols: r! },
      up: { data: st.toFloat32(g.b), rows: r!, cols: dOut! },
      r: r!,
      alpha: p.alpha,
      scaling: p.scaling,
      fanInFanOut: false,
      dtype: ia.dtype as AdapterDtype,
    });
  }
  return { format: "mlx", config: p.raw, modules, warnings: p.warnings };
}
