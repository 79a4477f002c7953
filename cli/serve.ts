// `lorakit serve`: an OpenAI-compatible server for one base model and many adapters (docs/serve.md). Loads the
// model and the start-up adapters, listens (127.0.0.1 unless --host), logs one line when listening and one when
// stopped, and shuts down gracefully on SIGINT/SIGTERM (a second signal cancels what is still running).

import { openModelEngine, startServer } from "../src/node/index.js";
import { type CliIo, type Command, parseCount, parseOptions, UsageError } from "./usage.js";

const HELP = `Usage: lorakit serve --model DIR [--adapter NAME=DIR]... [--host H] [--port P] [--api-key KEY]
                     [--adapter-dir DIR] [--served-name NAME] [--max-batch N] [--max-queue N] [--timeout S]
                     [--max-body BYTES] [--batch-window MS] [--shutdown-grace S]

Serves a causal LM folder and its LoRA adapters over HTTP with OpenAI's API: POST /v1/completions (model = the base
or an adapter's name), GET /v1/models, POST /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM's), GET /health.
Requests on different adapters share every decode step (continuous batching).

Options:
  --model DIR           the base model folder (config.json, safetensors, optional tokenizer.json)
  --adapter NAME=DIR    attach the adapter folder DIR (PEFT or MLX) as NAME at start; repeatable
  --served-name NAME    the name the base model answers to (default: the folder's name)
  --host H              interface to listen on (default 127.0.0.1)
  --port P              port (default 8000; 0 picks a free one)
  --api-key KEY         require 'Authorization: Bearer KEY' (default: $LORAKIT_API_KEY if set)
  --adapter-dir DIR     allow /v1/load_lora_adapter to load folders inside DIR (off without it)
  --max-batch N         most sequences per step (default 16)
  --max-queue N         most sequences waiting before 429 (default 64)
  --timeout S           seconds per request, queueing included (default 300)
  --max-body BYTES      largest request body (default 4194304)
  --batch-window MS     ms a request that finds the server idle waits for others to share its first step
                        (default 5; 0: none)
  --shutdown-grace S    seconds running requests get on SIGINT/SIGTERM (default 30)
  --debug               print stack traces on errors
  --help                show this help

Exit codes: 0 stopped by a signal, 1 unexpected failure, 2 usage or input error.`;

const OPTIONS = {
  model: { type: "string" },
  adapter: { type: "string", multiple: true },
  "served-name": { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  "api-key": { type: "string" },
  "adapter-dir": { type: "string" },
  "max-batch": { type: "string" },
  "max-queue": { type: "string" },
  timeout: { type: "string" },
  "max-body": { type: "string" },
  "batch-window": { type: "string" },
  "shutdown-grace": { type: "string" },
  debug: { type: "boolean" },
  help: { type: "boolean" },
} as const;

function parseAdapters(specs: string[]): [string, string][] {
  return specs.map((spec) => {
    const at = spec.indexOf("=");
    if (at <= 0 || at === spec.length - 1)
      throw new UsageError(`--adapter ${JSON.stringify(spec)}: expected NAME=DIR (e.g. --adapter support=./support)`);
    return [spec.slice(0, at), spec.slice(at + 1)];
  });
}

function positive(flag: string, v: string | undefined, fallback: number): number {
  const n = parseCount(flag, v, fallback);
  if (n === 0) throw new UsageError(`${flag} must be at least 1, got 0`);
  return n;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions("serve", argv, OPTIONS);
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  if (!values.model) throw new UsageError("--model DIR is required (see 'lorakit serve --help')");
  const adapters = parseAdapters(values.adapter ?? []);
  const port = parseCount("--port", values.port, 8000);
  if (port > 65535) throw new UsageError(`--port must be in [0, 65535], got ${port}`);
  const limits = {
    maxBatch: positive("--max-batch", values["max-batch"], 16),
    maxQueue: parseCount("--max-queue", values["max-queue"], 64),
    requestTimeoutMs: 1000 * positive("--timeout", values.timeout, 300),
    maxBodyBytes: positive("--max-body", values["max-body"], 4 * 2 ** 20),
    batchWindowMs: parseCount("--batch-window", values["batch-window"], 5),
  };
  const graceMs = 1000 * parseCount("--shutdown-grace", values["shutdown-grace"], 30);
  const { engine, name } = await openModelEngine(values.model, { adapters });
  const modelName = values["served-name"] ?? name;
  const server = await startServer({
    engine,
    modelName,
    host: values.host,
    port,
    apiKey: values["api-key"] ?? process.env.LORAKIT_API_KEY,
    adapterDir: values["adapter-dir"],
    ...limits,
  });
  const names = engine.adapters();
  io.stderr(
    `lorakit serve: listening on ${server.url} (model "${modelName}", adapters: ${names.length ? names.join(", ") : "none"}; batch ${limits.maxBatch}, queue ${limits.maxQueue})\n`,
  );
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      io.stderr(`lorakit serve: ${signal}, shutting down (grace ${graceMs / 1000} s; again to cancel now)\n`);
      server.close(graceMs).then(() => {
        process.off("SIGINT", onInt);
        process.off("SIGTERM", onTerm);
        io.stderr("lorakit serve: stopped\n");
        resolve(0);
      });
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

export const serveCommand: Command = {
  summary: "serve a model and its adapters over HTTP (OpenAI-compatible, continuous batching)",
  help: HELP,
  run,
};
