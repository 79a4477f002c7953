// A model folder as the server's engine: loadModelDir (config, weights, tokenizer if any), adapters read from
// folders with loadAdapter (PEFT or MLX, detected), the named start-up adapters attached before serving.

import { basename, resolve } from "node:path";
import { ModelEngine } from "../../serve/model-engine.js";
import { loadAdapter } from "../adapter-files.js";
import { loadModelDir } from "../model-files.js";
import { requirePath } from "../path-arg.js";

/** Options of openModelEngine. */
export interface OpenModelOptions {
  /** [name, folder] pairs attached at start, in order. */
  adapters?: [string, string][];
  /** false: ignore tokenizer.json (token ids only). */
  tokenizer?: boolean;
}

/**
 * Loads a model folder and its start-up adapters as a server engine; `name` is the folder's base name.
 * @throws what loadModelDir and loadAdapter throw (ModelError, AdapterFormatError, ConfigError, ...)
 */
export async function openModelEngine(
  dir: string,
  options: OpenModelOptions = {},
): Promise<{ engine: ModelEngine; name: string }> {
  requirePath("openModelEngine", "dir", dir);
  options ??= {};
  const { model, tokenizer } = await loadModelDir(dir, { tokenizer: options.tokenizer ?? true });
  const engine = new ModelEngine({ model, tokenizer, readAdapter: (location) => loadAdapter(location) });
  for (const [name, folder] of options.adapters ?? []) await engine.attachAdapter(name, folder);
  return { engine, name: basename(resolve(dir)) };
}
