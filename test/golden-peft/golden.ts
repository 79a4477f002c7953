// Access to shared/fixtures/peft-golden (what Hugging Face PEFT 0.21 itself computed; see its README), located by
// test/helpers/shared.ts. Tests skip when it is absent.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ParsedSafetensors, parseSafetensors } from "../../src/io/safetensors.js";
import { PEFT_GOLDEN } from "../helpers/shared.js";

/** Absolute path of the golden folder, or null when it is not there. */
export const GOLDEN_DIR: string | null = PEFT_GOLDEN;

/** The 15 variants: ten adapters PEFT made, five lorakit wrote and PEFT loaded. */
export const VARIANTS = [
  ["peft-llama-basic", "llama"],
  ["peft-llama-rslora-all", "llama"],
  ["peft-llama-dora", "llama"],
  ["peft-llama-patterns", "llama"],
  ["peft-llama-layers", "llama"],
  ["peft-llama-embed-mts", "llama"],
  ["peft-llama-bf16", "llama-bf16"],
  ["peft-gpt2-conv1d", "gpt2"],
  ["peft-gpt2-bias", "gpt2"],
  ["peft-gpt2-dora", "gpt2"],
  ["lk-llama-basic", "llama"],
  ["lk-llama-mixed", "llama"],
  ["lk-llama-dora", "llama"],
  ["lk-llama-bf16", "llama"],
  ["lk-gpt2-conv1d", "gpt2"],
] as const;

/** Paths of one variant's files. */
export function variantPaths(variant: string, base: string) {
  const root = GOLDEN_DIR ?? "";
  return {
    adapterDir: join(root, variant, "adapter"),
    io: join(root, variant, "io.safetensors"),
    merged: join(root, variant, "merged.safetensors"),
    baseModel: join(root, "base", base, "model.safetensors"),
    baseConfig: join(root, "base", base, "config.json"),
  };
}

/** Parses a safetensors file from disk. */
export function readSafetensors(path: string): ParsedSafetensors {
  return parseSafetensors(readFileSync(path));
}

/** max |a − e| / max |e| (the error relative to the tensor's scale). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    num = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(num, d);
    den = Math.max(den, Math.abs(expected[i]!));
  }
  return den === 0 ? num : num / den;
}

/** Largest distance in bfloat16 steps between two bfloat16 tensors given as raw little-endian bytes. */
export function maxBf16Ulps(a: Uint8Array, b: Uint8Array): number {
  const va = new DataView(a.buffer, a.byteOffset, a.byteLength);
  const vb = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // map the sign-magnitude bits onto a monotonic integer line
  const ord = (bits: number) => (bits & 0x8000 ? -(bits & 0x7fff) : bits);
  let worst = 0;
  for (let i = 0; i + 1 < a.byteLength; i += 2)
    worst = Math.max(worst, Math.abs(ord(va.getUint16(i, true)) - ord(vb.getUint16(i, true))));
  return worst;
}
