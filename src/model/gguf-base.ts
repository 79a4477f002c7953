// A llama.cpp GGUF base model as the runtime's input: its metadata → a config.json-like object (then
// parseModelConfig), and its tensors → a TensorFile under Hugging Face names and layouts, the inverse of
// src/io/gguf-model.ts's plan:
//   blk.N.* / token_embd / output_norm / output / position_embd → HF names (gguf-names.ts hfModuleOf)
//   a GGUF tensor of ne [cols, rows] is row-major [rows, cols] = the HF Linear weight [dOut, dIn] as stored
//   llama (and mistral) attn_q / attn_k rows: llama.cpp's per-head permutation undone (permuteHeadRows inverse)
//   gpt2 attn_qkv / attn_output / ffn_up / ffn_down: stored [out, in] row-major → transposed to Conv1D [in, out]
// Types F32, F16, BF16, Q8_0, Q4_0 are decoded to float32 at load, except Q8_0 / Q4_0 weights of the block
// projections (attn_q/k/v/qkv/output, ffn_gate/up/down): those stay quantized, stored [dOut, dIn] with blocks along
// dIn (QuantMatrix layout "out_in", gpt2's included, never transposed to Conv1D), and run through the quantized
// kernels with adapters unmerged on top. A Q8_0 / Q4_0 token_embd and output stay quantized as well ([vocab,
// hidden]: the head's [dOut, dIn]; an embedding row is dequantized per token). Norms, biases and gpt2's positions
// are decoded. `dequantize: true` decodes everything to float32 as before. Any other type is refused by tensor
// name before anything is allocated.
// Architectures: llama, qwen2, gpt2 (others refused by name).

import { ArgumentError, GgufError, ModelError } from "../errors.js";
import { hfModuleOf, permuteHeadRows } from "../io/gguf-names.js";
import { GGML_CODED_TYPES, type GgmlCodedType, type GgufTensorInfo, type GgufValue } from "../io/gguf-types.js";
import type { QuantType } from "../lora/quant.js";
import { type ModelConfig, parseModelConfig } from "./config.js";
import { CausalLM } from "./model.js";
import { showValue } from "./show.js";
import type { TensorFile } from "./weights.js";

/** A GGUF file's header and tensor reads: parseGguf's result (in memory) or lorakit/node's openGguf (on demand). */
export interface GgufModelFile {
  metadata: ReadonlyMap<string, GgufValue>;
  names(): string[];
  info(name: string): GgufTensorInfo;
  toFloat32?(name: string): Float32Array;
  readFloat32?(name: string): Promise<Float32Array>;
  /** A tensor's stored bytes (parseGguf's result); lets quantized projections stay quantized. */
  bytes?(name: string): Uint8Array;
  /** A tensor's stored bytes read from the file (openGguf). */
  read?(name: string): Promise<Uint8Array>;
}

/** Options of loadGgufModel / ggufTensorFile. */
export interface GgufModelOptions {
  /**
   * Decode Q8_0 / Q4_0 weights (the projections, token_embd and output) to float32 at load instead of keeping them
   * quantized. Default false.
   */
  dequantize?: boolean;
}

const OP = "loadGgufModel";
const RUNTIME_ARCHS = ["llama", "qwen2", "gpt2"] as const;
type RuntimeArch = (typeof RUNTIME_ARCHS)[number];
const GPT2_CONV1D = /^blk\.\d+\.(attn_qkv|attn_output|ffn_up|ffn_down)\.weight$/;
const PROJECTION = /^blk\.\d+\.(attn_q|attn_k|attn_v|attn_qkv|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;
// kept quantized too: the token embedding (rows dequantized one token at a time) and the output head
const KEPT_QUANTIZED = /^(token_embd|output)\.weight$/;
const QUANT_TYPES: Record<string, QuantType> = { Q8_0: "q8_0", Q4_0: "q4_0" };

// permuteHeadRows's inverse on whole stored rows of bytes (a quantized row is rowBytes bytes of blocks).
function unpermuteRowBytes(data: Uint8Array, rows: number, rowBytes: number, nHead: number): Uint8Array {
  const half = rows / nHead / 2;
  if (!Number.isInteger(half))
    throw new GgufError("invalid_metadata", `${OP}: ${rows} rows do not split into ${nHead} heads of an even size`, {
      rows,
      nHead,
    });
  const out = new Uint8Array(data.length);
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < half; i++) {
        const hf = h * 2 * half + j * half + i;
        const gg = h * 2 * half + i * 2 + j;
        out.set(data.subarray(gg * rowBytes, gg * rowBytes + rowBytes), hf * rowBytes);
      }
  return out;
}

function meta(file: GgufModelFile, key: string): unknown {
  const v = file.metadata.get(key);
  return v === undefined || v.type === "array" ? undefined : typeof v.value === "bigint" ? Number(v.value) : v.value;
}

function architecture(file: GgufModelFile): RuntimeArch {
  if (!(file?.metadata instanceof Map) || typeof file.names !== "function" || typeof file.info !== "function")
    throw new ArgumentError(
      "invalid_argument",
      `${OP}: file is ${showValue(file)}, expected a parsed GGUF (parseGguf(bytes), or lorakit/node's openGguf(path))`,
      { name: "file" },
    );
  const type = meta(file, "general.type");
  if (type !== undefined && type !== "model")
    throw new ModelError("unsupported_model", `${OP}: general.type is ${JSON.stringify(type)}, expected "model"`, {
      name: "general.type",
      value: type,
    });
  const arch = meta(file, "general.architecture");
  if (!RUNTIME_ARCHS.includes(arch as RuntimeArch))
    throw new ModelError(
      "unsupported_model",
      `${OP}: general.architecture ${JSON.stringify(arch)} is not supported (the runtime runs GGUF llama, qwen2 and gpt2)`,
      { name: "general.architecture", value: arch },
    );
  return arch as RuntimeArch;
}

/**
 * The config.json equivalent of a GGUF base model's metadata (as llama.cpp's convert_hf_to_gguf.py writes it),
 * refusing by name what the runtime does not compute (rope scaling other than linear, llama3 rope_freqs, …).
 * @throws {ModelError} "unsupported_model"   @throws {ConfigError} hyperparameters missing
 */
/**
 * GGUF keeps float hyper-parameters as float32 (1e-5 is stored as 9.99999974737875e-6); config.json has the decimal.
 * The shortest decimal that rounds to the stored float32 gives back what config.json said, so a GGUF base computes
 * with the same eps as its Hugging Face folder (and the same bits).
 */
function shortestF32(v: unknown): unknown {
  if (typeof v !== "number" || !Number.isFinite(v) || Math.fround(v) !== v) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

export function ggufModelConfig(file: GgufModelFile): ModelConfig {
  const arch = architecture(file);
  const k = (key: string) => meta(file, `${arch}.${key}`);
  const names = new Set(file.names());
  const embd = names.has("token_embd.weight") ? file.info("token_embd.weight").shape : undefined;
  const vocab = k("vocab_size") ?? embd?.[1];
  const tie = !names.has("output.weight");
  const ids = {
    bos_token_id: meta(file, "tokenizer.ggml.bos_token_id"),
    eos_token_id: meta(file, "tokenizer.ggml.eos_token_id"),
  };
  if (arch === "gpt2")
    return parseModelConfig({
      model_type: "gpt2",
      vocab_size: vocab,
      n_embd: k("embedding_length"),
      n_layer: k("block_count"),
      n_head: k("attention.head_count"),
      n_inner: k("feed_forward_length"),
      n_positions: k("context_length"),
      layer_norm_epsilon: shortestF32(k("attention.layer_norm_epsilon")),
      tie_word_embeddings: tie,
      ...ids,
    });
  const scaling = k("rope.scaling.type");
  if (scaling !== undefined && scaling !== "none" && scaling !== "linear")
    throw new ModelError(
      "unsupported_model",
      `${OP}: ${arch}.rope.scaling.type ${JSON.stringify(scaling)} is not supported (default and linear rotary positions only)`,
      { name: `${arch}.rope.scaling.type`, value: scaling },
    );
  if (names.has("rope_freqs.weight"))
    throw new ModelError(
      "unsupported_model",
      `${OP}: tensor "rope_freqs.weight" (llama3-style rope frequency factors) is not supported`,
      { name: "rope_freqs.weight" },
    );
  const hidden = k("embedding_length");
  const heads = k("attention.head_count");
  const factor = k("rope.scaling.factor");
  return parseModelConfig({
    model_type: arch,
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: k("block_count"),
    num_attention_heads: heads,
    num_key_value_heads: k("attention.head_count_kv") ?? heads,
    head_dim: k("attention.key_length") ?? k("rope.dimension_count"),
    intermediate_size: k("feed_forward_length"),
    rms_norm_eps: shortestF32(k("attention.layer_norm_rms_epsilon")),
    rope_theta: k("rope.freq_base") ?? 10000,
    ...(scaling === "linear" && typeof factor === "number" && factor !== 1
      ? { rope_scaling: { type: "linear", factor } }
      : {}),
    max_position_embeddings: k("context_length"),
    tie_word_embeddings: tie,
    attention_bias: arch === "llama" && names.has("blk.0.attn_q.bias"),
    mlp_bias: names.has("blk.0.ffn_up.bias"),
    ...ids,
  });
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
  return t;
}

/**
 * The GGUF file's tensors under Hugging Face names and layouts, for CausalLM / CausalLM.load. Tensors with no
 * Hugging Face name are left out (the loader asks only for what the config needs).
 * @throws {GgufError} "unsupported_dtype" naming a tensor of a type lorakit does not decode
 */
export function ggufTensorFile(file: GgufModelFile, cfg: ModelConfig, options: GgufModelOptions = {}): TensorFile {
  const arch = architecture(file);
  options ??= {};
  const keepQuant = options.dequantize !== true && (file.bytes !== undefined || file.read !== undefined);
  type Quant = { type: QuantType; rows: number; cols: number; fix: (b: Uint8Array) => Uint8Array };
  const map = new Map<
    string,
    { gguf: string; shape: number[]; fix: (x: Float32Array) => Float32Array; quant: Quant | null }
  >();
  for (const name of file.names()) {
    const m = /^(.+)\.(weight|bias)$/.exec(name);
    const mod = m ? hfModuleOf(arch, m[1]!) : null;
    if (!m || mod === null) continue;
    const info = file.info(name);
    if (!GGML_CODED_TYPES.includes(info.type.name as GgmlCodedType))
      throw new GgufError(
        "unsupported_dtype",
        `${OP}: tensor "${name}" is ${info.type.name}, which the runtime does not load (F32, F16, BF16, Q8_0, Q4_0)`,
        { name, type: info.type.name },
      );
    const rowMajor = [...info.shape].reverse(); // ne [cols, rows] → [rows, cols]
    const rows = rowMajor[0]!;
    const cols = rowMajor.length > 1 ? rowMajor[1]! : 1;
    let shape = rowMajor;
    let fix = (x: Float32Array) => x;
    const qType = QUANT_TYPES[info.type.name];
    let quant: Quant | null =
      keepQuant && qType !== undefined && (PROJECTION.test(name) || KEPT_QUANTIZED.test(name))
        ? { type: qType, rows, cols, fix: (b) => b }
        : null;
    if (arch === "gpt2" && GPT2_CONV1D.test(name)) {
      shape = [cols, rows]; // Conv1D [in, out]
      fix = (x) => transpose(x, rows, cols);
    } else if (arch === "llama" && /\.attn_[qk]\.(weight|bias)$/.test(name)) {
      const nHead = /\.attn_q\./.test(name) ? cfg.numHeads : cfg.numKvHeads;
      fix = (x) => permuteHeadRows(x, rows, cols, nHead, true);
      if (quant) quant = { ...quant, fix: (b) => unpermuteRowBytes(b, rows, b.length / rows, nHead) };
    }
    map.set(`${mod}.${m[2]}`, { gguf: name, shape, fix, quant });
  }
  const get = (name: string) => {
    const t = map.get(name);
    if (t === undefined)
      throw new GgufError("missing_tensor", `${OP}: the GGUF file has no tensor for "${name}"`, { name });
    return t;
  };
  const read = file.readFloat32;
  const toF32 = file.toFloat32;
  const bytes = file.bytes;
  const readBytes = file.read;
  const quantOf = (name: string) => get(name).quant!;
  return {
    names: () => [...map.keys()],
    info: (name) => ({ shape: get(name).shape }),
    quantized: (name) => {
      const q = map.get(name)?.quant;
      return q ? { type: q.type, rows: q.rows, cols: q.cols } : null;
    },
    ...(bytes
      ? { quantBytes: (name: string) => quantOf(name).fix(bytes.call(file, get(name).gguf)) }
      : readBytes
        ? { readQuantBytes: async (name: string) => quantOf(name).fix(await readBytes.call(file, get(name).gguf)) }
        : {}),
    ...(toF32
      ? { toFloat32: (name: string) => get(name).fix(toF32.call(file, get(name).gguf)) }
      : {
          readFloat32: async (name: string) => get(name).fix(await read!.call(file, get(name).gguf)),
        }),
  };
}

/**
 * Loads a GGUF base model (parseGguf's result, or lorakit/node's openGguf for a file read one tensor at a time).
 * Q8_0 / Q4_0 projection weights, token embedding and output head stay quantized (adapters run unmerged over the
 * projections; mergeAdapter is refused with "adapter_state") unless options.dequantize.
 * @throws {ModelError} "unsupported_model"   @throws {GgufError} "unsupported_dtype"
 * @example const model = await loadGgufModel(parseGguf(bytes))
 */
export async function loadGgufModel(file: GgufModelFile, options: GgufModelOptions = {}): Promise<CausalLM> {
  options ??= {};
  const cfg = ggufModelConfig(file);
  return CausalLM.load(cfg, ggufTensorFile(file, cfg, options));
}
