// Per-module adapters → the two files PEFT writes: adapter_config.json (every LoraConfig field, keys sorted,
// indent 2, as json.dumps(sort_keys=True, indent=2)) and adapter_model.safetensors (on-disk keys without the
// adapter name, factors in PEFT's layout and the adapter's dtype, metadata {"format": "pt"}). Pure, browser-safe.

import { ArgumentError, ShapeError } from "../errors.js";
import type { PeftModuleAdapter, SavedTensor } from "./peft-adapter.js";
import { type PeftConfig, parsePeftConfig } from "./peft-config.js";
import { downToPeft, type PeftTensorRole, peftBaseLayerKey, peftKey, peftPlainKey, upToPeft } from "./peft-keys.js";
import { deriveLoraFields } from "./peft-save-config.js";
import { type SafetensorsDtype, serializeSafetensors, type TensorToWrite } from "./safetensors.js";

/** What savePeftAdapter writes. */
export interface SavedPeftAdapter {
  /** adapter_config.json text. */
  configJson: string;
  /** adapter_model.safetensors bytes. */
  weights: Uint8Array;
}

/** Options of savePeftAdapter. */
export interface SavePeftOptions {
  /** Full tensors saved under their plain model keys (modules_to_save, biases). */
  modulesToSave?: ReadonlyMap<string, SavedTensor>;
}

// LoraConfig's fields as PEFT writes them when nothing else is known (values are PEFT's defaults).
const BASE_FIELDS: Record<string, unknown> = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: null,
  bias: "none",
  corda_config: null,
  eva_config: null,
  exclude_modules: null,
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 8,
  lora_bias: false,
  lora_dropout: 0,
  megatron_config: null,
  megatron_core: "megatron.core",
  modules_to_save: null,
  peft_type: "LORA",
  qalora_group_size: 16,
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: null,
  target_parameters: null,
  task_type: null,
  trainable_token_indices: null,
  use_dora: false,
  use_qalora: false,
  use_rslora: false,
};

// Fields Python writes as floats: 0 must appear as 0.0.
const FLOAT_FIELDS = ["lora_dropout"];

/** Default target_modules: the distinct last segments of the module paths (two when the last is an index). */
function defaultTargets(modules: readonly PeftModuleAdapter[]): string[] {
  const names = modules.map((m) => {
    const parts = m.modulePath.split(".");
    const last = parts[parts.length - 1]!;
    return /^\d+$/.test(last) && parts.length > 1 ? `${parts[parts.length - 2]}.${last}` : last;
  });
  return [...new Set(names)].sort();
}

/** Python json.dumps(obj, indent=2, sort_keys=True) for JSON values (floats in FLOAT_FIELDS keep ".0"). */
function pythonJson(obj: Record<string, unknown>): string {
  const sortDeep = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortDeep);
    if (v !== null && typeof v === "object") {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, sortDeep(o[k])]),
      );
    }
    return v;
  };
  let text = JSON.stringify(sortDeep(obj), null, 2);
  for (const f of FLOAT_FIELDS) text = text.replace(new RegExp(`^(  "${f}": )(-?\\d+)(,?)$`, "m"), "$1$2.0$3");
  return text;
}

/** The config dict PEFT would write for these modules. */
function configDict(config: PeftConfig, modules: readonly PeftModuleAdapter[]): Record<string, unknown> {
  const lora = deriveLoraFields(config, modules);
  const out: Record<string, unknown> = { ...BASE_FIELDS, ...config.raw };
  Object.assign(out, {
    peft_type: "LORA",
    ...lora,
    lora_bias: config.loraBias,
    target_modules: config.targetModules ?? defaultTargets(modules),
    exclude_modules: config.excludeModules,
    modules_to_save: config.modulesToSave,
    lora_dropout: config.loraDropout,
    init_lora_weights: config.initLoraWeights,
    base_model_name_or_path: config.baseModelNameOrPath,
    revision: config.revision,
    task_type: config.taskType,
    // PEFT's save_pretrained always writes inference_mode true
    inference_mode: true,
  });
  return out;
}

function checkModule(m: PeftModuleAdapter): void {
  const { down, up } = m;
  if (
    down.cols !== m.r ||
    up.rows !== m.r ||
    down.data.length !== down.rows * down.cols ||
    up.data.length !== up.rows * up.cols
  )
    throw new ShapeError(
      "shape_mismatch",
      `savePeftAdapter: module "${m.modulePath}" has down [${down.rows}, ${down.cols}] and up [${up.rows}, ${up.cols}], expected [dIn, ${m.r}] and [${m.r}, dOut] (r = ${m.r})`,
      { module: m.modulePath },
    );
  if (m.magnitude !== undefined && m.magnitude.length !== up.cols)
    throw new ShapeError(
      "shape_mismatch",
      `savePeftAdapter: module "${m.modulePath}" has a magnitude of length ${m.magnitude.length}, expected ${up.cols} (dOut)`,
      { module: m.modulePath },
    );
}

/**
 * Writes per-module adapters as PEFT's adapter_config.json and adapter_model.safetensors.
 * Keys and layouts as PEFT writes them (peft-keys.ts): downᵀ [r, dIn] and upᵀ [dOut, r] per module (embeddings:
 * lora_embedding_A/B, DoRA: lora_magnitude_vector), each in the module's dtype. Ranks or alphas that differ from
 * config.r / lora_alpha (and its patterns) are written as exact rank_pattern / alpha_pattern entries.
 * @param config a PeftConfig (from loadPeftAdapter) or a config object such as {"peft_type": "LORA", "r": 8}
 * @throws {ShapeError} inconsistent module shapes   @throws {ArgumentError} duplicate module paths
 * @example const { configJson, weights } = savePeftAdapter(adapter.modules, adapter.config)
 */
export function savePeftAdapter(
  modules: readonly PeftModuleAdapter[],
  config: PeftConfig | object,
  options: SavePeftOptions = {},
): SavedPeftAdapter {
  if (!Array.isArray(modules))
    throw new ArgumentError("invalid_argument", "savePeftAdapter: modules must be an array of adapter modules", {
      name: "modules",
    });
  if (config === null || typeof config !== "object")
    throw new ArgumentError(
      "invalid_argument",
      "savePeftAdapter: config must be a PEFT config (parsed, or adapter_config.json's object)",
      { name: "config" },
    );
  options ??= {};
  const cfg = "peftType" in config ? (config as PeftConfig) : parsePeftConfig(config, "savePeftAdapter config").config;
  const tensors = new Map<string, TensorToWrite>();
  const put = (name: string, t: { dtype: SafetensorsDtype; shape: number[]; data: Float32Array }) => {
    if (tensors.has(name))
      throw new ArgumentError("invalid_argument", `savePeftAdapter: tensor "${name}" would be written twice`, { name });
    tensors.set(name, t);
  };
  for (const m of modules) {
    checkModule(m);
    const roles: [PeftTensorRole, PeftTensorRole] =
      m.kind === "embedding" ? ["embeddingDown", "embeddingUp"] : ["down", "up"];
    put(peftKey(m.modulePath, roles[0]), { dtype: m.dtype, shape: [m.r, m.down.rows], data: downToPeft(m.down) });
    put(peftKey(m.modulePath, roles[1]), { dtype: m.dtype, shape: [m.up.cols, m.r], data: upToPeft(m.up) });
    if (m.magnitude !== undefined)
      put(peftKey(m.modulePath, "magnitude"), { dtype: m.dtype, shape: [m.magnitude.length], data: m.magnitude });
    if (m.bias !== undefined)
      put(peftBaseLayerKey(m.modulePath, "bias"), { dtype: m.dtype, shape: [m.bias.length], data: m.bias });
    if (m.baseWeight !== undefined)
      put(peftBaseLayerKey(m.modulePath, "weight"), {
        dtype: m.baseWeight.dtype,
        shape: [...m.baseWeight.shape],
        data: m.baseWeight.data,
      });
  }
  for (const [key, t] of options.modulesToSave ?? [])
    put(peftPlainKey(key), { dtype: t.dtype, shape: [...t.shape], data: t.data });
  const weights = serializeSafetensors(tensors, { format: "pt" });
  return { configJson: pythonJson(configDict(cfg, modules)), weights };
}
