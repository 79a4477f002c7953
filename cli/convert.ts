// `lorakit convert`: adapters between PEFT, MLX-LM and llama.cpp's GGUF LoRA, PEFT/MLX-LM to ONNX Runtime's
// .onnx_adapter, and Hugging Face models to GGUF. The direction follows from the input (an adapter folder, a .gguf
// adapter or a model folder) and the output (a .gguf or .onnx_adapter file, or a folder).

import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  type AttentionHeads,
  adapterToGguf,
  adapterToOnnx,
  ConfigError,
  type ConfigIssue,
  FileWriteError,
  ggufToAdapter,
  loadPeftAdapter,
  type MlxAdapter,
  modulesToPeft,
  type PeftAdapter,
} from "../src/index.js";
import { convertModelToGguf, loadAdapter, writeFileAtomic, writeFilesAtomic } from "../src/node/index.js";
import { type CliIo, type Command, parseOptions, UsageError } from "./usage.js";

const HELP = `Usage: lorakit convert --from PATH --to PATH [--base DIR] [--arch NAME] [--dtype T]

  adapter folder (PEFT or MLX-LM)  → FILE.gguf   llama.cpp LoRA adapter (exact scaling, see docs/gguf.md)
  adapter folder (PEFT or MLX-LM)  → FILE.onnx_adapter   ONNX Runtime adapter (scaling folded, see docs/onnx.md)
  FILE.gguf (llama.cpp LoRA)       → FILE.onnx_adapter   ONNX Runtime adapter (through its PEFT form)
  MLX-LM adapter folder            → DIR         PEFT adapter (adapter_config.json + adapter_model.safetensors)
  FILE.gguf (llama.cpp LoRA)       → DIR         PEFT adapter
  model folder (config.json + *.safetensors) → FILE.gguf   llama.cpp base model

Options:
  --from PATH    input (see above)
  --to PATH      output: a .gguf or .onnx_adapter file, or a folder (created if missing)
  --base DIR     the base model's folder (its config.json gives the architecture and the attention head counts
                 that llama's Q/K permutation needs)
  --arch NAME    architecture when there is no --base: llama, mistral, qwen2, gemma, phi3, gpt2 (or a
                 transformers class such as LlamaForCausalLM)
  --dtype T      adapters: f32 (default), f16, bf16; models: f32, f16 (default), bf16, q8_0, q4_0
  --debug        print stack traces on errors
  --help         show this help

Refused by name (a GGUF LoRA cannot express them): DoRA, modules_to_save, trained biases; for .onnx_adapter
also embedding LoRA and saved base weights.
Exit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;

const OPTIONS = {
  from: { type: "string" },
  to: { type: "string" },
  base: { type: "string" },
  arch: { type: "string" },
  dtype: { type: "string" },
  debug: { type: "boolean" },
  help: { type: "boolean" },
} as const;

interface BaseInfo {
  arch?: string;
  heads?: AttentionHeads;
}

function readBase(dir: string | undefined, arch: string | undefined): BaseInfo {
  if (dir === undefined) return { arch };
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new UsageError(`--base ${dir} has no config.json`);
  let c: unknown;
  try {
    c = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(path, [{ path: [], message: `not valid JSON (${(e as Error).message})` }]);
  }
  if (typeof c !== "object" || c === null || Array.isArray(c))
    throw new ConfigError(path, [
      { path: [], message: `is ${c === null ? "null" : Array.isArray(c) ? "an array" : typeof c}, expected an object` },
    ]);
  const config = c as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  const count = (keys: string[]): number | undefined => {
    const key = keys.find((k) => config[k] !== undefined && config[k] !== null);
    if (key === undefined) return undefined;
    const v = config[key];
    if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) return v;
    issues.push({ path: [key], message: `${key} must be a positive integer (a head count), got ${JSON.stringify(v)}` });
    return undefined;
  };
  const nHead = count(["num_attention_heads", "n_head"]);
  const nHeadKv = count(["num_key_value_heads"]);
  if (nHead !== undefined && nHeadKv !== undefined && nHead % nHeadKv !== 0)
    issues.push({
      path: ["num_key_value_heads"],
      message: `num_key_value_heads must divide num_attention_heads = ${nHead}, got ${nHeadKv}`,
    });
  if (issues.length > 0) throw new ConfigError(path, issues);
  const archName =
    arch ?? (Array.isArray(config.architectures) ? String(config.architectures[0]) : String(config.model_type));
  return { arch: archName, heads: nHead !== undefined ? { nHead, nHeadKv: nHeadKv ?? nHead } : undefined };
}

function pick<T extends string>(flag: string, v: string | undefined, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  const up = v.toUpperCase() as T;
  if (!allowed.includes(up))
    throw new UsageError(`${flag} must be one of ${allowed.join(", ").toLowerCase()}, got ${JSON.stringify(v)}`);
  return up;
}

// A PEFT folder written into the adapter folder it is converted from would replace that adapter's own
// adapter_config.json (an MLX training config) with the PEFT one: refused, also through a link.
function refuseOutputIsInput(from: string, to: string): void {
  const input = statSync(from).isDirectory() ? from : dirname(from);
  const out = statSync(to, { throwIfNoEntry: false });
  const inp = statSync(input);
  if (out === undefined || out.dev !== inp.dev || out.ino !== inp.ino) return;
  const how = resolve(input) === resolve(to) ? "" : " (through a link)";
  throw new FileWriteError(
    "output_is_input",
    `convert: --to ${to} is the input's folder ${input}${how}; writing the PEFT files there would replace its adapter_config.json — choose another folder; nothing was written`,
    { out: to, input },
  );
}

async function writePeftDir(dir: string, files: { configJson: string; weights: Uint8Array }): Promise<void> {
  await writeFilesAtomic(
    dir,
    [
      { name: "adapter_model.safetensors", data: files.weights },
      { name: "adapter_config.json", data: new TextEncoder().encode(files.configJson) },
    ],
    { op: "convert" },
  );
}

async function writeOnnx(
  io: CliIo,
  to: string,
  adapter: PeftAdapter | MlxAdapter,
  dtypeFlag: string | undefined,
): Promise<number> {
  const dtype = pick("--dtype", dtypeFlag, ["F32", "F16", "BF16"] as const, "F32");
  const bytes = adapterToOnnx(adapter, { dtype });
  await writeFileAtomic(to, bytes, { op: "convert" });
  io.stdout(
    `convert: ${adapter.modules.length} LoRA modules (${dtype}) → ONNX Runtime adapter ${to} (${bytes.length} bytes)\n`,
  );
  return 0;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions("convert", argv, OPTIONS);
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  const from = values.from;
  const to = values.to;
  if (from === undefined || to === undefined)
    throw new UsageError("--from and --to are required (see 'lorakit convert --help')");
  if (!existsSync(from)) throw new UsageError(`--from ${from} does not exist`);
  const toGguf = to.endsWith(".gguf");
  const toOnnx = to.endsWith(".onnx_adapter");
  const base = readBase(values.base, values.arch);
  if (statSync(from).isFile() && from.endsWith(".gguf")) {
    if (toGguf) throw new UsageError("--from is a .gguf adapter: --to must be a folder or a .onnx_adapter file");
    const g = ggufToAdapter(new Uint8Array(readFileSync(from)), { heads: base.heads });
    const peft = modulesToPeft(g.modules, { fanInFanOut: g.architecture === "gpt2" });
    // through the PEFT form (lossless: float32 safetensors), so adapterToOnnx sees a loaded adapter
    if (toOnnx)
      return writeOnnx(io, to, loadPeftAdapter({ config: peft.configJson, weights: peft.weights }), values.dtype);
    await writePeftDir(to, peft);
    io.stdout(`convert: ${g.modules.length} LoRA modules (${g.architecture}, alpha ${g.alpha}) → PEFT adapter ${to}\n`);
    return 0;
  }
  const isModel = existsSync(join(from, "config.json")) && !existsSync(join(from, "adapter_config.json"));
  if (isModel) {
    if (!toGguf) throw new UsageError("--from is a model folder: --to must be a .gguf file");
    const dtype = pick("--dtype", values.dtype, ["F32", "F16", "BF16", "Q8_0", "Q4_0"] as const, "F16");
    const s = await convertModelToGguf(from, to, { dtype });
    for (const w of s.warnings) io.stderr(`convert: warning: ${w}\n`);
    io.stdout(`convert: ${s.tensors} tensors (${s.architecture}, ${dtype}) → ${to} (${s.bytes} bytes)\n`);
    return 0;
  }
  const adapter = await loadAdapter(from);
  for (const w of adapter.warnings) io.stderr(`convert: warning: ${w}\n`);
  if (toOnnx) return writeOnnx(io, to, adapter, values.dtype);
  if (toGguf) {
    const arch =
      base.arch ??
      (adapter.format === "peft"
        ? ((adapter.config.raw.auto_mapping as { base_model_class?: string } | null)?.base_model_class ?? undefined)
        : undefined);
    if (arch === undefined) throw new UsageError("the architecture is unknown: pass --base DIR or --arch NAME");
    const dtype = pick("--dtype", values.dtype, ["F32", "F16", "BF16"] as const, "F32");
    const bytes = adapterToGguf(adapter, { architecture: arch, heads: base.heads, dtype });
    await writeFileAtomic(to, bytes, { op: "convert" });
    io.stdout(`convert: ${adapter.modules.length} LoRA modules → GGUF LoRA ${to} (${bytes.length} bytes)\n`);
    return 0;
  }
  if (adapter.format !== "mlx")
    throw new UsageError("--from is already a PEFT adapter: --to must be a .gguf or .onnx_adapter file");
  refuseOutputIsInput(from, to);
  await writePeftDir(to, modulesToPeft(adapter.modules));
  io.stdout(`convert: ${adapter.modules.length} MLX LoRA modules → PEFT adapter ${to}\n`);
  return 0;
}

export const convertCommand: Command = {
  summary: "convert adapters (PEFT, MLX-LM, GGUF LoRA, → ONNX Runtime) and models (Hugging Face → GGUF)",
  help: HELP,
  run,
};
