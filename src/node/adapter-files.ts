// Adapter folders on disk. PEFT: adapter_config.json + adapter_model.safetensors. MLX-LM: adapter_config.json
// (training config) + adapters.safetensors. A PEFT folder with only adapter_model.bin (torch.save) is read by
// readTorchFile, which interprets the pickle with an allow-list and executes nothing; a Git LFS pointer is refused.

import { basename, dirname, join } from "node:path";
import { AdapterFormatError } from "../errors.js";
import { loadMlxAdapter, type MlxAdapter, type MlxLoadOptions } from "../io/mlx-adapter.js";
import { loadPeftAdapter, type PeftAdapter, type PeftModuleAdapter, refuseNonSafetensors } from "../io/peft-adapter.js";
import type { PeftConfig } from "../io/peft-config.js";
import { type SavePeftOptions, savePeftAdapter } from "../io/peft-save.js";
import { looksLikeTorchFile } from "../io/torch-file.js";
import { type OpenFile, writeFilesAtomic } from "./atomic-write.js";
import { requirePath } from "./path-arg.js";
import { exists, isDir } from "./path-kind.js";
import { readRegularFile } from "./read-file.js";

const CONFIG = "adapter_config.json";
const PEFT_WEIGHTS = "adapter_model.safetensors";
const MLX_WEIGHTS = "adapters.safetensors";
const PICKLE = "adapter_model.bin";

// Reads a weights file; a Git LFS pointer is refused here so the message names the file.
async function readWeights(op: string, path: string): Promise<Uint8Array> {
  const bytes = await readRegularFile(op, path, "an adapter weights file");
  if (!looksLikeTorchFile(bytes)) refuseNonSafetensors(op, path, bytes);
  return bytes;
}

function missingFile(op: string, path: string, hint: string): AdapterFormatError {
  return new AdapterFormatError("missing_file", `${op}: ${path} does not exist (${hint})`, { path });
}

async function readConfig(op: string, dir: string, hint = `an adapter folder needs ${CONFIG}`): Promise<string> {
  const path = join(dir, CONFIG);
  if (!(await exists(path))) throw missingFile(op, path, hint);
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(await readRegularFile(op, path, hint));
}

/**
 * Loads a PEFT adapter folder: adapter_config.json + adapter_model.safetensors, or + adapter_model.bin when there is
 * no .safetensors (a torch.save file, read without executing anything).
 * @throws {AdapterFormatError} "missing_file", "unsupported_format" (MLX folder, LFS pointer), plus everything
 *   loadPeftAdapter throws (TorchFileError codes for a broken or hostile .bin)
 * @example const adapter = await loadPeftAdapterDir("./gpt2-tigrinya-lora")
 */
export async function loadPeftAdapterDir(dir: string): Promise<PeftAdapter> {
  const op = "loadPeftAdapterDir";
  requirePath(op, "dir", dir);
  let weights = join(dir, PEFT_WEIGHTS);
  if (!(await exists(weights)) && (await exists(join(dir, PICKLE)))) weights = join(dir, PICKLE);
  if (!(await exists(weights))) {
    if (await exists(join(dir, MLX_WEIGHTS)))
      throw new AdapterFormatError(
        "unsupported_format",
        `${op}: ${dir} holds ${MLX_WEIGHTS}: this is an MLX adapter, not PEFT; load it with loadMlxAdapterDir or loadAdapter`,
        { path: dir, format: "mlx" },
      );
    throw missingFile(op, weights, `a PEFT adapter folder needs ${PEFT_WEIGHTS}`);
  }
  const config = await readConfig(op, dir);
  return loadPeftAdapter({ config, weights: await readWeights(op, weights) });
}

/** Loads an MLX-LM adapter folder (adapter_config.json + adapters.safetensors); options as loadMlxAdapter. */
export async function loadMlxAdapterDir(dir: string, options: MlxLoadOptions = {}): Promise<MlxAdapter> {
  const op = "loadMlxAdapterDir";
  requirePath(op, "dir", dir);
  const weights = join(dir, MLX_WEIGHTS);
  if (!(await exists(weights))) throw missingFile(op, weights, `an MLX adapter folder needs ${MLX_WEIGHTS}`);
  const config = await readConfig(op, dir);
  return loadMlxAdapter({ config, weights: await readRegularFile(op, weights, "MLX adapter weights") }, options);
}

/**
 * Loads an adapter from a folder, from its weights file (.safetensors, or a PEFT .bin) or from its adapter_config.json
 * (which stands for its folder), detecting PEFT or MLX-LM: adapters.safetensors (or an MLX training config) means
 * MLX, anything else is read as PEFT.
 * @throws {AdapterFormatError} "missing_file" and the loaders' errors
 * @example const adapter = await loadAdapter("adapters/adapters.safetensors") // adapter.format === "mlx"
 */
export async function loadAdapter(path: string): Promise<PeftAdapter | MlxAdapter> {
  if (!(await exists(path))) throw missingFile("loadAdapter", path, "expected an adapter folder or .safetensors file");
  if (await isDir(path)) {
    if (!(await exists(join(path, PEFT_WEIGHTS))) && (await exists(join(path, MLX_WEIGHTS))))
      return loadMlxAdapterDir(path);
    return loadPeftAdapterDir(path);
  }
  const dir = dirname(path);
  if (basename(path) === CONFIG) return loadAdapter(dir); // the config, not a weights file: its folder
  const config = await readConfig("loadAdapter", dir, `a weights file such as ${path} needs ${CONFIG} beside it`);
  const weights = await readWeights("loadAdapter", path);
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(config);
  } catch {
    // invalid JSON: reported by the PEFT loader
  }
  const mlx = parsed !== null && typeof parsed === "object" && "lora_parameters" in parsed && !("peft_type" in parsed);
  return mlx ? loadMlxAdapter({ config, weights }) : loadPeftAdapter({ config, weights });
}

/**
 * Writes an adapter folder as PEFT does: adapter_config.json and adapter_model.safetensors, both through
 * writeFilesAtomic: a new folder appears only complete, an existing one gets both files or neither (its other files
 * are kept). Missing parent folders are made, as `mkdir -p` does. `options.openFile` is the seam for tests.
 * @throws {AdapterFormatError} "missing_file" when `dir` exists but is not a folder (the adapter folder is missing
 *   and cannot be made; nothing is written), plus everything savePeftAdapter throws (checked before any write);
 *   FileWriteError from makeFolder and writeFileAtomic (not_writable, no_space, invalid_output)
 * @example await savePeftAdapterDir("out/my-adapter", adapter.modules, adapter.config)
 */
export async function savePeftAdapterDir(
  dir: string,
  modules: readonly PeftModuleAdapter[],
  config: PeftConfig | object,
  options: SavePeftOptions & { openFile?: OpenFile } = {},
): Promise<void> {
  const { configJson, weights } = savePeftAdapter(modules, config, options);
  if ((await exists(dir)) && !(await isDir(dir)))
    throw new AdapterFormatError("missing_file", `savePeftAdapterDir: ${dir} exists and is not a folder`, {
      path: dir,
    });
  await writeFilesAtomic(
    dir,
    [
      { name: PEFT_WEIGHTS, data: weights },
      { name: CONFIG, data: new TextEncoder().encode(configJson) },
    ],
    { op: "savePeftAdapterDir", ...(options.openFile ? { openFile: options.openFile } : {}) },
  );
}
