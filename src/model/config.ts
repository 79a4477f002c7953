// config.json of a Hugging Face causal LM → the runtime's ModelConfig. Two families: "llama" (llama, mistral,
// qwen2: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention) and "gpt2" (LayerNorm, learned positions,
// GELU MLP, fused c_attn). What the runtime does not compute (an unknown model_type, a rope scaling kind, per-layer
// attention scaling) is refused by name, never approximated; a sliding window caps the sequence length instead.

import { ConfigError, type ConfigIssue, ModelError } from "../errors.js";
import { showValue } from "./show.js";

/** The model types the runtime runs. */
export const MODEL_TYPES = ["llama", "mistral", "qwen2", "gpt2"] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/** Everything the forward needs, with HF's defaults filled in. */
export interface ModelConfig {
  modelType: ModelType;
  /** Which forward: the llama family or gpt2. */
  family: "llama" | "gpt2";
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (grouped-query attention when < numHeads). */
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  /** RMSNorm (llama family) or LayerNorm (gpt2) epsilon. */
  normEps: number;
  /** Rotary base (llama family); 0 for gpt2. */
  ropeTheta: number;
  /** Linear rope scaling: positions are divided by this (1 = none). */
  ropeFactor: number;
  /** Longest sequence (positions) the model takes: max_position_embeddings, or a shorter sliding window. */
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (qwen2, llama with attention_bias, gpt2). */
  qkvBias: boolean;
  /** The attention output projection has a bias. */
  oBias: boolean;
  mlpBias: boolean;
  activation: "silu" | "gelu_new";
  /** Attention scores are multiplied by this (1/√headDim, or 1 for gpt2 with scale_attn_weights false). */
  attnScale: number;
  bosTokenId: number | null;
  /** End-of-sequence ids from config.json (eos_token_id may be one id or a list). */
  eosTokenIds: number[];
}

const OP = "config.json";

type Doc = Record<string, unknown>;

function unsupported(what: string, value: unknown, hint: string): ModelError {
  return new ModelError("unsupported_model", `${OP}: ${what} ${JSON.stringify(value)} is not supported (${hint})`, {
    name: what,
    value,
  });
}

class Reader {
  readonly issues: ConfigIssue[] = [];
  constructor(readonly doc: Doc) {}
  int(key: string, fallback?: number): number {
    const v = this.doc[key];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      this.issues.push({ path: [key], message: `${key} must be a positive integer, got ${showValue(v)}` });
      return 1;
    }
    return v;
  }
  /** A finite number above `min` (or at least `min` when `orEqual`): an epsilon, a rotary base, a scaling factor. */
  above(key: string, fallback: number, min: number, orEqual = false, v: unknown = this.doc[key]): number {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || (v === min && !orEqual)) {
      const bound = `${orEqual ? "at least" : "above"} ${min}`;
      this.issues.push({ path: [key], message: `${key} must be a finite number ${bound}, got ${showValue(v)}` });
      return fallback;
    }
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.doc[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") {
      this.issues.push({ path: [key], message: `${key} must be true or false, got ${showValue(v)}` });
      return fallback;
    }
    return v;
  }
  ids(key: string): number[] {
    const v = this.doc[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) {
      this.issues.push({
        path: [key],
        message: `${key} must be a token id or a list of ids, got ${showValue(v)}`,
      });
      return [];
    }
    return list as number[];
  }
}

/**
 * Reads a causal LM's config.json (text or parsed).
 * @throws {ConfigError} "invalid_config": every missing or malformed field at once
 * @throws {ModelError} "unsupported_model": an unknown model_type, a rope scaling kind, an activation, …
 * @example parseModelConfig(await readFile("gpt2/config.json", "utf8")).family // "gpt2"
 */
export function parseModelConfig(input: string | object): ModelConfig {
  let doc: unknown = input;
  if (typeof input === "string") {
    try {
      doc = JSON.parse(input);
    } catch (e) {
      throw new ConfigError(OP, [{ path: [], message: `malformed JSON (${(e as Error).message})` }]);
    }
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigError(OP, [{ path: [], message: "expected a JSON object" }]);
  const d = doc as Doc;
  const type = d.model_type;
  if (!MODEL_TYPES.includes(type as ModelType))
    throw unsupported("model_type", type, `the runtime runs ${MODEL_TYPES.map((t) => `"${t}"`).join(", ")}`);
  const r = new Reader(d);
  const cfg = type === "gpt2" ? gpt2Config(r) : llamaConfig(r, type as ModelType);
  if (r.issues.length > 0) throw new ConfigError(OP, r.issues);
  if (cfg.hiddenSize !== cfg.numHeads * cfg.headDim && cfg.family === "gpt2")
    throw new ConfigError(OP, [
      { path: ["n_head"], message: `n_embd ${cfg.hiddenSize} is not a multiple of n_head ${cfg.numHeads}` },
    ]);
  if (cfg.numHeads % cfg.numKvHeads !== 0)
    throw new ConfigError(OP, [
      {
        path: ["num_key_value_heads"],
        message: `num_attention_heads ${cfg.numHeads} is not a multiple of num_key_value_heads ${cfg.numKvHeads}`,
      },
    ]);
  return cfg;
}

function gpt2Config(r: Reader): ModelConfig {
  const d = r.doc;
  const act = d.activation_function ?? "gelu_new";
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh")
    throw unsupported("activation_function", act, 'the runtime computes "gelu_new" (tanh GELU)');
  if (d.scale_attn_by_inverse_layer_idx === true)
    throw unsupported("scale_attn_by_inverse_layer_idx", true, "per-layer attention scaling is not implemented");
  if (d.add_cross_attention === true) throw unsupported("add_cross_attention", true, "decoder-only models only");
  const hidden = r.int("n_embd");
  const heads = r.int("n_head");
  const headDim = Math.max(1, Math.floor(hidden / heads));
  return {
    modelType: "gpt2",
    family: "gpt2",
    vocabSize: r.int("vocab_size"),
    hiddenSize: hidden,
    numLayers: r.int("n_layer"),
    numHeads: heads,
    numKvHeads: heads,
    headDim,
    intermediateSize: r.int("n_inner", 4 * hidden),
    normEps: r.above("layer_norm_epsilon", 1e-5, 0, true),
    ropeTheta: 0,
    ropeFactor: 1,
    maxPositions: r.int("n_positions", 1024),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    activation: "gelu_new",
    attnScale: r.bool("scale_attn_weights", true) ? 1 / Math.sqrt(headDim) : 1,
    bosTokenId: r.ids("bos_token_id")[0] ?? null,
    eosTokenIds: r.ids("eos_token_id"),
  };
}

function llamaConfig(r: Reader, type: ModelType): ModelConfig {
  const d = r.doc;
  const act = d.hidden_act ?? "silu";
  if (act !== "silu") throw unsupported("hidden_act", act, 'the llama family runs "silu"');
  // A sliding window changes attention only once a sequence is longer than it, so sequences are capped at the
  // window (context_length past it) rather than computed without it. Qwen2 applies it only with use_sliding_window.
  const windowed = type === "mistral" || (type === "qwen2" && d.use_sliding_window === true);
  const window = windowed && typeof d.sliding_window === "number" && d.sliding_window > 0 ? d.sliding_window : null;
  const maxPositions = r.int("max_position_embeddings", 2048);
  const { theta, factor } = ropeOf(r);
  const hidden = r.int("hidden_size");
  const heads = r.int("num_attention_heads");
  const headDim = r.int("head_dim", Math.max(1, Math.floor(hidden / heads)));
  const attnBias = r.bool("attention_bias", false);
  return {
    modelType: type,
    family: "llama",
    vocabSize: r.int("vocab_size"),
    hiddenSize: hidden,
    numLayers: r.int("num_hidden_layers"),
    numHeads: heads,
    numKvHeads: r.int("num_key_value_heads", heads),
    headDim,
    intermediateSize: r.int("intermediate_size"),
    normEps: r.above("rms_norm_eps", 1e-6, 0, true),
    ropeTheta: theta,
    ropeFactor: factor,
    maxPositions: window === null ? maxPositions : Math.min(maxPositions, window),
    tieWordEmbeddings: r.bool("tie_word_embeddings", false),
    qkvBias: type === "qwen2" ? true : attnBias,
    oBias: type === "qwen2" ? false : attnBias,
    mlpBias: type === "llama" ? r.bool("mlp_bias", false) : false,
    activation: "silu",
    attnScale: 1 / Math.sqrt(headDim),
    bosTokenId: r.ids("bos_token_id")[0] ?? null,
    eosTokenIds: r.ids("eos_token_id"),
  };
}

// transformers ≥ 5 writes rope_parameters {rope_theta, rope_type, factor?}; older files rope_theta + rope_scaling
// {type | rope_type, factor}. "default" and "linear" (positions / factor) are computed; every other kind is refused.
function ropeOf(r: Reader): { theta: number; factor: number } {
  const d = r.doc;
  const params = (d.rope_parameters ?? d.rope_scaling ?? null) as Doc | null;
  const where = d.rope_parameters !== undefined && d.rope_parameters !== null ? "rope_parameters" : "rope_scaling";
  let theta = r.above("rope_theta", 10000, 0);
  let factor = 1;
  if (params !== null && typeof params === "object") {
    if (params.rope_theta !== undefined) theta = r.above(`${where}.rope_theta`, theta, 0, false, params.rope_theta);
    const kind = params.rope_type ?? params.type ?? "default";
    if (kind === "linear") {
      factor = r.above(`${where}.factor`, 1, 0, false, params.factor);
    } else if (kind !== "default")
      throw unsupported("rope_scaling", kind, 'the runtime computes "default" and "linear" rotary positions');
  }
  if (d.rope_scaling !== undefined && d.rope_scaling !== null && d.rope_parameters !== undefined) {
    const s = d.rope_scaling as Doc;
    const kind = s.rope_type ?? s.type ?? "default";
    if (kind !== "default" && kind !== "linear")
      throw unsupported("rope_scaling", kind, 'the runtime computes "default" and "linear" rotary positions');
  }
  return { theta, factor };
}
