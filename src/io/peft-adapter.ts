// PEFT LoRA adapter files (adapter_config.json + adapter_model.safetensors) ⇄ per-module adapters in lorakit's
// layout: down [dIn, r], up [r, dOut], float32 copies decoded from F32/F16/BF16. Pure and browser-safe.
// PEFT's key names and layouts are handled by peft-keys.ts only; adapter_model.bin bytes go through torch-file.ts.

import { AdapterFormatError, ArgumentError, ShapeError } from "../errors.js";
import type { Matrix } from "../matrix.js";
import { moduleHyperparams, type PeftConfig, parsePeftConfig, peftScaling } from "./peft-config.js";
import {
  baseWeightShape,
  dimsFromPeftShapes,
  downFromPeft,
  type PeftTensorRole,
  parsePeftKey,
  peftKey,
  upFromPeft,
} from "./peft-keys.js";
import { placeSavedTensor, type SavedRole } from "./peft-saved.js";
import { parseSafetensors } from "./safetensors.js";
import { looksLikeTorchFile, parseTorchFile } from "./torch-file.js";

/** The float dtypes adapter tensors may be stored in. */
export type AdapterDtype = "F32" | "F16" | "BF16";
const ADAPTER_DTYPES: readonly string[] = ["F32", "F16", "BF16"];

/** One module's LoRA update: ΔW = scaling·down·up, [dIn, dOut] in lorakit layout. */
export interface PeftModuleAdapter {
  /** Module path without the "base_model.model." prefix, e.g. "transformer.h.0.attn.c_attn". */
  modulePath: string;
  /** "linear" (a Linear or Conv1D layer) or "embedding" (an embedding table); see peft-keys.ts for the keys. */
  kind: "linear" | "embedding";
  /** [dIn, r], applied first. */
  down: Matrix<Float32Array>;
  /** [r, dOut], applied second. */
  up: Matrix<Float32Array>;
  r: number;
  alpha: number;
  /** alpha / r, or alpha / √r with use_rslora, after rank_pattern / alpha_pattern. */
  scaling: number;
  /** The base weight is stored [dIn, dOut] (GPT-2 Conv1D) instead of [dOut, dIn]. */
  fanInFanOut: boolean;
  /** DoRA magnitude [dOut] (use_dora). */
  magnitude?: Float32Array;
  /**
   * The module's own bias [dOut], trained with PEFT's bias "lora_only" or "all" and saved as
   * "<module>.base_layer.bias": it replaces the base model's bias in forward and merge.
   */
  bias?: Float32Array;
  /**
   * The module's full base weight saved with the adapter ("<module>.base_layer.weight": PEFT's
   * save_embedding_layers for a LoRA embedding or lm_head), in the stored layout; it replaces the base model's.
   */
  baseWeight?: SavedTensor;
  /** The dtype the factors were stored in (they are decoded to float32 here). */
  dtype: AdapterDtype;
}

/** A full tensor saved next to the adapter (modules_to_save, biases), under its plain model key. */
export interface SavedTensor {
  dtype: AdapterDtype;
  shape: number[];
  data: Float32Array;
  /** Why the file has it (peft-saved.ts); absent for tensors given by a caller. */
  role?: SavedRole;
}

/** A loaded adapter. */
export interface PeftAdapter {
  format: "peft";
  config: PeftConfig;
  /** In the order the tensors appear in the file's data. */
  modules: PeftModuleAdapter[];
  /** Plain model key (e.g. "classifier.weight") → tensor. */
  modulesToSave: Map<string, SavedTensor>;
  warnings: string[];
}

/** The two files of a saved adapter: the config (JSON text or parsed) and the safetensors bytes. */
export interface PeftAdapterFiles {
  config: string | object;
  weights: Uint8Array;
}

const OP = "loadPeftAdapter";
const LFS_MAGIC = "version https://git-lfs";

function startsWith(bytes: Uint8Array, s: string): boolean {
  if (bytes.length < s.length) return false;
  for (let i = 0; i < s.length; i++) if (bytes[i] !== s.charCodeAt(i)) return false;
  return true;
}

/**
 * Refuses bytes that are not safetensors but are commonly found in their place: a Git LFS pointer, a pickle
 * (protocol 2+ starts with 0x80) or a zip-based torch.save file ("PK"), when byte 8 does not start a JSON header.
 */
export function refuseNonSafetensors(op: string, name: string, bytes: Uint8Array): void {
  if (startsWith(bytes, LFS_MAGIC))
    throw new AdapterFormatError(
      "unsupported_format",
      `${op}: ${name} is a Git LFS pointer, not weights (${bytes.length} bytes; fetch the real file with 'git lfs pull')`,
      { name, reason: "lfs_pointer" },
    );
  // a safetensors file has its JSON header ("{", maybe after spaces) at byte 8; a pickle or zip does not
  const b8 = bytes[8];
  const jsonAt8 = b8 === 0x7b || b8 === 0x20 || b8 === 0x09 || b8 === 0x0a || b8 === 0x0d;
  if (!jsonAt8 && (bytes[0] === 0x80 || startsWith(bytes, "PK\u0003\u0004")))
    throw new AdapterFormatError(
      "unsupported_format",
      `${op}: ${name} is a PyTorch pickle, which lorakit never loads (it can run code); convert the adapter to safetensors`,
      { name, reason: "pickle" },
    );
}

/** True for an MLX-LM training config (lora_parameters, no peft_type). */
export function isMlxConfig(config: unknown): boolean {
  return (
    config !== null &&
    typeof config === "object" &&
    !Array.isArray(config) &&
    "lora_parameters" in config &&
    !("peft_type" in config)
  );
}

function parseConfigInput(config: string | object): object {
  if (typeof config !== "string") return config;
  try {
    const v: unknown = JSON.parse(config);
    return v !== null && typeof v === "object" ? v : { value: v };
  } catch {
    return {};
  }
}

interface Parts {
  down?: string;
  up?: string;
  magnitude?: string;
  kind?: "linear" | "embedding";
}

/**
 * Loads a PEFT LoRA adapter from its two files.
 * Per module: down [dIn, r] and up [r, dOut] (PEFT stores their transposes, see peft-keys.ts), r from the shapes
 * (must equal the config's r or its rank_pattern entry), scaling from lora_alpha (alpha_pattern) and use_rslora.
 * @param files {config: adapter_config.json text or object, weights: adapter_model.safetensors bytes, or the bytes
 *   of an adapter_model.bin written by torch.save (read by readTorchFile, which executes nothing)}
 * @throws {ConfigError} invalid config ("invalid_config")
 * @throws {TorchFileError} the codes of readTorchFile, for a .bin that is broken or names a refused global
 * @throws {AdapterFormatError} "unsupported_format" (MLX, LFS pointer), "missing_tensor",
 *   "unexpected_tensor", "unsupported_dtype"
 * @throws {ShapeError} "shape_mismatch" when shapes disagree with each other or with the config's r
 * @example const { modules } = loadPeftAdapter({ config: configText, weights: bytes }); modules[0].scaling
 */
export function loadPeftAdapter(files: PeftAdapterFiles): PeftAdapter {
  if (files === null || typeof files !== "object")
    throw new ArgumentError(
      "invalid_argument",
      `${OP}: files is ${files === null ? "null" : `a ${typeof files}`}, expected { config, weights } (adapter_config.json's text or object, adapter_model.safetensors' bytes)`,
      { name: "files" },
    );
  if (isMlxConfig(parseConfigInput(files.config)))
    throw new AdapterFormatError(
      "unsupported_format",
      `${OP}: adapter_config.json is an MLX-LM training config (lora_parameters, no peft_type): this is an MLX adapter, not PEFT; load it with loadMlxAdapter`,
      { format: "mlx" },
    );
  const { config, warnings } = parsePeftConfig(files.config);
  // adapter_model.bin (torch.save, zip or legacy) is read by the allow-list interpreter, never unpickled
  const torch = looksLikeTorchFile(files.weights);
  if (!torch) refuseNonSafetensors(OP, "adapter_model.safetensors", files.weights);
  const st = torch ? parseTorchFile(files.weights) : parseSafetensors(files.weights);
  const groups = new Map<string, Parts>();
  const others: string[] = [];
  for (const name of st.names()) {
    const key = parsePeftKey(name);
    if (key === null) {
      others.push(name);
      continue;
    }
    addPart(groups, key.modulePath, key.role, name);
  }
  if (groups.size === 0)
    throw new AdapterFormatError(
      "missing_tensor",
      `${OP}: adapter_model.safetensors has no LoRA tensors (${st.names().length} tensors, none named like ${peftKey("<module>", "down")})`,
      { tensors: st.names().length },
    );
  const modules: PeftModuleAdapter[] = [];
  for (const [modulePath, parts] of groups) modules.push(buildModule(st, config, modulePath, parts));
  const modulesToSave = readOthers(st, config, others, modules, warnings);
  return { format: "peft", config, modules, modulesToSave, warnings };
}

function addPart(groups: Map<string, Parts>, modulePath: string, role: PeftTensorRole, name: string): void {
  const g = groups.get(modulePath) ?? {};
  groups.set(modulePath, g);
  if (role === "magnitude") g.magnitude = name;
  else {
    const kind = role === "down" || role === "up" ? "linear" : "embedding";
    if (g.kind !== undefined && g.kind !== kind)
      throw new AdapterFormatError(
        "unexpected_tensor",
        `${OP}: module "${modulePath}" has both linear and embedding LoRA tensors (second: "${name}")`,
        { module: modulePath, name },
      );
    g.kind = kind;
    const slot = role === "down" || role === "embeddingDown" ? "down" : "up";
    const prev = g[slot];
    if (prev !== undefined)
      throw new AdapterFormatError(
        "unexpected_tensor",
        `${OP}: module "${modulePath}" has two ${slot} factors, "${prev}" and "${name}" (one adapter per file; adapter names differ?)`,
        { module: modulePath, name },
      );
    g[slot] = name;
  }
}

type Parsed = ReturnType<typeof parseSafetensors>;

function floatTensor(st: Parsed, name: string): { dtype: AdapterDtype; shape: number[]; data: Float32Array } {
  const info = st.info(name);
  if (!ADAPTER_DTYPES.includes(info.dtype))
    throw new AdapterFormatError(
      "unsupported_dtype",
      `${OP}: tensor "${name}" has dtype ${info.dtype}, expected F32, F16 or BF16`,
      { name, dtype: info.dtype },
    );
  return { dtype: info.dtype as AdapterDtype, shape: [...info.shape], data: st.toFloat32(name) };
}

function buildModule(st: Parsed, config: PeftConfig, modulePath: string, parts: Parts): PeftModuleAdapter {
  const kind = parts.kind ?? "linear";
  const downRole = kind === "linear" ? "down" : "embeddingDown";
  const upRole = kind === "linear" ? "up" : "embeddingUp";
  if (parts.down === undefined || parts.up === undefined) {
    const missing = peftKey(modulePath, parts.down === undefined ? downRole : upRole);
    throw new AdapterFormatError(
      "missing_tensor",
      `${OP}: module "${modulePath}" has no tensor "${missing}" (each LoRA module needs both factors)`,
      { module: modulePath, name: missing },
    );
  }
  const d = floatTensor(st, parts.down);
  const u = floatTensor(st, parts.up);
  if (d.shape.length !== 2 || u.shape.length !== 2)
    throw new ShapeError(
      "shape_mismatch",
      `${OP}: module "${modulePath}" factors have shapes [${d.shape.join(", ")}] and [${u.shape.join(", ")}], expected [r, dIn] and [dOut, r]`,
      { module: modulePath },
    );
  const { dIn, dOut, r, rUp } = dimsFromPeftShapes(d.shape, u.shape);
  if (rUp !== r)
    throw new ShapeError(
      "shape_mismatch",
      `${OP}: module "${modulePath}": "${parts.up}" has shape [${u.shape.join(", ")}], expected [${dOut}, ${r}] because "${parts.down}" is [${d.shape.join(", ")}] (r = ${r})`,
      { module: modulePath, r, rUp },
    );
  const hp = moduleHyperparams(config, modulePath);
  if (hp.r !== r)
    throw new ShapeError(
      "shape_mismatch",
      `${OP}: module "${modulePath}" has r = ${r} in its tensors ("${parts.down}" is [${d.shape.join(", ")}]) but the config says r = ${hp.r} (r / rank_pattern)`,
      { module: modulePath, r, configR: hp.r },
    );
  const adapter: PeftModuleAdapter = {
    modulePath,
    kind,
    down: downFromPeft(d.data, r, dIn),
    up: upFromPeft(u.data, dOut, r),
    r,
    alpha: hp.alpha,
    scaling: peftScaling(hp.alpha, r, config.useRslora),
    fanInFanOut: config.fanInFanOut,
    dtype: d.dtype,
  };
  if (parts.magnitude !== undefined) {
    if (!config.useDora)
      throw new AdapterFormatError(
        "unexpected_tensor",
        `${OP}: tensor "${parts.magnitude}" is a DoRA magnitude but the config has use_dora false`,
        { module: modulePath, name: parts.magnitude },
      );
    const m = floatTensor(st, parts.magnitude);
    if (m.shape.length !== 1 || m.shape[0] !== dOut)
      throw new ShapeError(
        "shape_mismatch",
        `${OP}: "${parts.magnitude}" has shape [${m.shape.join(", ")}], expected [${dOut}] (dOut of module "${modulePath}")`,
        { module: modulePath, shape: m.shape, dOut },
      );
    adapter.magnitude = m.data;
  } else if (config.useDora) {
    const missing = peftKey(modulePath, "magnitude");
    throw new AdapterFormatError(
      "missing_tensor",
      `${OP}: module "${modulePath}" has no tensor "${missing}" although the config has use_dora true`,
      { module: modulePath, name: missing },
    );
  }
  return adapter;
}

// Non-LoRA tensors: a LoRA module's own bias or base weight, or a saved full tensor (peft-saved.ts).
function readOthers(
  st: Parsed,
  config: PeftConfig,
  names: string[],
  modules: PeftModuleAdapter[],
  warnings: string[],
): Map<string, SavedTensor> {
  const byPath = new Map(modules.map((m) => [m.modulePath, m]));
  const out = new Map<string, SavedTensor>();
  const heads: string[] = [];
  for (const name of names) {
    const place = placeSavedTensor(OP, name, config, (p) => byPath.has(p));
    const t = floatTensor(st, name);
    if (place.to === "saved") {
      out.set(place.key, { ...t, role: place.role });
      if (place.role === "task_head") heads.push(place.key);
      continue;
    }
    const m = byPath.get(place.modulePath)!;
    if (place.param === "bias") m.bias = ownBias(m, name, t);
    else m.baseWeight = ownWeight(m, name, t);
  }
  if (heads.length > 0)
    warnings.push(
      `${OP}: ${heads.join(", ")} saved with modules_to_save null: read as a task head's full tensors, as PEFT before 0.7 saved them (modules_to_save set on the model, not in the config)`,
    );
  return out;
}

function ownBias(m: PeftModuleAdapter, name: string, t: SavedTensor): Float32Array {
  const dOut = m.up.cols;
  if (m.kind !== "linear" || t.shape.length !== 1 || t.shape[0] !== dOut)
    throw new ShapeError(
      "shape_mismatch",
      `${OP}: "${name}" has shape [${t.shape.join(", ")}], expected [${dOut}] (the bias of ${m.kind} module "${m.modulePath}", dOut ${dOut})`,
      { module: m.modulePath, name, shape: t.shape, expected: [dOut] },
    );
  return t.data;
}

function ownWeight(m: PeftModuleAdapter, name: string, t: SavedTensor): SavedTensor {
  const want = baseWeightShape(m.kind, m.fanInFanOut, m.down.rows, m.up.cols);
  if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1])
    throw new ShapeError(
      "shape_mismatch",
      `${OP}: "${name}" has shape [${t.shape.join(", ")}], expected [${want.join(", ")}] (the base weight of module "${m.modulePath}" as stored)`,
      { module: m.modulePath, name, shape: t.shape, expected: want },
    );
  return t;
}
