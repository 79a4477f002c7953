// Shared set-up for the merge file-safety tests: a temporary folder with a small GPT-2-shaped base model and a
// PEFT adapter for it (test/peft/synthetic.ts), and helpers to catch coded errors and list a folder.

import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { LoraError } from "../../src/errors.js";
import { loadPeftAdapter, type PeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { SAFETENSORS_INDEX_NAME } from "../../src/io/safetensors-index.js";
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

/** The shard file names `shard` writes. */
export const SHARDS = [
  "model-00001-of-00003.safetensors",
  "model-00002-of-00003.safetensors",
  "model-00003-of-00003.safetensors",
];

/** Splits a safetensors file into three shards (in data order) plus an index, in a new folder. */
export function shard(bytes: Uint8Array, dir: string): Map<string, string> {
  const file = parseSafetensors(bytes);
  const names = file.names();
  const weightMap = new Map<string, string>();
  let total = 0;
  SHARDS.forEach((shardName, s) => {
    const part = names.slice(Math.floor((s * names.length) / 3), Math.floor(((s + 1) * names.length) / 3));
    const tensors: Record<string, TensorToWrite> = {};
    for (const n of part) {
      const info = file.info(n);
      tensors[n] = { dtype: info.dtype, shape: info.shape, data: file.bytes(n).slice() };
      weightMap.set(n, shardName);
      total += info.dataOffsets[1] - info.dataOffsets[0];
    }
    writeFileSync(join(dir, shardName), serializeSafetensors(tensors, file.metadata ?? undefined));
  });
  const index = { metadata: { total_size: total, note: "kept" }, weight_map: Object.fromEntries(weightMap) };
  writeFileSync(join(dir, SAFETENSORS_INDEX_NAME), JSON.stringify(index));
  return weightMap;
}
