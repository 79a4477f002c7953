// The one module that knows llama.cpp's tensor names and layouts (read from llama.cpp's convert_hf_to_gguf.py,
// conversion/{llama,qwen,gemma,phi,gpt2}.py and gguf-py/gguf/tensor_mapping.py, not from memory):
//   Hugging Face module path                      → GGUF base name (+ ".weight" / ".bias")
//   model.embed_tokens                            → token_embd          (gpt2: transformer.wte; transformer.wpe → position_embd)
//   model.layers.N.self_attn.{q,k,v,o}_proj       → blk.N.attn_{q,k,v,output}   (phi3: self_attn.qkv_proj → attn_qkv)
//   model.layers.N.mlp.{gate,up,down}_proj        → blk.N.ffn_{gate,up,down}    (phi3: mlp.gate_up_proj → ffn_up)
//   model.layers.N.{input,post_attention}_layernorm → blk.N.{attn,ffn}_norm;  model.norm → output_norm; lm_head → output
//   gpt2: transformer.h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj} →
//         blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down}; transformer.ln_f → output_norm
// Layout: a torch [rows, cols] tensor is written as is, so its GGUF ne is [cols, rows]. GPT-2's Conv1D weights
// ([in, out]) are transposed to [out, in] first. For the "llama" architecture (Llama and Mistral checkpoints) the
// rows of q_proj (and k_proj) are permuted per head, (n_head, 2, d/2) → (n_head, d/2, 2), with n_head_kv heads for
// k_proj (LlamaModel.permute), because llama.cpp's rotary embedding pairs adjacent values, not halves.

import { ArgumentError, GgufError } from "../errors.js";
import { invalidArgument, shown } from "./format-args.js";

/** Architectures lorakit converts, by their GGUF general.architecture name. */
export type GgufArchitecture = "llama" | "qwen2" | "gemma" | "phi3" | "gpt2";
export const GGUF_ARCHITECTURES: readonly GgufArchitecture[] = ["llama", "qwen2", "gemma", "phi3", "gpt2"];

// transformers class (config.json architectures[0]) or model_type → GGUF architecture
// (a Map, so names such as "constructor" or "__proto__" from a file find nothing, not Object.prototype's members)
const HF_ARCH: ReadonlyMap<string, GgufArchitecture> = new Map([
  ["LlamaForCausalLM", "llama"],
  ["MistralForCausalLM", "llama"],
  ["Qwen2ForCausalLM", "qwen2"],
  ["GemmaForCausalLM", "gemma"],
  ["Phi3ForCausalLM", "phi3"],
  ["GPT2LMHeadModel", "gpt2"],
  ["llama", "llama"],
  ["mistral", "llama"],
  ["qwen2", "qwen2"],
  ["gemma", "gemma"],
  ["phi3", "phi3"],
  ["gpt2", "gpt2"],
]);

/**
 * The GGUF architecture of a Hugging Face class or model_type name ("LlamaForCausalLM", "mistral", ...), or of a
 * GGUF name; undefined when lorakit does not convert it.
 */
export function ggufArchitectureOf(name: string): GgufArchitecture | undefined {
  return (
    HF_ARCH.get(name) ??
    (GGUF_ARCHITECTURES.includes(name as GgufArchitecture) ? (name as GgufArchitecture) : undefined)
  );
}

/** The GGUF architecture for a name, or an "unsupported_architecture" error listing what is supported. */
export function requireArchitecture(name: string, op: string): GgufArchitecture {
  const arch = typeof name === "string" ? ggufArchitectureOf(name) : undefined;
  if (arch === undefined)
    throw new GgufError(
      "unsupported_architecture",
      `${op}: architecture ${shown(name)} is not one lorakit converts (llama, mistral, qwen2, gemma, phi3, gpt2)`,
      { architecture: name },
    );
  return arch;
}

type Rule = [RegExp, string];
const LLAMA_LAYER: Rule[] = [
  [/^self_attn\.q_proj$/, "attn_q"],
  [/^self_attn\.k_proj$/, "attn_k"],
  [/^self_attn\.v_proj$/, "attn_v"],
  [/^self_attn\.o_proj$/, "attn_output"],
  [/^mlp\.gate_proj$/, "ffn_gate"],
  [/^mlp\.up_proj$/, "ffn_up"],
  [/^mlp\.down_proj$/, "ffn_down"],
  [/^input_layernorm$/, "attn_norm"],
  [/^post_attention_layernorm$/, "ffn_norm"],
];
const PHI3_LAYER: Rule[] = [
  [/^self_attn\.qkv_proj$/, "attn_qkv"],
  [/^self_attn\.o_proj$/, "attn_output"],
  [/^mlp\.gate_up_proj$/, "ffn_up"],
  [/^mlp\.down_proj$/, "ffn_down"],
  [/^input_layernorm$/, "attn_norm"],
  [/^post_attention_layernorm$/, "ffn_norm"],
];
const GPT2_LAYER: Rule[] = [
  [/^ln_1$/, "attn_norm"],
  [/^attn\.c_attn$/, "attn_qkv"],
  [/^attn\.c_proj$/, "attn_output"],
  [/^ln_2$/, "ffn_norm"],
  [/^mlp\.c_fc$/, "ffn_up"],
  [/^mlp\.c_proj$/, "ffn_down"],
];
const LLAMA_TOP: Record<string, string> = {
  "model.embed_tokens": "token_embd",
  "model.norm": "output_norm",
  lm_head: "output",
};
const GPT2_TOP: Record<string, string> = {
  wte: "token_embd",
  wpe: "position_embd",
  ln_f: "output_norm",
  lm_head: "output",
};

interface ArchNames {
  layerPrefix: RegExp;
  layer: Rule[];
  top: Record<string, string>;
  /** HF prefix used when mapping back (GGUF → HF). */
  hfLayer: string;
  hfTopPrefix: string;
}
const NAMES: Record<GgufArchitecture, ArchNames> = {
  llama: {
    layerPrefix: /^model\.layers\.(\d+)\.(.+)$/,
    layer: LLAMA_LAYER,
    top: LLAMA_TOP,
    hfLayer: "model.layers",
    hfTopPrefix: "",
  },
  qwen2: {
    layerPrefix: /^model\.layers\.(\d+)\.(.+)$/,
    layer: LLAMA_LAYER,
    top: LLAMA_TOP,
    hfLayer: "model.layers",
    hfTopPrefix: "",
  },
  gemma: {
    layerPrefix: /^model\.layers\.(\d+)\.(.+)$/,
    layer: LLAMA_LAYER,
    top: LLAMA_TOP,
    hfLayer: "model.layers",
    hfTopPrefix: "",
  },
  phi3: {
    layerPrefix: /^model\.layers\.(\d+)\.(.+)$/,
    layer: PHI3_LAYER,
    top: LLAMA_TOP,
    hfLayer: "model.layers",
    hfTopPrefix: "",
  },
  gpt2: {
    layerPrefix: /^(?:transformer\.)?h\.(\d+)\.(.+)$/,
    layer: GPT2_LAYER,
    top: GPT2_TOP,
    hfLayer: "transformer.h",
    hfTopPrefix: "transformer.",
  },
};

/** The GGUF base name ("blk.0.attn_q", "token_embd") of a Hugging Face module path, or null when it has none. */
export function ggufNameOf(arch: GgufArchitecture, modulePath: string): string | null {
  const n = NAMES[requireArchitecture(arch, "ggufNameOf")];
  requireName(modulePath, "modulePath", "ggufNameOf");
  const m = n.layerPrefix.exec(modulePath);
  if (m) {
    for (const [re, name] of n.layer) if (re.test(m[2]!)) return `blk.${m[1]}.${name}`;
    return null;
  }
  const top = arch === "gpt2" ? modulePath.replace(/^transformer\./, "") : modulePath;
  return Object.hasOwn(n.top, top) ? n.top[top]! : null;
}

/** The Hugging Face module path of a GGUF base name (inverse of ggufNameOf), or null. */
export function hfModuleOf(arch: GgufArchitecture, ggufName: string): string | null {
  const n = NAMES[requireArchitecture(arch, "hfModuleOf")];
  requireName(ggufName, "ggufName", "hfModuleOf");
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (m) {
    const rule = n.layer.find(([, g]) => g === m[2]);
    if (rule === undefined) return null;
    return `${n.hfLayer}.${m[1]}.${rule[0].source.slice(1, -1).replace(/\\\./g, ".")}`;
  }
  const top = Object.entries(n.top).find(([, g]) => g === ggufName)?.[0];
  if (top === undefined) return null;
  return top === "lm_head" ? top : `${n.hfTopPrefix}${top}`;
}

function requireName(v: unknown, name: string, op: string): void {
  if (typeof v !== "string") throw invalidArgument(op, name, v, "a string");
}

/** Head counts the Q/K permutation needs. */
export interface AttentionHeads {
  nHead: number;
  nHeadKv: number;
}

/**
 * The head count whose permutation applies to a module's output rows in GGUF (llama's q_proj: nHead, k_proj:
 * nHeadKv), or null when its rows are stored unpermuted.
 */
export function permutedHeads(
  arch: GgufArchitecture,
  ggufName: string,
  heads: AttentionHeads | undefined,
  op: string,
): number | null {
  if (arch !== "llama") return null;
  const isQ = /\.attn_q$/.test(ggufName);
  const isK = /\.attn_k$/.test(ggufName);
  if (!isQ && !isK) return null;
  if (heads === undefined)
    throw new GgufError(
      "invalid_metadata",
      `${op}: ${ggufName} needs the attention head counts (num_attention_heads, num_key_value_heads) for llama.cpp's Q/K row permutation; pass the base model's config.json`,
      { name: ggufName },
    );
  const field = isQ ? "nHead" : "nHeadKv";
  const n = heads[field];
  requireHeadCount(n, `heads.${field}`, op);
  return n;
}

/** Refuses a head count that is not a positive safe integer, naming the field and its value. */
export function requireHeadCount(n: unknown, field: string, op: string): asserts n is number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n <= 0)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: ${field} is ${typeof n === "number" ? String(n) : (JSON.stringify(n) ?? String(n))}, expected a positive integer (an attention head count)`,
      { field, value: n },
    );
}

/**
 * Permutes the rows of a row-major [rows, cols] array per head as LlamaModel.permute does: row (h, j, i) of the
 * input, with j ∈ {0, 1} and i < d/2 (d = rows / nHead), goes to row (h, i, j). `inverse` undoes it.
 */
export function permuteHeadRows(
  data: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
  inverse = false,
): Float32Array {
  requireHeadCount(nHead, "nHead", "permuteHeadRows");
  if (rows % (2 * nHead) !== 0)
    throw new GgufError(
      "invalid_metadata",
      `permuteHeadRows: ${rows} rows do not split into ${nHead} heads of an even size, expected a multiple of 2·nHead = ${2 * nHead}`,
      { rows, nHead },
    );
  const half = rows / nHead / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < half; i++) {
        const src = h * 2 * half + j * half + i; // (h, j, i) in HF order
        const dst = h * 2 * half + i * 2 + j; // (h, i, j) in GGUF order
        const [from, to] = inverse ? [dst, src] : [src, dst];
        out.set(data.subarray(from * cols, from * cols + cols), to * cols);
      }
  return out;
}
