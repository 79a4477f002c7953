// Synthetic PEFT adapters and base models for the tests: deterministic pseudo-random values (mulberry32 seeded
// from SEED), written with lorakit's safetensors writer under PEFT's key names.

import { serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { SEED } from "../helpers/seed.js";

/** mulberry32: a small seeded PRNG returning floats in [-1, 1). */
export function rng(seed = SEED): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

export function randomArray(n: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => next() * scale);
}

export interface SynthModule {
  path: string;
  dIn: number;
  dOut: number;
  r: number;
  dtype?: "F32" | "F16" | "BF16";
  magnitude?: boolean;
}

/** adapter_model.safetensors bytes: lora_A [r, dIn], lora_B [dOut, r] (non-zero up so ΔW ≠ 0). */
export function adapterBytes(
  modules: SynthModule[],
  extra: Record<string, TensorToWrite> = {},
  next = rng(),
): Uint8Array {
  const t: Record<string, TensorToWrite> = { ...extra };
  for (const m of modules) {
    const dtype = m.dtype ?? "F32";
    t[`base_model.model.${m.path}.lora_A.weight`] = {
      dtype,
      shape: [m.r, m.dIn],
      data: randomArray(m.r * m.dIn, next, 0.5),
    };
    t[`base_model.model.${m.path}.lora_B.weight`] = {
      dtype,
      shape: [m.dOut, m.r],
      data: randomArray(m.dOut * m.r, next, 0.5),
    };
    if (m.magnitude)
      t[`base_model.model.${m.path}.lora_magnitude_vector`] = {
        dtype,
        shape: [m.dOut],
        data: Float32Array.from({ length: m.dOut }, () => 1 + 0.5 * next()),
      };
  }
  return serializeSafetensors(t, { format: "pt" });
}

/** GPT-2 module names and Conv1D shapes [dIn, dOut] for `layers` blocks with hidden size d (c_attn 3d, mlp 4d). */
export function gpt2Modules(layers: number, d: number, r: number): SynthModule[] {
  const out: SynthModule[] = [];
  for (let l = 0; l < layers; l++) {
    out.push({ path: `transformer.h.${l}.attn.c_attn`, dIn: d, dOut: 3 * d, r });
    out.push({ path: `transformer.h.${l}.attn.c_proj`, dIn: d, dOut: d, r });
    out.push({ path: `transformer.h.${l}.mlp.c_proj`, dIn: 4 * d, dOut: d, r });
  }
  return out;
}

/**
 * A GPT-2-shaped base model (GPT2Model naming, no "transformer." prefix): Conv1D weights [dIn, dOut] for every
 * c_attn / c_proj / c_fc, biases, layer norms, embeddings; F32 or the given dtype.
 */
export function gpt2BaseBytes(
  layers: number,
  d: number,
  dtype: "F32" | "F16" | "BF16" = "F32",
  next = rng(SEED + 1),
): Uint8Array {
  const t: Record<string, TensorToWrite> = {};
  const put = (name: string, shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    t[name] = { dtype, shape, data: randomArray(n, next, 0.2) };
  };
  put("wte.weight", [11, d]);
  put("wpe.weight", [7, d]);
  for (let l = 0; l < layers; l++) {
    put(`h.${l}.ln_1.weight`, [d]);
    put(`h.${l}.attn.c_attn.weight`, [d, 3 * d]);
    put(`h.${l}.attn.c_attn.bias`, [3 * d]);
    put(`h.${l}.attn.c_proj.weight`, [d, d]);
    put(`h.${l}.mlp.c_fc.weight`, [d, 4 * d]);
    put(`h.${l}.mlp.c_proj.weight`, [4 * d, d]);
  }
  put("ln_f.weight", [d]);
  return serializeSafetensors(t, { format: "pt" });
}

export const GPT2_CONFIG = {
  peft_type: "LORA",
  r: 4,
  lora_alpha: 8,
  fan_in_fan_out: true,
  target_modules: ["c_attn", "c_proj"],
  task_type: "CAUSAL_LM",
};
