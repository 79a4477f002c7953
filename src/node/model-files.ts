// Model folders on disk, as Hugging Face saves them: config.json, model.safetensors (or model.safetensors.index.json
// + shards), optionally tokenizer.json (+ tokenizer_config.json). Adapters attach by folder (PEFT or MLX).

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ArgumentError, ModelError } from "../errors.js";
import { ggufToAdapter } from "../io/gguf-lora.js";
import type { AdapterInfo, AttachOptions } from "../model/adapters.js";
import { parseModelConfig } from "../model/config.js";
import { loadGgufModel } from "../model/gguf-base.js";
import { CausalLM } from "../model/model.js";
import { loadTokenizer, type TextTokenizer } from "../model/tokenizer.js";
import { loadAdapter } from "./adapter-files.js";
import { openGguf } from "./gguf-file.js";
import { requirePath } from "./path-arg.js";
import { exists, isDir } from "./path-kind.js";
import { openSafetensors, type SafetensorsFile } from "./safetensors-file.js";

/** A loaded model folder. */
export interface ModelDir {
  model: CausalLM;
  /** From tokenizer.json when the folder has one (and @huggingface/tokenizers is installed); else null. */
  tokenizer: TextTokenizer | null;
}

function notAModel(dir: string, why: string): ModelError {
  return new ModelError("missing_file", `loadModelDir: ${dir} is not a model folder (${why})`, { path: dir });
}

/**
 * Loads a causal LM folder: config.json and its safetensors weights (one file or an index with shards).
 * @param options.tokenizer false to skip tokenizer.json
 * @throws {ModelError} "missing_file" (no config.json / weights), "unsupported_model", "missing_tensor"
 * @example const { model, tokenizer } = await loadModelDir("./gpt2")
 */
export async function loadModelDir(dir: string, options: { tokenizer?: boolean } = {}): Promise<ModelDir> {
  requirePath("loadModelDir", "dir", dir);
  options ??= {};
  if (dir.toLowerCase().endsWith(".gguf") && !(await isDir(dir)))
    return { model: await loadGgufFile(dir), tokenizer: null };
  const configPath = join(dir, "config.json");
  if (!(await exists(configPath))) throw notAModel(dir, "no config.json");
  const config = await readFile(configPath, "utf8");
  // parse config.json before opening any weights, so an unsupported model is refused first
  const cfg = parseModelConfig(config);
  const files = await openWeights(dir);
  let model: CausalLM;
  try {
    model = await CausalLM.load(cfg, files);
  } finally {
    for (const f of files) await f.close();
  }
  let tokenizer: TextTokenizer | null = null;
  const tokPath = join(dir, "tokenizer.json");
  if (options.tokenizer !== false && (await exists(tokPath))) {
    const cfgPath = join(dir, "tokenizer_config.json");
    const tokConfig = (await exists(cfgPath)) ? JSON.parse(await readFile(cfgPath, "utf8")) : {};
    tokenizer = await loadTokenizer(JSON.parse(await readFile(tokPath, "utf8")), tokConfig);
  }
  return { model, tokenizer };
}

// Opens model.safetensors or every shard of model.safetensors.index.json (headers validated, data read later).
async function openWeights(dir: string): Promise<SafetensorsFile[]> {
  const single = join(dir, "model.safetensors");
  if (await exists(single)) return [await openSafetensors(single)];
  const index = join(dir, "model.safetensors.index.json");
  if (!(await exists(index))) throw notAModel(dir, "no model.safetensors or model.safetensors.index.json");
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(index, "utf8")) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw notAModel(dir, `model.safetensors.index.json is not JSON: ${(e as Error).message}`);
  }
  if (map === null || typeof map !== "object") throw notAModel(dir, "model.safetensors.index.json has no weight_map");
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== "string" || s.includes("/") || s.includes("\\") || s.startsWith("."))
      throw notAModel(dir, `weight_map names shard ${JSON.stringify(s)}, expected a file name in the folder`);
    if (!(await exists(join(dir, s)))) throw notAModel(dir, `shard ${s} is missing`);
  }
  const out: SafetensorsFile[] = [];
  try {
    for (const s of shards) out.push(await openSafetensors(join(dir, s as string)));
  } catch (e) {
    for (const f of out) await f.close();
    throw e;
  }
  return out;
}

/**
 * Loads a llama.cpp GGUF base model file (llama, qwen2, gpt2; F32/F16/BF16/Q8_0/Q4_0, dequantized to float32),
 * reading one tensor at a time. Its vocabulary is not used: token ids in and out.
 * @throws {ModelError} "missing_file", "unsupported_model"   @throws {GgufError} the reader's codes, "unsupported_dtype"
 */
export async function loadGgufFile(path: string): Promise<CausalLM> {
  if (!(await exists(path)))
    throw new ModelError("missing_file", `loadModelDir: ${path} does not exist (expected a GGUF model file)`, { path });
  const file = await openGguf(path);
  try {
    return await loadGgufModel(file);
  } finally {
    await file.close();
  }
}

/**
 * Loads an adapter folder (PEFT or MLX, detected) or a llama.cpp GGUF LoRA file (.gguf) and attaches it to the model under `name`.
 * @example await attachAdapterDir(model, "tigrinya", "./gpt2-tigrinya-lora")
 */
export async function attachAdapterDir(
  model: CausalLM,
  name: string,
  dir: string,
  options: AttachOptions = {},
): Promise<AdapterInfo> {
  requirePath("attachAdapterDir", "dir", dir);
  if (!(model instanceof CausalLM))
    throw new ArgumentError("invalid_argument", "attachAdapterDir: model is not a CausalLM (loadModelDir gives one)", {
      name: "model",
    });
  if (dir.toLowerCase().endsWith(".gguf") && !(await isDir(dir))) {
    // llama.cpp GGUF LoRA: q/k factors are un-permuted with the model's head counts
    const heads = { nHead: model.config.numHeads, nHeadKv: model.config.numKvHeads };
    return model.attachAdapter(name, ggufToAdapter(await readFile(dir), { heads }), options);
  }
  return model.attachAdapter(name, await loadAdapter(dir), options);
}
