// MLX-LM LoRA adapters (ml-explore/mlx-examples llms/mlx_lm): adapters.safetensors + an MLX training config.
// Keys "<module path>.lora_a" [dIn, r] = down and ".lora_b" [r, dOut] = up: already lorakit's layout, no prefix,
// no ".weight". Base weights are MLX Linear [dOut, dIn]. Scaling: scale·alpha/rank when lora_parameters has alpha
// (mlx-examples @ 2a06af69), else scale (later mlx-lm versions). A module's alpha is lora_parameters.alpha, or
// scale·rank when there is none; its scaling is always the one MLX applies.

import { AdapterFormatError, ConfigError, type ConfigIssue, ShapeError } from "../errors.js";
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

function readParams(config: string | object): {
  raw: Record<string, unknown>;
  rank: number;
  scaling: number;
  alpha: number;
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
  if (issues.length > 0) throw new ConfigError(SOURCE, issues);
  const r = rank as number;
  const s = scale as number;
  return alpha === undefined
    ? { raw, rank: r, scaling: s, alpha: s * r }
    : { raw, rank: r, scaling: (s * (alpha as number)) / r, alpha: alpha as number };
}

/**
 * Loads an MLX-LM LoRA adapter (adapters.safetensors + its training config).
 * @param files {config: the MLX adapter_config.json, weights: adapters.safetensors bytes}
 * @throws {ConfigError} bad lora_parameters   @throws {AdapterFormatError} missing factor, bad dtype
 * @throws {ShapeError} factor shapes that disagree with each other or with lora_parameters.rank
 * @example loadMlxAdapter({ config, weights }).modules[0].scaling // 20 for rank 8, alpha 16, scale 10
 */
export function loadMlxAdapter(files: { config: string | object; weights: Uint8Array }): MlxAdapter {
  const p = readParams(files.config);
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
    const [rB, dOut] = ib.shape;
    if (ia.shape.length !== 2 || ib.shape.length !== 2 || r !== rB || r !== p.rank)
      throw new ShapeError(
        "shape_mismatch",
        `${OP}: module "${modulePath}" has lora_a [${ia.shape.join(", ")}] and lora_b [${ib.shape.join(", ")}], expected [dIn, ${p.rank}] and [${p.rank}, dOut] (lora_parameters.rank = ${p.rank})`,
        { module: modulePath, rank: p.rank },
      );
    modules.push({
      modulePath,
      kind: "linear",
      down: { data: st.toFloat32(g.a), rows: dIn!, cols: r! },
      up: { data: st.toFloat32(g.b), rows: r!, cols: dOut! },
      r: r!,
      alpha: p.alpha,
      scaling: p.scaling,
      fanInFanOut: false,
      dtype: ia.dtype as AdapterDtype,
    });
  }
  const warnings =
    "alpha" in (p.raw.lora_parameters as object)
      ? [
          `${SOURCE}: scaling = scale·alpha/rank = ${p.scaling} (mlx-examples at 2a06af69; other mlx-lm versions may differ)`,
        ]
      : [];
  return { format: "mlx", config: p.raw, modules, warnings };
}
