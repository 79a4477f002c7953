// Shared set-up for the merge file-safety tests: a temporary folder with a small GPT-2-shaped base model and a
// PEFT adapter for it (test/peft/synthetic.ts), and helpers to catch coded errors and list a folder.

import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { LoraError } from "../../src/errors.js";
import { loadPeftAdapter, type PeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { adapterBytes, GPT2_CONFIG, gpt2BaseBytes, gpt2Modules } from "../peft/synthetic.js";

export interface MergeFixture {
  dir: string;
  basePath: string;
  baseBytes: Uint8Array;
  adapterDir: string;
  adapter: PeftAdapter;
}

/** A fresh folder with base.safetensors (2 layers, d = 8) and adapter/ (r = 4 on c_attn and c_proj). */
export async function mergeFixture(baseBytes = gpt2BaseBytes(2, 8)): Promise<MergeFixture> {
  const dir = mkdtempSync(join(tmpdir(), "lorakit-merge-safety-"));
  const basePath = join(dir, "base.safetensors");
  writeFileSync(basePath, baseBytes);
  const adapter = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(2, 8, 4)) });
  const adapterDir = join(dir, "adapter");
  mkdirSync(adapterDir);
  await savePeftAdapterDir(adapterDir, adapter.modules, adapter.config);
  return { dir, basePath, baseBytes, adapterDir, adapter };
}

/** The GPT-2 base with `edit` applied to one tensor's float32 values. */
export function editedBase(name: string, edit: (values: Float32Array) => void): Uint8Array {
  const file = parseSafetensors(gpt2BaseBytes(2, 8));
  const tensors: Record<string, TensorToWrite> = {};
  for (const n of file.names()) {
    const values = file.toFloat32(n);
    if (n === name) edit(values);
    tensors[n] = { dtype: "F32", shape: file.info(n).shape, data: values };
  }
  return serializeSafetensors(tensors, { format: "pt" });
}

/** Awaits f and returns the LoraError it throws, checking its code. */
export async function rejected(f: () => Promise<unknown>, code: string): Promise<LoraError> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof LoraError)) throw e;
    expect(e.code, e.message).toBe(code);
    return e;
  }
  throw new Error(`expected a LoraError with code ${code}, nothing was thrown`);
}

/** Names in `dir` that look like temporaries of an atomic write. */
export function temporaries(dir: string): string[] {
  return readdirSync(dir).filter((n) => /\.(tmp|old)$/.test(n));
}
