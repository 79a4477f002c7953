// PEFT / MLX adapters ⇄ llama.cpp GGUF LoRA adapters. Pure and browser-safe: bytes in, bytes out.
// GGUF LoRA (llama.cpp src/llama-adapter.cpp, llama-graph.cpp build_lora_mm / build_inp_embd):
//   metadata general.type = "adapter", adapter.type = "lora", general.architecture, adapter.lora.alpha (f32, one
//   per file); per base tensor W ("blk.N.attn_q.weight"): "<W>.lora_a" and "<W>.lora_b";
//   linear:    lora_a ne [dIn, r] (= PEFT lora_A [r, dIn] = downᵀ), lora_b ne [r, dOut] (= PEFT lora_B = upᵀ);
//   token_embd: lora_a ne [r, vocab] (= down [vocab, r]),          lora_b ne [r, embDim] (= upᵀ);
//   llama.cpp adds scale·(b·(a·x)) with scale = alpha / r, r = lora_b.ne[0] (alpha 0 means scale 1).
// Exact scaling: every module's PEFT factor (alpha/r, alpha/√r with rsLoRA, rank_pattern, alpha_pattern, MLX's
// scale) is folded into lora_b, every pair is padded with zero rank components to the largest rank R, and the file
// says alpha = R, so llama.cpp's alpha/r is exactly 1 for every pair. Padding adds exact zeros to the products.
// Reading back trims trailing rank components that are zero in both factors.

import { AdapterFormatError, ArgumentError, GgufError } from "../errors.js";
import type { Matrix } from "../matrix.js";
import {
  invalidArgument,
  oneOf,
  optionsArg,
  requireAdapter,
  requireFiniteWritten,
  requireModules,
  requireObject,
} from "./format-args.js";
import { encodeGgmlTensor } from "./ggml-quant.js";
import { ggufRequire, parseGguf, serializeGguf } from "./gguf.js";
import {
  type AttentionHeads,
  type GgufArchitecture,
  ggufNameOf,
  hfModuleOf,
  permutedHeads,
  permuteHeadRows,
  requireArchitecture,
} from "./gguf-names.js";
import type { GgufValue } from "./gguf-types.js";
import type { MlxAdapter } from "./mlx-adapter.js";
import type { PeftAdapter, PeftModuleAdapter } from "./peft-adapter.js";
import { type SavedPeftAdapter, savePeftAdapter } from "./peft-save.js";

/** Options of adapterToGguf. */
export interface AdapterToGgufOptions {
  /** GGUF architecture, or a transformers class / model_type ("LlamaForCausalLM", "mistral"). */
  architecture: string;
  /** Head counts of the base model; needed for llama q_proj / k_proj adapters (Q/K row permutation). */
  heads?: AttentionHeads;
  /** Tensor type of the factors (default F32). */
  dtype?: "F32" | "F16" | "BF16";
  /** general.name (default "lorakit adapter"). */
  name?: string;
}

const OP = "adapterToGguf";

// What GGUF LoRA cannot carry, refused by name.
function refuseInexpressible(adapter: PeftAdapter | MlxAdapter): void {
  const refuse = (what: string, detail: Record<string, unknown>): never => {
    throw new AdapterFormatError("unsupported_format", `${OP}: ${what}; a llama.cpp GGUF LoRA cannot express it`, {
      ...detail,
      reason: "inexpressible",
    });
  };
  for (const m of adapter.modules) {
    if (m.magnitude !== undefined)
      refuse(`module "${m.modulePath}" is DoRA (lora_magnitude_vector, use_dora)`, { module: m.modulePath });
    if (m.bias !== undefined)
      refuse(`module "${m.modulePath}" has a trained bias (bias != "none", saved as base_layer.bias)`, {
        module: m.modulePath,
      });
    if (m.baseWeight !== undefined)
      refuse(`module "${m.modulePath}" carries its own base weight (base_layer.weight, save_embedding_layers)`, {
        module: m.modulePath,
      });
  }
  if (adapter.format === "peft") {
    for (const key of adapter.modulesToSave.keys())
      refuse(
        `tensor "${key}" is a full ${key.endsWith(".bias") ? 'trained bias (bias != "none")' : "modules_to_save copy"}`,
        { name: key },
      );
  }
}

function padded(m: Matrix<Float32Array>, rows: number, cols: number): Float32Array {
  if (m.rows === rows && m.cols === cols) return m.data;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < m.rows; i++) out.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), i * cols);
  return out;
}

function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j]!;
  return out;
}

interface Pair {
  name: string;
  a: { shape: number[]; data: Float32Array };
  b: { shape: number[]; data: Float32Array };
}

// The output rows of a Q/K module, refused unless they split into nHead heads of an even size.
function requireHeadRows(name: string, dOut: number, nHead: number, op: string): number {
  if (dOut % (2 * nHead) !== 0)
    throw new GgufError(
      "invalid_metadata",
      `${op}: "${name}" has ${dOut} output rows, expected a multiple of 2·nHead = ${2 * nHead} (the head counts do not fit this model)`,
      { name, rows: dOut, nHead },
    );
  return dOut;
}

// One module → its two GGUF tensors, scaling folded into lora_b and the rank padded to R.
function modulePair(arch: GgufArchitecture, m: PeftModuleAdapter, R: number, heads: AttentionHeads | undefined): Pair {
  const base = ggufNameOf(arch, m.modulePath);
  if (base === null)
    throw new AdapterFormatError(
      "unexpected_tensor",
      `${OP}: module "${m.modulePath}" has no llama.cpp tensor name in architecture ${arch}`,
      { module: m.modulePath, architecture: arch },
    );
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  // upScaled: [R, dOut] = scaling·up, zero rows past r
  const up = padded(m.up, R, dOut);
  const upScaled = new Float32Array(up.length);
  for (let i = 0; i < up.length; i++) upScaled[i] = m.scaling * up[i]!;
  const down = padded(m.down, dIn, R); // [dIn, R]
  if (m.kind === "embedding") {
    if (base !== "token_embd")
      throw new AdapterFormatError(
        "unexpected_tensor",
        `${OP}: embedding LoRA on "${m.modulePath}" (${base}); llama.cpp applies embedding LoRA to token_embd only`,
        { module: m.modulePath },
      );
    // lora_a ne [R, vocab] = down [vocab, R] as stored; lora_b ne [R, embDim] = upᵀ [embDim, R]
    return {
      name: `${base}.weight`,
      a: { shape: [R, dIn], data: down },
      b: { shape: [R, dOut], data: transposed(upScaled, R, dOut) },
    };
  }
  let b = transposed(upScaled, R, dOut); // [dOut, R] row-major = ne [R, dOut]
  const nHead = permutedHeads(arch, base, heads, OP);
  if (nHead !== null) b = permuteHeadRows(b, requireHeadRows(base, dOut, nHead, OP), R, nHead);
  return {
    name: `${base}.weight`,
    a: { shape: [dIn, R], data: transposed(down, dIn, R) },
    b: { shape: [R, dOut], data: b },
  };
}

/**
 * Converts a loaded PEFT or MLX adapter into a llama.cpp GGUF LoRA adapter file, exactly: each module's PEFT
 * scaling is folded into lora_b and adapter.lora.alpha equals the (common, zero-padded) rank.
 * @throws {AdapterFormatError} "unsupported_format" for DoRA, modules_to_save and trained biases;
 *   "unexpected_tensor" for a module with no llama.cpp name
 * @throws {GgufError} "unsupported_architecture"; "invalid_metadata" when llama q/k adapters come without head counts
 * @throws {ArgumentError} "non_finite" for a module whose scaling is NaN / ±Infinity or whose factors as written
 *   would hold a non-finite value ("invalid_value" for a scaling that is not a number)
 * @example const bytes = adapterToGguf(loadPeftAdapter(files), { architecture: "llama", heads: { nHead: 32, nHeadKv: 8 } })
 */
export function adapterToGguf(adapter: PeftAdapter | MlxAdapter, options: AdapterToGgufOptions): Uint8Array {
  requireAdapter(OP, adapter);
  requireObject(OP, "options", options, "{ architecture, heads?, dtype?, name? }");
  if (typeof options.architecture !== "string")
    throw invalidArgument(
      OP,
      "options.architecture",
      options.architecture,
      'a name such as "llama" or "LlamaForCausalLM"',
    );
  const arch = requireArchitecture(options.architecture, OP);
  const dtype = oneOf(OP, "options.dtype", options.dtype, ["F32", "F16", "BF16"] as const) ?? "F32";
  if (options.name !== undefined && options.name !== null && typeof options.name !== "string")
    throw invalidArgument(OP, "options.name", options.name, "a string (general.name)");
  refuseInexpressible(adapter);
  if (adapter.modules.length === 0)
    throw new ArgumentError("invalid_argument", `${OP}: the adapter has no modules`, {});
  let R = 0; // the largest rank, by a loop: spreading ~150k ranks into Math.max overflows the stack
  for (const m of adapter.modules) R = Math.max(R, m.r);
  const tensors = [];
  for (const m of adapter.modules) {
    const p = modulePair(arch, m, R, options.heads ?? undefined);
    for (const [which, t] of [
      ["lora_a", p.a],
      ["lora_b", p.b],
    ] as const) {
      const data = encodeGgmlTensor(dtype, t.data);
      requireFiniteWritten(OP, m, which === "lora_a" ? "down" : "up", which, t.data, dtype, data);
      tensors.push({ name: `${p.name}.${which}`, shape: t.shape, type: dtype, data });
    }
  }
  const metadata: Record<string, GgufValue> = {
    "general.architecture": { type: "string", value: arch },
    "general.type": { type: "string", value: "adapter" },
    "general.name": { type: "string", value: options.name ?? "lorakit adapter" },
    "adapter.type": { type: "string", value: "lora" },
    "adapter.lora.alpha": { type: "f32", value: R },
  };
  return serializeGguf(metadata, tensors);
}

/** A GGUF LoRA adapter read back into per-module adapters (PEFT module paths, lorakit layout). */
export interface GgufLoraAdapter {
  architecture: GgufArchitecture;
  /** adapter.lora.alpha as stored (0: llama.cpp scales every pair by 1). */
  alpha: number;
  modules: PeftModuleAdapter[];
}

/**
 * Reads a llama.cpp GGUF LoRA adapter: names mapped back to Hugging Face module paths, the Q/K permutation
 * undone, scaling = alpha / r per pair (1 when alpha is 0) as llama.cpp computes it.
 * @throws {GgufError} any parse error, "invalid_metadata" (not a LoRA adapter), "unsupported_architecture",
 *   "missing_tensor" (half a pair), "tensor_invalid_info" (shapes that do not pair up)
 */
export function ggufToAdapter(bytes: Uint8Array, options: { heads?: AttentionHeads } = {}): GgufLoraAdapter {
  const op = "ggufToAdapter";
  if (!(bytes instanceof Uint8Array) && !((bytes as unknown) instanceof ArrayBuffer))
    throw invalidArgument(op, "bytes", bytes, "a Uint8Array (a GGUF LoRA adapter's bytes)");
  const heads = optionsArg<{ heads?: AttentionHeads }>(op, "options", options, "{ heads? }").heads ?? undefined;
  const g = parseGguf(bytes);
  for (const [k, want] of [
    ["general.type", "adapter"],
    ["adapter.type", "lora"],
  ] as const) {
    const v = ggufRequire(g.metadata, k, ["string"], op).value;
    if (v !== want)
      throw new GgufError("invalid_metadata", `${op}: ${k} is "${v}", expected "${want}" (not a LoRA adapter)`, {
        key: k,
      });
  }
  const arch = requireArchitecture(ggufRequire(g.metadata, "general.architecture", ["string"], op).value, op);
  const alpha = g.metadata.has("adapter.lora.alpha")
    ? Number(ggufRequire(g.metadata, "adapter.lora.alpha", ["f32", "f64"], op).value)
    : 0;
  if (!Number.isFinite(alpha))
    throw new GgufError("invalid_metadata", `${op}: adapter.lora.alpha is ${alpha}, expected a finite number`, {
      key: "adapter.lora.alpha",
      value: alpha,
    });
  const bases = new Map<string, { a?: string; b?: string }>();
  for (const name of g.names()) {
    const m = /^(.+)\.lora_([ab])$/.exec(name);
    if (!m) {
      if (name.endsWith("_norm.weight")) continue; // llama.cpp ignores norm vectors in adapters too
      throw new GgufError("unexpected_tensor", `${op}: tensor "${name}" is not a LoRA factor (.lora_a / .lora_b)`, {
        name,
      });
    }
    const e = bases.get(m[1]!) ?? {};
    e[m[2] as "a" | "b"] = name;
    bases.set(m[1]!, e);
  }
  const modules: PeftModuleAdapter[] = [];
  const baseOf = new Map<string, string>(); // module path → the GGUF base name it was read from
  for (const [base, e] of bases) {
    const m = readPair(g, arch, base, e, alpha, heads, op);
    const first = baseOf.get(m.modulePath);
    if (first !== undefined)
      throw new GgufError(
        "duplicate_name",
        `${op}: "${base}" and "${first}" both map to module "${m.modulePath}", expected one pair per module`,
        { name: base, other: first, module: m.modulePath },
      );
    baseOf.set(m.modulePath, base);
    modules.push(m);
  }
  return { architecture: arch, alpha, modules };
}

function readPair(
  g: ReturnType<typeof parseGguf>,
  arch: GgufArchitecture,
  base: string,
  e: { a?: string; b?: string },
  alpha: number,
  heads: AttentionHeads | undefined,
  op: string,
): PeftModuleAdapter {
  if (e.a === undefined || e.b === undefined)
    throw new GgufError(
      "missing_tensor",
      `${op}: "${base}" has no ${e.a === undefined ? "lora_a" : "lora_b"} tensor (each pair needs both)`,
      { name: base },
    );
  const ia = g.info(e.a);
  const ib = g.info(e.b);
  // "token_embd.weight.lora_a" is what llama.cpp writes and loads; "token_embd.lora_a" is read as the same tensor
  // (as "blk.N.attn_v.lora_a" is), so its layout is the embedding one too
  const gguf = base.replace(/\.weight$/, "");
  const isEmbd = gguf === "token_embd";
  const rank = ib.shape[0]!;
  const ok = ia.shape.length === 2 && ib.shape.length === 2 && (isEmbd ? ia.shape[0] === rank : ia.shape[1] === rank);
  if (!ok)
    throw new GgufError(
      "tensor_invalid_info",
      `${op}: "${base}" has lora_a ne [${ia.shape.join(", ")}] and lora_b ne [${ib.shape.join(", ")}], expected ${isEmbd ? "[r, vocab] and [r, embDim]" : "[dIn, r] and [r, dOut]"}`,
      { name: base },
    );
  if (rank === 0 || [...ia.shape, ...ib.shape].includes(0))
    throw new GgufError(
      "tensor_invalid_info",
      `${op}: "${base}" has lora_a ne [${ia.shape.join(", ")}] and lora_b ne [${ib.shape.join(", ")}], expected every dimension ≥ 1 (rank ${rank})`,
      { name: base, rank },
    );
  const scaling = alpha !== 0 ? Math.fround(alpha / rank) : 1;
  if (!Number.isFinite(scaling))
    throw new GgufError(
      "invalid_metadata",
      `${op}: adapter.lora.alpha ${alpha} / rank ${rank} of "${base}" is ${scaling} in float32, expected a finite scale`,
      { key: "adapter.lora.alpha", name: base, alpha, rank },
    );
  const modulePath = hfModuleOf(arch, gguf);
  if (modulePath === null)
    throw new GgufError(
      "unexpected_tensor",
      `${op}: "${base}" has no Hugging Face module name in architecture ${arch}`,
      { name: base },
    );
  const a = g.toFloat32(e.a);
  let b = g.toFloat32(e.b); // [dOut, r] row-major
  const dOut = ib.shape[1]!;
  const dIn = isEmbd ? ia.shape[1]! : ia.shape[0]!;
  const nHead = isEmbd ? null : permutedHeads(arch, gguf, heads, op);
  if (nHead !== null) b = permuteHeadRows(b, requireHeadRows(base, dOut, nHead, op), rank, nHead, true);
  const down = isEmbd ? a : transposed(a, rank, dIn); // [dIn, r]
  const up = transposed(b, dOut, rank); // [r, dOut]
  const r = trimmedRank(down, up, dIn, dOut, rank);
  return {
    modulePath,
    kind: isEmbd ? "embedding" : "linear",
    down: { data: r === rank ? down : sliceCols(down, dIn, rank, r), rows: dIn, cols: r },
    up: { data: up.subarray(0, r * dOut).slice(), rows: r, cols: dOut },
    r,
    alpha: scaling * r,
    scaling,
    fanInFanOut: arch === "gpt2" && !isEmbd,
    dtype: ia.type.name === "F16" || ia.type.name === "BF16" ? ia.type.name : "F32",
  };
}

// Trailing rank components that are zero in both factors contribute nothing (lorakit pads ranks with them).
function trimmedRank(down: Float32Array, up: Float32Array, dIn: number, dOut: number, rank: number): number {
  let r = rank;
  while (r > 1) {
    const k = r - 1;
    let zero = true;
    for (let i = 0; i < dIn && zero; i++) zero = down[i * rank + k] === 0;
    for (let j = 0; j < dOut && zero; j++) zero = up[k * dOut + j] === 0;
    if (!zero) break;
    r--;
  }
  return r;
}

function sliceCols(m: Float32Array, rows: number, cols: number, keep: number): Float32Array {
  const out = new Float32Array(rows * keep);
  for (let i = 0; i < rows; i++) out.set(m.subarray(i * cols, i * cols + keep), i * keep);
  return out;
}

/**
 * PEFT files (adapter_config.json text + adapter_model.safetensors bytes) for per-module adapters, exactly: each
 * module's alpha is written as scaling·r (rank_pattern / alpha_pattern where modules differ), use_rslora false,
 * so PEFT's alpha/r equals the module's scaling. Used for GGUF → PEFT and MLX → PEFT.
 */
export function modulesToPeft(
  modules: readonly PeftModuleAdapter[],
  options: { fanInFanOut?: boolean; baseModelClass?: string } = {},
): SavedPeftAdapter {
  requireModules("modulesToPeft", "modules", modules);
  options = optionsArg("modulesToPeft", "options", options, "{ fanInFanOut?, baseModelClass? }");
  if (modules.length === 0) throw new ArgumentError("invalid_argument", "modulesToPeft: no modules", {});
  const exact = modules.map((m) => ({ ...m, alpha: m.scaling * m.r }));
  const first = exact[0]!;
  const config: Record<string, unknown> = {
    peft_type: "LORA",
    r: first.r,
    lora_alpha: first.alpha,
    fan_in_fan_out: options.fanInFanOut ?? modules.some((m) => m.fanInFanOut),
    target_modules: [...new Set(modules.map((m) => m.modulePath.split(".").pop()!))].sort(),
  };
  if (options.baseModelClass !== undefined)
    config.auto_mapping = { base_model_class: options.baseModelClass, parent_library: "transformers" };
  return savePeftAdapter(exact, config);
}
