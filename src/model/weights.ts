// Checkpoint tensors → the model's weights, each copied once into kernel memory (kernelFloat32Array) so products
// read it in place on every call. Float32 projections and the lm_head are stored pre-packed in kernel panels
// (kernels/panel.ts: the layout the register tiles read, so decode and small batches stream each weight once, in
// order); norms, biases and embeddings stay plain. Names and layouts are Hugging Face's:
//   llama family: model.embed_tokens.weight [vocab, hidden], model.layers.{i}.self_attn.{q,k,v,o}_proj.weight
//     [dOut, dIn] (+ .bias for qwen2 q/k/v), mlp.{gate,up,down}_proj.weight, input_layernorm.weight,
//     post_attention_layernorm.weight, model.norm.weight, lm_head.weight [vocab, hidden] (absent when tied)
//   gpt2: [transformer.]wte.weight [vocab, hidden], wpe.weight [positions, hidden], h.{i}.ln_1/ln_2.{weight,bias},
//     attn.c_attn / attn.c_proj / mlp.c_fc / mlp.c_proj .weight [dIn, dOut] (Conv1D) + .bias, ln_f.{weight,bias}

import { ArgumentError, ModelError, ShapeError } from "../errors.js";
import { packPanels, panelLength } from "../kernels/panel.js";
import { quantBlockBytes } from "../kernels/quant-scalar.js";
import { kernelBytes, kernelFloat32Array } from "../kernels/select.js";
import { type QuantMatrix, type QuantType, quantByteLength, quantKernelType } from "../lora/quant.js";
import type { ModelConfig } from "./config.js";
import { ModelLinear } from "./linear.js";
import { showValue } from "./show.js";

/**
 * One safetensors file (or shard): parsed bytes (parseSafetensors: toFloat32, read at once) or a file read on demand
 * (lorakit/node's openSafetensors: readFloat32, read one tensor at a time by CausalLM.load).
 */
export interface TensorFile {
  names(): string[];
  info(name: string): { shape: readonly number[] };
  toFloat32?(name: string): Float32Array;
  readFloat32?(name: string): Promise<Float32Array>;
  /** A linear weight kept quantized: stored [dOut, dIn] (QuantMatrix layout "out_in"), or null to decode it. */
  quantized?(name: string): { type: QuantType; rows: number; cols: number } | null;
  /** The quantized weight's blocks (files read at once). */
  quantBytes?(name: string): Uint8Array;
  /** The quantized weight's blocks (files read on demand). */
  readQuantBytes?(name: string): Promise<Uint8Array>;
}

/** Where the weights come from: one file or its shards. */
export type TensorSource = TensorFile | readonly TensorFile[];

/** A weight allocated in kernel memory whose data is still to be read (from an on-demand file). */
export interface PendingRead {
  file: TensorFile;
  name: string;
  /** Float32 data, or a quantized weight's blocks (read with readQuantBytes). */
  out: Float32Array | Uint8Array;
  /** Pack the tensor into out as op(b) [k, n] panels (transposed: the tensor is stored [n, k]); absent: copy it. */
  pack?: { k: number; n: number; transposed: boolean };
  /** A quantized weight's type, for checkQuantScales once its blocks are read. */
  quant?: QuantType;
}

/**
 * Refuses quantized blocks whose float16 scale is Infinity or NaN (every value of such a block would be ±Infinity
 * or NaN, and so would the logits): a corrupt or hostile file. One read of 2 bytes per 32 weights.
 * @throws {ModelError} "non_finite" naming the tensor and the first such block
 */
export function checkQuantScales(name: string, bytes: Uint8Array, type: QuantType): void {
  const size = quantBlockBytes(quantKernelType(type));
  for (let o = 0, b = 0; o + 1 < bytes.length; o += size, b++) {
    const h = bytes[o]! | (bytes[o + 1]! << 8);
    if ((h & 0x7c00) === 0x7c00)
      throw new ModelError(
        "non_finite",
        `loadCausalLM: quantized tensor "${name}" (${type}) has block ${b} with scale ${(h & 0x3ff) !== 0 ? "NaN" : h & 0x8000 ? "-Infinity" : "Infinity"} (float16 0x${h.toString(16)}), expected finite scales (the file is corrupt)`,
        { name, block: b },
      );
  }
}

export interface Norm {
  weight: Float32Array;
  bias: Float32Array | null;
}

/** One transformer block. llama family: q, k, v, o, gate, up, down. gpt2: qkv (c_attn), o, up (c_fc), down. */
export interface Block {
  norm1: Norm;
  norm2: Norm;
  q: ModelLinear | null;
  k: ModelLinear | null;
  v: ModelLinear | null;
  qkv: ModelLinear | null;
  o: ModelLinear;
  gate: ModelLinear | null;
  up: ModelLinear;
  down: ModelLinear;
}

export interface ModelWeights {
  /**
   * [vocab, hidden]: float32, or a QuantMatrix (a GGUF base's Q8_0 / Q4_0 token_embd, one stored row per token);
   * null when tied to the lm_head, which then holds it (CausalLM's embed).
   */
  embed: Float32Array | QuantMatrix | null;
  /** gpt2 learned positions [maxPositions, hidden]; null for rotary models. */
  positions: Float32Array | null;
  blocks: Block[];
  finalNorm: Norm;
  /**
   * The lm_head [vocab, hidden]: packed as its transpose [hidden, vocab] (panelLength(hidden, vocab) floats), or a
   * QuantMatrix stored [vocab, hidden] ("out_in": a GGUF base's Q8_0 / Q4_0 output, or token_embd when tied), read in
   * place by the quantized kernels as llama.cpp does (a float32 copy of a 128k-token head is 4 bytes a weight).
   */
  lmHead: Float32Array | QuantMatrix;
  /** Module path (HF name without ".weight") → projection, for attaching adapters. */
  linears: Map<string, ModelLinear>;
  /** Module path of the token embedding ("model.embed_tokens" or "transformer.wte"). */
  embedPath: string;
  /** Weights held, float32 values and quantized ones alike (parameterCount). */
  floats: number;
}

class Reader {
  readonly files: readonly TensorFile[];
  readonly where = new Map<string, TensorFile>();
  floats = 0;
  constructor(
    source: TensorSource,
    readonly pending: PendingRead[],
  ) {
    this.files = Array.isArray(source) ? (source as readonly TensorFile[]) : [source as TensorFile];
    for (let i = 0; i < this.files.length; i++) {
      const f = this.files[i];
      if (typeof f?.names !== "function" || typeof f.info !== "function")
        throw new ArgumentError(
          "invalid_argument",
          `CausalLM: source${Array.isArray(source) ? `[${i}]` : ""} is ${showValue(f)}, expected a tensor file (parsed safetensors or GGUF: names(), info()) or an array of them`,
          { name: "source" },
        );
    }
    if (this.files.length === 0)
      throw new ArgumentError(
        "invalid_argument",
        "CausalLM: source is an empty array, expected at least one tensor file",
        {
          name: "source",
        },
      );
    for (const f of this.files) for (const n of f.names()) this.where.set(n, f);
  }
  has(name: string): boolean {
    return this.where.has(name);
  }
  /** The tensor, decoded to float32 and copied into kernel memory, after checking its shape. */
  read(name: string, shape: number[]): Float32Array {
    const f = this.file(name, shape);
    const size = shape.reduce((a, b) => a * b, 1);
    const out = kernelFloat32Array(size);
    if (f.toFloat32) out.set(f.toFloat32(name));
    else this.pending.push({ file: f, name, out });
    this.floats += size;
    return out;
  }
  /** The tensor (a matrix) packed into kernel memory as op(b) [k, n] panels; transposed: it is stored [n, k]. */
  readPacked(name: string, shape: number[], k: number, n: number, transposed: boolean): Float32Array {
    const f = this.file(name, shape);
    const out = kernelFloat32Array(panelLength(k, n));
    if (f.toFloat32) packPanels(out, f.toFloat32(name), k, n, transposed);
    else this.pending.push({ file: f, name, out, pack: { k, n, transposed } });
    this.floats += k * n;
    return out;
  }
  private file(name: string, shape: number[]): TensorFile {
    const f = this.where.get(name);
    if (f === undefined)
      throw new ModelError(
        "missing_tensor",
        `loadCausalLM: the checkpoint has no tensor "${name}" (shape [${shape.join(", ")}] expected)`,
        {
          name,
        },
      );
    const got = f.info(name).shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i]))
      throw new ShapeError(
        "shape_mismatch",
        `loadCausalLM: tensor "${name}" has shape [${got.join(", ")}], expected [${shape.join(", ")}] (from config.json)`,
        { name, shape: got, expected: shape },
      );
    return f;
  }
  /** A linear weight [dOut, dIn] the file keeps quantized, copied into kernel memory; null when it has none. */
  quant(name: string, dIn: number, dOut: number): QuantMatrix | null {
    const f = this.where.get(name);
    const q = f?.quantized?.(name) ?? null;
    if (f === undefined || q === null) return null;
    if (q.rows !== dOut || q.cols !== dIn)
      throw new ShapeError(
        "shape_mismatch",
        `loadCausalLM: quantized tensor "${name}" has shape [${q.rows}, ${q.cols}], expected [${dOut}, ${dIn}] (from config.json)`,
        { name, shape: [q.rows, q.cols], expected: [dOut, dIn] },
      );
    const bytes = kernelBytes(quantByteLength(q.type, q.rows, q.cols));
    if (f.quantBytes) {
      bytes.set(f.quantBytes(name));
      checkQuantScales(name, bytes, q.type);
    } else this.pending.push({ file: f, name, out: bytes, quant: q.type });
    this.floats += q.rows * q.cols; // counted as parameters, held as blocks
    return { type: q.type, bytes, rows: q.rows, cols: q.cols, layout: "out_in" };
  }
  optional(name: string, shape: number[]): Float32Array | null {
    return this.has(name) ? this.read(name, shape) : null;
  }
}

/**
 * Checks every weight the config calls for and allocates it in kernel memory; tensors of parsed files are copied in
 * at once, those of on-demand files are listed in `pending` for the caller to read.
 */
export function loadWeights(cfg: ModelConfig, source: TensorSource, pending: PendingRead[] = []): ModelWeights {
  const r = new Reader(source, pending);
  return cfg.family === "gpt2" ? gpt2Weights(cfg, r) : llamaWeights(cfg, r);
}

function linear(r: Reader, path: string, dIn: number, dOut: number, hasBias: boolean, conv1d: boolean): ModelLinear {
  const name = `${path}.weight`;
  const q = r.quant(name, dIn, dOut);
  // float32: packed as the logical [dIn, dOut]; Conv1D stores exactly that, nn.Linear its transpose [dOut, dIn]
  const w = q ?? r.readPacked(name, conv1d ? [dIn, dOut] : [dOut, dIn], dIn, dOut, !conv1d);
  const b = hasBias ? r.read(`${path}.bias`, [dOut]) : r.optional(`${path}.bias`, [dOut]);
  return new ModelLinear(path, w, dIn, dOut, b);
}

// The embedding table and the lm_head (packed, or kept quantized where the file keeps them: a GGUF base's Q8_0 /
// Q4_0 token_embd and output, [vocab, hidden] = [dOut, dIn] of the head); tied: only the head, which holds the
// embedding too.
function embedAndHead(
  cfg: ModelConfig,
  r: Reader,
  embedName: string,
): { embed: Float32Array | QuantMatrix | null; head: Float32Array | QuantMatrix } {
  const { vocabSize: V, hiddenSize: H } = cfg;
  const head = (name: string) => r.quant(name, H, V) ?? r.readPacked(name, [V, H], H, V, true);
  if (r.has("lm_head.weight"))
    return { embed: r.quant(embedName, H, V) ?? r.read(embedName, [V, H]), head: head("lm_head.weight") };
  if (cfg.tieWordEmbeddings) return { embed: null, head: head(embedName) };
  throw new ModelError(
    "missing_tensor",
    'loadCausalLM: the checkpoint has no tensor "lm_head.weight" and config.json has tie_word_embeddings false',
    { name: "lm_head.weight" },
  );
}

function llamaWeights(cfg: ModelConfig, r: Reader): ModelWeights {
  const { hiddenSize: H, headDim: D, numHeads, numKvHeads, intermediateSize: I } = cfg;
  const linears = new Map<string, ModelLinear>();
  const add = (l: ModelLinear) => {
    linears.set(l.path, l);
    return l;
  };
  const { embed, head } = embedAndHead(cfg, r, "model.embed_tokens.weight");
  const blocks: Block[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    const m = `${p}.mlp`;
    blocks.push({
      norm1: { weight: r.read(`${p}.input_layernorm.weight`, [H]), bias: null },
      norm2: { weight: r.read(`${p}.post_attention_layernorm.weight`, [H]), bias: null },
      q: add(linear(r, `${a}.q_proj`, H, numHeads * D, cfg.qkvBias, false)),
      k: add(linear(r, `${a}.k_proj`, H, numKvHeads * D, cfg.qkvBias, false)),
      v: add(linear(r, `${a}.v_proj`, H, numKvHeads * D, cfg.qkvBias, false)),
      qkv: null,
      o: add(linear(r, `${a}.o_proj`, numHeads * D, H, cfg.oBias, false)),
      gate: add(linear(r, `${m}.gate_proj`, H, I, cfg.mlpBias, false)),
      up: add(linear(r, `${m}.up_proj`, H, I, cfg.mlpBias, false)),
      down: add(linear(r, `${m}.down_proj`, I, H, cfg.mlpBias, false)),
    });
  }
  const finalNorm = { weight: r.read("model.norm.weight", [H]), bias: null };
  return {
    embed,
    positions: null,
    blocks,
    finalNorm,
    lmHead: head,
    linears,
    embedPath: "model.embed_tokens",
    floats: r.floats,
  };
}

function gpt2Weights(cfg: ModelConfig, r: Reader): ModelWeights {
  const { hiddenSize: H, intermediateSize: I } = cfg;
  // OpenAI's checkpoints on the Hub have no "transformer." prefix; GPT2LMHeadModel.save_pretrained writes one.
  const pre = r.has("transformer.wte.weight") ? "transformer." : "";
  const linears = new Map<string, ModelLinear>();
  const add = (l: ModelLinear) => {
    linears.set(`transformer.${l.path.slice(pre.length)}`, l);
    return l;
  };
  const norm = (p: string): Norm => ({ weight: r.read(`${p}.weight`, [H]), bias: r.read(`${p}.bias`, [H]) });
  const { embed, head } = embedAndHead(cfg, r, `${pre}wte.weight`);
  const positions = r.read(`${pre}wpe.weight`, [cfg.maxPositions, H]);
  const blocks: Block[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `${pre}h.${i}`;
    blocks.push({
      norm1: norm(`${p}.ln_1`),
      norm2: norm(`${p}.ln_2`),
      q: null,
      k: null,
      v: null,
      qkv: add(linear(r, `${p}.attn.c_attn`, H, 3 * H, true, true)),
      o: add(linear(r, `${p}.attn.c_proj`, H, H, true, true)),
      gate: null,
      up: add(linear(r, `${p}.mlp.c_fc`, H, I, true, true)),
      down: add(linear(r, `${p}.mlp.c_proj`, I, H, true, true)),
    });
  }
  const finalNorm = norm(`${pre}ln_f`);
  return { embed, positions, blocks, finalNorm, lmHead: head, linears, embedPath: "transformer.wte", floats: r.floats };
}
