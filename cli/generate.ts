// `lorakit generate`: runs a causal LM folder (llama/mistral/qwen2/gpt2) with optional adapters and streams the new
// tokens to stdout as they are generated: text when the folder has a tokenizer.json, token ids otherwise.

import { join } from "node:path";
import { generate } from "../src/model/index.js";
import { attachAdapterDir, loadModelDir } from "../src/node/index.js";
import { type CliIo, type Command, parseOptions, UsageError } from "./usage.js";

const HELP = `Usage: lorakit generate --model DIR [--adapter NAME=DIR]... [--use NAME] (--prompt TEXT | --ids 1,2,3)
                        [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]

Loads a Hugging Face causal LM folder (config.json + model.safetensors or sharded weights; llama, mistral, qwen2,
gpt2) or a llama.cpp GGUF base model file (FILE.gguf: llama, qwen2, gpt2; F32/F16/BF16/Q8_0/Q4_0, ids only; its
Q8_0/Q4_0 matrices stay quantized, the rest is float32), attaches the adapters (PEFT or MLX-LM folders, or GGUF
LoRA files) under their names, and generates with the one named by --use (default: the only adapter when exactly
one is given, else none). Tokens are printed as they come: text when the folder has tokenizer.json, else
space-separated ids. Generation ends at an end-of-sequence id of config.json, after --max-tokens tokens, or at the
model's context length.

Options:
  --model DIR          model folder, or a GGUF base model file
  --adapter NAME=DIR   attach an adapter folder under NAME (repeatable)
  --use NAME           the adapter to generate with ("none" for the base model)
  --prompt TEXT        prompt text (needs tokenizer.json in the model folder)
  --ids LIST           prompt token ids, comma-separated
  --max-tokens N       new tokens at most (default 32)
  --temperature T      0 = greedy (default); > 0 samples
  --top-k K            sample among the K most likely tokens (default: all)
  --top-p P            sample among the most likely tokens up to probability P (default 1)
  --seed S             seed of the sampler (default 0)
  --debug              print stack traces on errors
  --help               show this help

Exit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;

const OPTIONS = {
  model: { type: "string" },
  adapter: { type: "string", multiple: true },
  use: { type: "string" },
  prompt: { type: "string" },
  ids: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
  debug: { type: "boolean" },
  help: { type: "boolean" },
} as const;

function number(flag: string, v: string | undefined, fallback: number, integer: boolean): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n)))
    throw new UsageError(`${flag} must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(v)}`);
  return n;
}

function parseIds(v: string): number[] {
  const parts = v.split(",").map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p)))
    throw new UsageError(`--ids must be comma-separated non-negative integers, got ${JSON.stringify(v)}`);
  return parts.map(Number);
}

function parseAdapters(list: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (const a of list) {
    const eq = a.indexOf("=");
    if (eq <= 0 || eq === a.length - 1) throw new UsageError(`--adapter must be NAME=DIR, got ${JSON.stringify(a)}`);
    const name = a.slice(0, eq);
    if (out.some(([n]) => n === name)) throw new UsageError(`--adapter name "${name}" is given twice`);
    out.push([name, a.slice(eq + 1)]);
  }
  return out;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const o = parseOptions("generate", argv, OPTIONS).values;
  if (o.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  if (o.model === undefined) throw new UsageError("--model DIR is required (see 'lorakit generate --help')");
  if ((o.prompt === undefined) === (o.ids === undefined))
    throw new UsageError("give exactly one of --prompt TEXT and --ids 1,2,3");
  const adapters = parseAdapters(o.adapter ?? []);
  const use = o.use === "none" ? null : (o.use ?? (adapters.length === 1 ? adapters[0]![0] : null));
  if (use !== null && !adapters.some(([n]) => n === use))
    throw new UsageError(
      `--use ${use}: no adapter of that name (given: ${adapters.map(([n]) => n).join(", ") || "none"}; add --adapter ${use}=DIR)`,
    );
  const options = {
    maxTokens: number("--max-tokens", o["max-tokens"], 32, true),
    temperature: number("--temperature", o.temperature, 0, false),
    topK: number("--top-k", o["top-k"], 0, true),
    topP: number("--top-p", o["top-p"], 1, false),
    seed: number("--seed", o.seed, 0, true),
  };
  const { model, tokenizer } = await loadModelDir(o.model);
  if (o.prompt !== undefined && tokenizer === null)
    throw new UsageError(
      o.model.endsWith(".gguf")
        ? `--prompt needs a tokenizer.json, and a GGUF base model runs on token ids here; pass them with --ids`
        : `--prompt needs ${join(o.model, "tokenizer.json")}, which is missing; pass token ids with --ids`,
    );
  const ids = o.prompt !== undefined ? tokenizer!.encode(o.prompt) : parseIds(o.ids!);
  if (ids.length === 0) throw new UsageError("the prompt has no tokens");
  for (const [name, dir] of adapters) await attachAdapterDir(model, name, dir);
  const made: number[] = [];
  let printed = "";
  for (const e of generate(model, [{ ids, adapter: use }], options)) {
    made.push(e.token);
    if (tokenizer) {
      // decode everything so far and print what is new (a character may span several tokens)
      const text = tokenizer.decode(made);
      if (text.startsWith(printed) && !text.endsWith("\uFFFD")) {
        io.stdout(text.slice(printed.length));
        printed = text;
      }
    } else io.stdout(`${made.length > 1 ? " " : ""}${e.token}`);
  }
  if (tokenizer) {
    const text = tokenizer.decode(made);
    if (text.startsWith(printed)) io.stdout(text.slice(printed.length));
  }
  io.stdout("\n");
  return 0;
}

export const generateCommand: Command = {
  summary: "generate text or token ids with a causal LM folder and adapters",
  help: HELP,
  run,
};
