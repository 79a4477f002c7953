// Random causal LMs and LoRA adapters in Hugging Face's file layout, from a seed: config.json + model.safetensors
// (float32) and PEFT adapter folders. For tests (small shapes, any architecture) and benchmarks (GPT-2-small
// shape: 124M parameters). Nothing here is downloaded; the weights are N(0, 0.02²) like transformers' init.
//
//   node scripts/random-model.mjs --type gpt2 --preset gpt2-small --out DIR [--adapters 8 --rank 16] [--seed 1]

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** Deterministic normal numbers (xorshift32 + Box–Muller), scaled by std. */
function filler(seed) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return (len, std) => {
    const a = new Float32Array(len);
    for (let i = 0; i < len; i += 2) {
      const r = Math.sqrt(-2 * Math.log(u()));
      const t = 2 * Math.PI * u();
      a[i] = r * Math.cos(t) * std;
      if (i + 1 < len) a[i + 1] = r * Math.sin(t) * std;
    }
    return a;
  };
}

export const PRESETS = {
  "gpt2-small": { type: "gpt2", hidden: 768, layers: 12, heads: 12, vocab: 50257, positions: 1024 },
  tiny: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 128, positions: 64, intermediate: 96 },
};

/**
 * A random model: { config (config.json object), tensors: Map name → {shape, data} }.
 * spec: {type: "llama"|"mistral"|"qwen2"|"gpt2", hidden, layers, heads, kvHeads?, vocab, positions, intermediate?,
 * tie?, seed?}
 */
export function randomModel(spec) {
  const rand = filler(spec.seed ?? 1);
  const t = new Map();
  const add = (name, shape, std = 0.02, mean = 0) => {
    const len = shape.reduce((a, b) => a * b, 1);
    const data = std === 0 ? new Float32Array(len).fill(mean) : rand(len, std);
    if (mean !== 0 && std !== 0) for (let i = 0; i < len; i++) data[i] += mean;
    t.set(name, { shape, data });
  };
  const H = spec.hidden;
  if (spec.type === "gpt2") {
    const I = spec.intermediate ?? 4 * H;
    add("transformer.wte.weight", [spec.vocab, H]);
    add("transformer.wpe.weight", [spec.positions, H], 0.01);
    for (let i = 0; i < spec.layers; i++) {
      const p = `transformer.h.${i}`;
      for (const ln of ["ln_1", "ln_2"]) {
        add(`${p}.${ln}.weight`, [H], 0.1, 1);
        add(`${p}.${ln}.bias`, [H], 0.01);
      }
      for (const [m, dIn, dOut] of [
        ["attn.c_attn", H, 3 * H],
        ["attn.c_proj", H, H],
        ["mlp.c_fc", H, I],
        ["mlp.c_proj", I, H],
      ]) {
        add(`${p}.${m}.weight`, [dIn, dOut]);
        add(`${p}.${m}.bias`, [dOut], 0.01);
      }
    }
    add("transformer.ln_f.weight", [H], 0.1, 1);
    add("transformer.ln_f.bias", [H], 0.01);
    if (spec.tie === false) add("lm_head.weight", [spec.vocab, H]);
    const config = {
      model_type: "gpt2",
      architectures: ["GPT2LMHeadModel"],
      n_embd: H,
      n_layer: spec.layers,
      n_head: spec.heads,
      n_positions: spec.positions,
      n_inner: spec.intermediate ?? null,
      vocab_size: spec.vocab,
      activation_function: "gelu_new",
      layer_norm_epsilon: 1e-5,
      tie_word_embeddings: spec.tie !== false,
      bos_token_id: spec.vocab - 1,
      eos_token_id: spec.vocab - 1,
    };
    return { config, tensors: t };
  }
  const heads = spec.heads;
  const kv = spec.kvHeads ?? heads;
  const D = H / heads;
  const I = spec.intermediate ?? 4 * H;
  add("model.embed_tokens.weight", [spec.vocab, H]);
  for (let i = 0; i < spec.layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [H], 0.1, 1);
    add(`${p}.post_attention_layernorm.weight`, [H], 0.1, 1);
    for (const [m, dOut] of [
      ["q_proj", heads * D],
      ["k_proj", kv * D],
      ["v_proj", kv * D],
    ]) {
      add(`${p}.self_attn.${m}.weight`, [dOut, H]);
      if (spec.type === "qwen2") add(`${p}.self_attn.${m}.bias`, [dOut], 0.05);
    }
    add(`${p}.self_attn.o_proj.weight`, [H, heads * D]);
    add(`${p}.mlp.gate_proj.weight`, [I, H]);
    add(`${p}.mlp.up_proj.weight`, [I, H]);
    add(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  add("model.norm.weight", [H], 0.1, 1);
  if (!spec.tie) add("lm_head.weight", [spec.vocab, H]);
  const config = {
    model_type: spec.type,
    hidden_size: H,
    num_hidden_layers: spec.layers,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    intermediate_size: I,
    vocab_size: spec.vocab,
    max_position_embeddings: spec.positions,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: "silu",
    tie_word_embeddings: Boolean(spec.tie),
    bos_token_id: 1,
    eos_token_id: 2,
  };
  return { config, tensors: t };
}

/** A PEFT LoRA adapter (r, alpha = 2r) on the given modules with random down and up: {config, tensors}. */
export function randomPeftAdapter(model, modules, r, seed) {
  const rand = filler(seed);
  const tensors = new Map();
  const conv = model.config.model_type === "gpt2";
  for (const [name, { shape }] of model.tensors) {
    const path = name.replace(/\.weight$/, "");
    if (!name.endsWith(".weight") || !modules.some((m) => path.endsWith(`.${m}`))) continue;
    const [dIn, dOut] = conv ? shape : [shape[1], shape[0]];
    const key = `base_model.model.${path}`;
    tensors.set(`${key}.lora_A.weight`, { shape: [r, dIn], data: rand(r * dIn, 1 / Math.sqrt(dIn)) });
    tensors.set(`${key}.lora_B.weight`, { shape: [dOut, r], data: rand(dOut * r, 0.02) });
  }
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r,
    lora_alpha: 2 * r,
    target_modules: modules,
    fan_in_fan_out: conv,
    bias: "none",
    lora_dropout: 0,
  };
  return { config, tensors };
}

/** safetensors bytes of float32 tensors (header, then data in the map's order). */
export function toSafetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const [name, { shape, data }] of tensors) {
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((json.length + 8) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const { data } of tensors.values()) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Writes config.json + model.safetensors into dir (created). */
export function writeModel(dir, model) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(model.config, null, 2));
  writeFileSync(join(dir, "model.safetensors"), toSafetensors(model.tensors));
}

/** Writes adapter_config.json + adapter_model.safetensors into dir (created). */
export function writeAdapter(dir, adapter) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(adapter.config, null, 2));
  writeFileSync(join(dir, "adapter_model.safetensors"), toSafetensors(adapter.tensors));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      type: { type: "string" },
      preset: { type: "string" },
      out: { type: "string" },
      adapters: { type: "string" },
      rank: { type: "string" },
      seed: { type: "string" },
    },
  });
  if (!values.out) throw new Error("--out DIR is required");
  const spec = { ...(PRESETS[values.preset ?? "tiny"] ?? {}), seed: Number(values.seed ?? 1) };
  spec.type = values.type ?? spec.type ?? "llama";
  const model = randomModel(spec);
  writeModel(values.out, model);
  const mods = spec.type === "gpt2" ? ["c_attn", "c_proj"] : ["q_proj", "k_proj", "v_proj", "o_proj"];
  const attn = spec.type === "gpt2" ? mods.map((m) => `attn.${m}`) : mods;
  for (let i = 0; i < Number(values.adapters ?? 0); i++)
    writeAdapter(join(values.out, `adapter-${i}`), randomPeftAdapter(model, attn, Number(values.rank ?? 16), 100 + i));
  process.stdout.write(`wrote ${values.out}\n`);
}
