// The one module that knows PEFT's tensor names and layout (PEFT.md §1, §10). Everything else uses down/up.
//   <prefix><module path>.lora_A[.<adapter>].weight   [r, dIn]  = downᵀ
//   <prefix><module path>.lora_B[.<adapter>].weight   [dOut, r] = upᵀ
//   <prefix><module path>.lora_embedding_A[.<adapter>] [r, numEmbeddings] = downᵀ (dIn = numEmbeddings)
//   <prefix><module path>.lora_embedding_B[.<adapter>] [embeddingDim, r] = upᵀ   (dOut = embeddingDim)
//   <prefix><module path>.lora_magnitude_vector[.<adapter>][.weight] [dOut]  (DoRA)
// prefix is "base_model.model." (written) or "base_model." (also read). The adapter name is absent on disk;
// an in-memory state dict has it right before the last segment (.weight) or as the final suffix.
// Base weights: a linear layer stores [dOut, dIn] = Wᵀ, or [dIn, dOut] = W with fan_in_fan_out (GPT-2 Conv1D);
// an embedding stores [numEmbeddings, embeddingDim] = W.

import type { Matrix } from "../matrix.js";

/** The prefix PEFT writes before every key. */
export const PEFT_PREFIX = "base_model.model.";
const PREFIXES = [PEFT_PREFIX, "base_model."];

/** What a LoRA tensor is: the low-rank factors of a linear or embedding layer, or a DoRA magnitude. */
export type PeftTensorRole = "down" | "up" | "embeddingDown" | "embeddingUp" | "magnitude";

/** A parsed LoRA tensor key. */
export interface PeftKey {
  modulePath: string;
  role: PeftTensorRole;
  /** Adapter name when the key came from an in-memory state dict (e.g. "default"). */
  adapterName?: string;
}

const ROLE_OF: Record<string, PeftTensorRole> = {
  lora_A: "down",
  lora_B: "up",
  lora_embedding_A: "embeddingDown",
  lora_embedding_B: "embeddingUp",
  lora_magnitude_vector: "magnitude",
};
const SEGMENT_OF: Record<PeftTensorRole, string> = {
  down: "lora_A",
  up: "lora_B",
  embeddingDown: "lora_embedding_A",
  embeddingUp: "lora_embedding_B",
  magnitude: "lora_magnitude_vector",
};

const WEIGHT_KEY = /^(.+)\.(lora_A|lora_B)(?:\.([^.]+))?\.weight$/;
const PARAM_KEY = /^(.+)\.(lora_embedding_A|lora_embedding_B|lora_magnitude_vector)(?:\.([^.]+))?(?:\.weight)?$/;

/** Removes a leading "base_model.model." or "base_model." (the longest that applies). */
export function stripPeftPrefix(key: string): string {
  for (const p of PREFIXES) if (key.startsWith(p)) return key.slice(p.length);
  return key;
}

/** Parses a LoRA tensor key; null for any other key (modules_to_save tensors, biases). */
export function parsePeftKey(key: string): PeftKey | null {
  const rest = stripPeftPrefix(key);
  const m = WEIGHT_KEY.exec(rest) ?? PARAM_KEY.exec(rest);
  if (!m) return null;
  const role = ROLE_OF[m[2]!]!;
  const name = m[3];
  return name === undefined || name === "weight"
    ? { modulePath: m[1]!, role }
    : { modulePath: m[1]!, role, adapterName: name };
}

/** The on-disk key PEFT writes for a module's tensor (prefix added, adapter name stripped). */
export function peftKey(modulePath: string, role: PeftTensorRole): string {
  const seg = SEGMENT_OF[role];
  return role === "down" || role === "up"
    ? `${PEFT_PREFIX}${modulePath}.${seg}.weight`
    : `${PEFT_PREFIX}${modulePath}.${seg}`;
}

/**
 * The plain model key of a non-LoRA tensor (modules_to_save, bias): prefix and the in-memory
 * "modules_to_save.<adapter>." wrapper removed, e.g. "base_model.model.classifier.weight" → "classifier.weight".
 */
export function plainModelKey(key: string): string {
  return stripPeftPrefix(key).replace(/\.modules_to_save\.[^.]+\./, ".");
}

/**
 * A module's own base-layer tensor, as PEFT saves it next to the LoRA factors: "<module>.base_layer.weight" (the
 * full embedding or lm_head with save_embedding_layers) or "<module>.base_layer.bias" (bias "lora_only"/"all");
 * older PEFT (no base_layer wrapper) wrote "<module>.bias". Takes a plain model key; null for anything else.
 */
export function parseBaseLayerKey(
  modelKey: string,
  isModule: (path: string) => boolean,
): { modulePath: string; param: "weight" | "bias" } | null {
  const m = /^(.+)\.base_layer\.(weight|bias)$/.exec(modelKey);
  if (m && isModule(m[1]!)) return { modulePath: m[1]!, param: m[2] as "weight" | "bias" };
  const b = /^(.+)\.bias$/.exec(modelKey);
  if (b && isModule(b[1]!)) return { modulePath: b[1]!, param: "bias" };
  return null;
}

/** The on-disk key PEFT writes for a module's own base-layer tensor. */
export function peftBaseLayerKey(modulePath: string, param: "weight" | "bias"): string {
  return `${PEFT_PREFIX}${modulePath}.base_layer.${param}`;
}

/** The on-disk key of a modules_to_save tensor given its plain model key. */
export function peftPlainKey(modelKey: string): string {
  return `${PEFT_PREFIX}${modelKey}`;
}

/** The stored shape of a factor: [r, dIn] for down/embeddingDown, [dOut, r] for up/embeddingUp. */
export function peftFactorShape(
  role: "down" | "up" | "embeddingDown" | "embeddingUp",
  dIn: number,
  dOut: number,
  r: number,
): number[] {
  return role === "down" || role === "embeddingDown" ? [r, dIn] : [dOut, r];
}

/** Reads dIn, dOut and r from the stored shapes of a module's two factors (checked by the caller). */
export function dimsFromPeftShapes(
  downShape: readonly number[],
  upShape: readonly number[],
): {
  dIn: number;
  dOut: number;
  r: number;
  rUp: number;
} {
  return { r: downShape[0]!, dIn: downShape[1]!, dOut: upShape[0]!, rUp: upShape[1]! };
}

/** Transposed copy of a row-major [rows, cols] array into a fresh [cols, rows] matrix. */
function transposed(data: Float32Array, rows: number, cols: number): Matrix<Float32Array> {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = data[o + j]!;
  }
  return { data: out, rows: cols, cols: rows };
}

/** down [dIn, r] from PEFT's stored [r, dIn] (lora_A / lora_embedding_A). */
export function downFromPeft(stored: Float32Array, r: number, dIn: number): Matrix<Float32Array> {
  return transposed(stored, r, dIn);
}

/** up [r, dOut] from PEFT's stored [dOut, r] (lora_B / lora_embedding_B). */
export function upFromPeft(stored: Float32Array, dOut: number, r: number): Matrix<Float32Array> {
  return transposed(stored, dOut, r);
}

/** PEFT's stored [r, dIn] from down [dIn, r]. */
export function downToPeft(down: Matrix<Float32Array>): Float32Array {
  return transposed(down.data, down.rows, down.cols).data;
}

/** PEFT's stored [dOut, r] from up [r, dOut]. */
export function upToPeft(up: Matrix<Float32Array>): Float32Array {
  return transposed(up.data, up.rows, up.cols).data;
}

/**
 * Whether a module's base weight is stored transposed ([dOut, dIn] = Wᵀ, nn.Linear) rather than as W
 * ([dIn, dOut]: fan_in_fan_out Conv1D, or an embedding table).
 */
export function baseIsTransposed(kind: "linear" | "embedding", fanInFanOut: boolean): boolean {
  return kind === "linear" && !fanInFanOut;
}

/** The stored shape of a module's base weight. */
export function baseWeightShape(
  kind: "linear" | "embedding",
  fanInFanOut: boolean,
  dIn: number,
  dOut: number,
): number[] {
  return baseIsTransposed(kind, fanInFanOut) ? [dOut, dIn] : [dIn, dOut];
}

/**
 * Candidate base-model tensor names for a module path, most specific first: "<path>.weight", then the same
 * without the first segment (PEFT wraps e.g. GPT2LMHeadModel, whose "transformer." prefix a GPT2Model
 * checkpoint omits).
 */
export function baseTensorCandidates(modulePath: string): string[] {
  const out = [`${modulePath}.weight`];
  const dot = modulePath.indexOf(".");
  if (dot > 0) out.push(`${modulePath.slice(dot + 1)}.weight`);
  return out;
}

/**
 * The parameter name an ONNX Runtime adapter (.onnx_adapter) gives a module's factor, in the convention of Olive's
 * `convert-adapters` (the one ONNX models exported by Olive's ExtractAdapters pass take as inputs): PEFT's on-disk
 * key with "base_model.model.model" shortened to "model", e.g. "model.layers.0.self_attn.q_proj.lora_A.weight";
 * other prefixes are kept as PEFT writes them. down is stored [dIn, r], up [r, dOut] (PEFT's tensors transposed).
 */
export function onnxAdapterParamName(modulePath: string, role: "down" | "up"): string {
  const key = peftKey(modulePath, role);
  return modulePath.startsWith("model.") ? key.slice(PEFT_PREFIX.length) : key;
}

/** Parses an ONNX Runtime adapter parameter name (onnxAdapterParamName's inverse); null for any other name. */
export function parseOnnxAdapterParamName(name: string): { modulePath: string; role: "down" | "up" } | null {
  const k = parsePeftKey(name);
  if (k === null || k.adapterName !== undefined || (k.role !== "down" && k.role !== "up")) return null;
  return { modulePath: k.modulePath, role: k.role };
}
