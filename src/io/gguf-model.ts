// Hugging Face checkpoint (config.json + safetensors tensor names) → the plan of a llama.cpp GGUF base model:
// metadata (hyperparameters as convert_hf_to_gguf.py writes them, a vocabulary) and, per tensor, its GGUF name,
// ne, type and the transform from the checkpoint's float32 values. Pure and browser-safe; lorakit/node streams
// the data (src/node/gguf-file.ts). Names, permutation and transposes come from gguf-names.ts.
// Vocabulary: a byte-level BPE tokenizer.json is converted (gguf-vocab.ts); otherwise a minimal SentencePiece-style byte vocabulary ("<0x00>" … "<0xFF>", type
// BYTE, then "<extra_N>" up to vocab_size) so that llama.cpp's tokenizer initialises (node-llama-cpp crashes on a
// model with no vocabulary). Token ids keep their meaning: the model's ids are used as they are.

import { ArgumentError, GgufError } from "../errors.js";
import {
  type GgufArchitecture,
  ggufNameOf,
  permutedHeads,
  permuteHeadRows,
  requireArchitecture,
} from "./gguf-names.js";
import type { GgufValue } from "./gguf-types.js";
import { vocabularyFromTokenizerJson } from "./gguf-vocab.js";

/** Tensor types a base model can be written in. */
export type GgufModelDtype = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0";

/** One tensor of the plan. */
export interface GgufModelTensor {
  /** GGUF name, e.g. "blk.0.attn_q.weight". */
  name: string;
  /** The checkpoint's tensor name. */
  source: string;
  /** ne (ggml order). */
  shape: number[];
  type: GgufModelDtype;
  /** Checkpoint values (row-major, checkpoint shape) → values in GGUF order. */
  transform: (x: Float32Array) => Float32Array;
}

export interface GgufModelPlan {
  architecture: GgufArchitecture;
  /** What was not converted as asked (e.g. a tokenizer.json of a kind lorakit does not convert). */
  warnings: string[];
  metadata: Record<string, GgufValue>;
  tensors: GgufModelTensor[];
}

const OP = "planGgufModel";
const FILE_TYPE: Record<GgufModelDtype, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, BF16: 32 };
const GPT2_CONV1D = /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

const u32 = (value: number): GgufValue => ({ type: "u32", value });
const f32 = (value: number): GgufValue => ({ type: "f32", value });
const str = (value: string): GgufValue => ({ type: "string", value });

function num(config: Record<string, unknown>, keys: string[], fallback?: number): number {
  for (const k of keys) {
    const v = config[k];
    if (typeof v === "number" && Number.isFinite(v)) return v;
  }
  if (fallback !== undefined) return fallback;
  throw new ArgumentError("invalid_argument", `${OP}: config.json has no number for ${keys.join(" / ")}`, { keys });
}

function ropeTheta(config: Record<string, unknown>): number {
  const rp = config.rope_parameters as Record<string, unknown> | undefined;
  if (rp && typeof rp.rope_theta === "number") return rp.rope_theta;
  return num(config, ["rope_theta"], 10000);
}

function hyperparameters(arch: GgufArchitecture, c: Record<string, unknown>): Record<string, GgufValue> {
  const p = (k: string) => `${arch}.${k}`;
  if (arch === "gpt2") {
    const nEmbd = num(c, ["n_embd"]);
    return {
      [p("context_length")]: u32(num(c, ["n_ctx", "n_positions"])),
      [p("embedding_length")]: u32(nEmbd),
      [p("feed_forward_length")]: u32(num(c, ["n_inner"], 4 * nEmbd)),
      [p("block_count")]: u32(num(c, ["n_layer"])),
      [p("attention.head_count")]: u32(num(c, ["n_head"])),
      [p("attention.layer_norm_epsilon")]: f32(num(c, ["layer_norm_epsilon"], 1e-5)),
    };
  }
  const hidden = num(c, ["hidden_size"]);
  const nHead = num(c, ["num_attention_heads"]);
  const headDim = num(c, ["head_dim"], hidden / nHead);
  const md: Record<string, GgufValue> = {
    [p("context_length")]: u32(num(c, ["max_position_embeddings"])),
    [p("embedding_length")]: u32(hidden),
    [p("block_count")]: u32(num(c, ["num_hidden_layers"])),
    [p("feed_forward_length")]: u32(num(c, ["intermediate_size"])),
    [p("attention.head_count")]: u32(nHead),
    [p("attention.head_count_kv")]: u32(num(c, ["num_key_value_heads"], nHead)),
    [p("attention.layer_norm_rms_epsilon")]: f32(num(c, ["rms_norm_eps"], 1e-6)),
    [p("rope.freq_base")]: f32(ropeTheta(c)),
  };
  if (arch === "llama") {
    md[p("vocab_size")] = u32(num(c, ["vocab_size"]));
    md[p("rope.dimension_count")] = u32(headDim);
  }
  if (arch === "gemma" || headDim !== hidden / nHead) {
    md[p("attention.key_length")] = u32(headDim);
    md[p("attention.value_length")] = u32(headDim);
  }
  return md;
}

/** The minimal byte vocabulary described in the module header, for `n` tokens. */
export function byteVocabulary(n: number, config: Record<string, unknown>): Record<string, GgufValue> {
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < n; i++) {
    tokens.push(i < 256 ? `<0x${i.toString(16).toUpperCase().padStart(2, "0")}>` : `<extra_${i}>`);
    types.push(i < 256 ? 6 : 4); // 6 = BYTE, 4 = USER_DEFINED (llama_token_type)
  }
  const md: Record<string, GgufValue> = {
    "tokenizer.ggml.model": str("llama"),
    "tokenizer.ggml.tokens": { type: "array", itemType: "string", value: tokens },
    "tokenizer.ggml.scores": { type: "array", itemType: "f32", value: new Array(n).fill(0) },
    "tokenizer.ggml.token_type": { type: "array", itemType: "i32", value: types },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: false },
  };
  for (const [k, key] of [
    ["bos_token_id", "tokenizer.ggml.bos_token_id"],
    ["eos_token_id", "tokenizer.ggml.eos_token_id"],
  ] as const) {
    const id = config[k];
    if (typeof id === "number" && Number.isInteger(id) && id >= 0 && id < n) md[key] = u32(id);
  }
  return md;
}

/** Options of planGgufModel. */
export interface PlanGgufModelOptions {
  /** tokenizer.json as parsed; byte-level BPE is converted (gguf-vocab.ts), anything else gets the byte vocabulary. */
  tokenizer?: unknown;
  /** Type of 2-D weights (default F16); vectors are always F32, and a row length that is not a multiple of 32
   * falls back to F16 for Q8_0 / Q4_0. */
  dtype?: GgufModelDtype;
  name?: string;
}

/**
 * Plans the GGUF base model of a Hugging Face checkpoint.
 * @param config config.json as parsed   @param tensors the checkpoint's tensor names and row-major shapes
 * @throws {GgufError} "unsupported_architecture"   @throws {ArgumentError} missing hyperparameters
 */
export function planGgufModel(
  config: Record<string, unknown>,
  tensors: ReadonlyMap<string, readonly number[]>,
  options: PlanGgufModelOptions = {},
): GgufModelPlan {
  const archName = (Array.isArray(config.architectures) ? config.architectures[0] : undefined) ?? config.model_type;
  const arch = requireArchitecture(String(archName), OP);
  if (arch === "phi3")
    throw new GgufError(
      "unsupported_architecture",
      `${OP}: phi3 base models are not converted (their rope scaling tensors are not implemented); phi3 adapters are`,
      { architecture: arch },
    );
  const dtype = options.dtype ?? "F16";
  const heads =
    arch === "llama"
      ? {
          nHead: num(config, ["num_attention_heads"]),
          nHeadKv: num(config, ["num_key_value_heads", "num_attention_heads"]),
        }
      : undefined;
  const out: GgufModelTensor[] = [];
  let vocab = num(config, ["vocab_size"]);
  for (const [source, shape] of tensors) {
    if (arch === "gpt2" && /\.attn\.(masked_)?bias$/.test(source)) continue; // causal-mask buffers
    if (arch === "gemma" && source === "lm_head.weight") continue; // tied in llama.cpp's gemma
    const m = /^(.+)\.(weight|bias)$/.exec(source);
    const base = m ? ggufNameOf(arch, m[1]!) : null;
    if (!m || base === null)
      throw new GgufError(
        "unexpected_tensor",
        `${OP}: checkpoint tensor "${source}" has no llama.cpp name in ${arch}`,
        {
          name: source,
        },
      );
    const name = `${base}.${m[2]}`;
    const transform = tensorTransform(arch, source, shape, base, heads);
    const ne = arch === "gpt2" && GPT2_CONV1D.test(source) ? [...shape] : [...shape].reverse();
    const is2d = ne.length === 2;
    let type: GgufModelDtype = is2d ? dtype : "F32";
    if ((type === "Q8_0" || type === "Q4_0") && ne[0]! % 32 !== 0) type = "F16";
    if (base === "token_embd") vocab = shape[0]!;
    out.push({ name, source, shape: ne, type, transform });
  }
  const warnings: string[] = [];
  let vocabulary = byteVocabulary(vocab, config);
  if (options.tokenizer !== undefined) {
    const v = vocabularyFromTokenizerJson(options.tokenizer, vocab, config);
    if ("metadata" in v) vocabulary = v.metadata;
    else warnings.push(`${v.unsupported}: wrote lorakit's minimal byte vocabulary instead (token ids are unchanged)`);
  }
  const metadata: Record<string, GgufValue> = {
    "general.architecture": str(arch),
    "general.type": str("model"),
    "general.name": str(options.name ?? "lorakit model"),
    "general.file_type": u32(FILE_TYPE[dtype]),
    "general.quantization_version": u32(2),
    ...hyperparameters(arch, config),
    ...vocabulary,
  };
  return { architecture: arch, warnings, metadata, tensors: out };
}

function tensorTransform(
  arch: GgufArchitecture,
  source: string,
  shape: readonly number[],
  base: string,
  heads: { nHead: number; nHeadKv: number } | undefined,
): (x: Float32Array) => Float32Array {
  if (arch === "gpt2" && GPT2_CONV1D.test(source)) {
    // Conv1D [in, out] → [out, in], so ne = [in, out] like a Linear
    const [rows, cols] = shape as [number, number];
    return (x) => {
      const t = new Float32Array(x.length);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
      return t;
    };
  }
  if (arch === "gemma" && /norm\.weight$/.test(source)) return (x) => x.map((v) => v + 1); // Gemma's RMSNorm is 1 + w
  const nHead = permutedHeads(arch, base, heads, OP);
  if (nHead !== null) {
    const rows = shape[0]!;
    const cols = shape.length > 1 ? shape[1]! : 1;
    return (x) => permuteHeadRows(x, rows, cols, nHead);
  }
  return (x) => x;
}
