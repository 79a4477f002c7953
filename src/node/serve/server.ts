// `lorakit serve`'s HTTP server (node:http): OpenAI's /v1/completions and /v1/models, vLLM's
// /v1/load_lora_adapter and /v1/unload_lora_adapter, and /health, over a CompletionService. Bound to 127.0.0.1
// unless told otherwise; with an API key every route but /health needs 'Authorization: Bearer <key>'.

import { randomInt, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ArgumentError, ServeError } from "../../errors.js";
import { invalidArgument, requireObject } from "../../io/format-args.js";
import type { Engine } from "../../serve/engine.js";
import { modelBody, modelsBody } from "../../serve/openai.js";
import { type CompletionHandle, CompletionService } from "../../serve/service.js";
import { adapterRoot, resolveAdapterPath } from "./adapter-dir.js";
import { handleCompletion } from "./completions.js";
import { answerClientError, checkApiKey, readJsonBody, sendError, sendJson, sendText } from "./http.js";

// Event-loop turns between two steps. A request whose bytes arrived during a step needs several turns to reach the
// scheduler (accept the connection, then read and parse it, then its body), so with one turn the requests of a
// burst joined one step each and every newcomer's prefill was a step of its own (test/serve/batching.test.ts: 6
// requests from another process took 6 prefill steps, 3 with 6 turns, 2 with 12). An idle turn costs microseconds
// against steps of tens of milliseconds.
const YIELD_ROUNDS = 12;

/** Options of startServer; sizes have defaults. */
export interface ServeOptions {
  engine: Engine;
  /** The name the base model answers to in `model`. */
  modelName: string;
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 8000 (vLLM's); 0 picks a free port. */
  port?: number;
  apiKey?: string;
  /** Folder that POST /v1/load_lora_adapter may load from; without it, runtime loading is off. */
  adapterDir?: string;
  /** Most sequences in one step (default 16). */
  maxBatch?: number;
  /** Most sequences waiting for the batch before 429 (default 64). */
  maxQueue?: number;
  /** Per-request limit in ms, queueing included (default 300 000). */
  requestTimeoutMs?: number;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /**
   * Milliseconds a request that finds the server idle waits before its first step, so that requests sent together
   * share it (default 5; 0: none). Requests that arrive while steps run join the next step without waiting.
   */
  batchWindowMs?: number;
}

/** A listening server. */
export interface RunningServer {
  url: string;
  port: number;
  service: CompletionService;
  /** Completion requests whose answer is not finished (whole or streamed). */
  openRequests(): number;
  /**
   * Graceful shutdown: refuses new requests (503), lets running completions finish for up to graceMs, cancels what
   * is left (clients get a 503 error), closes every connection. Called again while closing: cancels at once.
   */
  close(graceMs?: number): Promise<void>;
}

type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/** Starts the server and resolves once it listens. */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  requireObject("startServer", "options", options, "{ engine, modelName, … }");
  const engine = (options as { engine?: { adapters?: unknown; step?: unknown } }).engine;
  if (typeof engine?.adapters !== "function" || typeof engine.step !== "function")
    throw invalidArgument("startServer", "options.engine", engine, "an Engine (openModelEngine, ModelEngine)");
  if (typeof options.modelName !== "string" || options.modelName === "")
    throw invalidArgument("startServer", "options.modelName", options.modelName, "the base model's name (a string)");
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 2 ** 20;
  const batchWindowMs = options.batchWindowMs ?? 5;
  if (!(Number.isFinite(batchWindowMs) && batchWindowMs >= 0))
    throw new ArgumentError(
      "invalid_argument",
      `startServer: batchWindowMs is ${JSON.stringify(batchWindowMs)}, expected a number of milliseconds ≥ 0`,
      { name: "batchWindowMs", value: batchWindowMs },
    );
  if (options.engine.adapters().includes(options.modelName))
    throw new ArgumentError(
      "invalid_argument",
      `startServer: modelName "${options.modelName}" is also an adapter's name, expected a name of its own (the base model and each adapter are addressed by name)`,
      { name: "modelName" },
    );
  const adapterDir = options.adapterDir === undefined ? undefined : await adapterRoot(options.adapterDir);
  const service: CompletionService = new CompletionService(options.engine, {
    baseName: options.modelName,
    maxBatch: options.maxBatch ?? 16,
    maxWaiting: options.maxQueue ?? 64,
    drawSeed: () => randomInt(2 ** 31),
    yieldToEvents: async () => {
      for (let i = 0; i < YIELD_ROUNDS; i++) await new Promise((resolve) => setImmediate(resolve));
    },
    batchWindow: batchWindowMs > 0 ? () => new Promise((resolve) => setTimeout(resolve, batchWindowMs)) : undefined,
  });
  const started = Math.floor(Date.now() / 1000);
  const live = new Set<CompletionHandle>();
  let isClosing = false;
  const ctx = {
    service,
    newId: () => `cmpl-${randomUUID().replaceAll("-", "")}`,
    timeoutMs: options.requestTimeoutMs ?? 300_000,
    track: (h: CompletionHandle) => {
      live.add(h);
      return () => live.delete(h);
    },
  };

  const routes: Record<string, Record<string, Route>> = {
    "/health": { GET: (_req, res) => sendJson(res, 200, { status: isClosing ? "shutting_down" : "ok" }) },
    "/v1/models": { GET: (_req, res) => sendJson(res, 200, modelsBody(service.models(), started)) },
    "/v1/completions": {
      POST: async (req, res) => handleCompletion(req, res, await readJsonBody(req, maxBodyBytes, "completions"), ctx),
    },
    "/v1/load_lora_adapter": {
      POST: async (req, res) => {
        const body = asObject(await readJsonBody(req, maxBodyBytes, "load_lora_adapter"), "load_lora_adapter");
        const name = body.lora_name;
        service.checkAdapterName(name, "load_lora_adapter");
        await service.loadAdapter(name, await resolveAdapterPath(adapterDir, body.lora_path));
        sendText(res, 200, `Success: LoRA adapter '${name}' added successfully.`);
      },
    },
    "/v1/unload_lora_adapter": {
      POST: async (req, res) => {
        const body = asObject(await readJsonBody(req, maxBodyBytes, "unload_lora_adapter"), "unload_lora_adapter");
        service.unloadAdapter(body.lora_name);
        sendText(res, 200, `Success: LoRA adapter '${body.lora_name}' removed successfully.`);
      },
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const model = path.startsWith("/v1/models/") ? decodeURIComponent(path.slice("/v1/models/".length)) : null;
    if (path !== "/health") checkApiKey(req, options.apiKey);
    if (isClosing && path !== "/health") throw new ServeError("shutting_down", 503, "the server is shutting down");
    if (model !== null && req.method === "GET") {
      const entry = service.models().find((m) => m.id === model);
      if (!entry)
        throw new ServeError("model_not_found", 404, `models: model ${JSON.stringify(model)} does not exist`, "model");
      return sendJson(res, 200, modelBody(entry, started));
    }
    const methods = routes[path];
    if (!methods) throw new ServeError("route_not_found", 404, `${req.method} ${path}: no such route`);
    const route = methods[req.method ?? ""];
    if (!route)
      throw new ServeError(
        "method_not_allowed",
        405,
        `${req.method} ${path}: method not allowed, expected ${Object.keys(methods).join(" or ")}`,
      );
    await route(req, res);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => sendError(res, e));
  });
  server.requestTimeout = 60_000;
  server.on("clientError", answerClientError);
  const where = `${options.host ?? "127.0.0.1"}:${options.port ?? 8000}`;
  await new Promise<void>((resolve, reject) => {
    // a port in use, an address this machine does not have, a host name that does not resolve
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new ArgumentError("invalid_argument", `startServer: cannot listen on ${where} (${e.code ?? e.message})`, {
          name: "port",
          value: where,
        }),
      ),
    );
    server.listen(options.port ?? 8000, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | null = null;
  let endGrace = () => {};
  // a second call while closing ends the grace time at once
  const close = (graceMs = 30_000): Promise<void> => {
    if (closing) {
      endGrace();
      return closing;
    }
    isClosing = true;
    service.drain();
    closing = (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        endGrace = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([service.scheduler.idle(), grace]);
      clearTimeout(timer);
      const error = new ServeError("shutting_down", 503, "completions: cancelled because the server is shutting down");
      for (const h of [...live]) h.cancel(error);
      // let the cancelled answers flush, then drop whatever connection is left
      await new Promise((resolve) => setImmediate(resolve));
      server.closeAllConnections();
      await closed;
    })();
    return closing;
  };
  const openRequests = () => live.size;
  return { url: `http://${host}:${address.port}`, port: address.port, service, openRequests, close };
}

function asObject(body: unknown, op: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ServeError("invalid_request", 400, `${op}: the body is ${JSON.stringify(body)}, expected a JSON object`);
  return body as Record<string, unknown>;
}
