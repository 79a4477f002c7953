// POST /v1/completions bodies (OpenAI's legacy completions API, with vLLM's top_k) → validated parameters.
// Every problem is a ServeError "invalid_request" (HTTP 400) naming the field (`param`), its value and what is
// accepted. Fields OpenAI defines that lorakit does not implement are accepted only at their no-op values; unknown
// fields are refused so that a typo does not silently change nothing.

import { ServeError } from "../errors.js";

/** One prompt as sent: text (needs a tokenizer) or token ids. */
export type PromptInput = { text: string } | { ids: number[] };

/** How the next token is drawn from the logits. temperature 0 = greedy; topK 0 = no top-k cut. */
export interface SamplingParams {
  temperature: number;
  topP: number;
  topK: number;
}

/** A validated completion request. */
export interface CompletionRequest {
  model: string;
  /** One or more prompts; each becomes a choice with its own index. */
  prompts: PromptInput[];
  maxTokens: number;
  sampling: SamplingParams;
  /** null: the server draws one per request. */
  seed: number | null;
  stop: string[];
  stream: boolean;
  /** stream_options.include_usage: one last chunk with the token counts. */
  includeUsage: boolean;
}

/** OpenAI's defaults for the legacy completions endpoint. */
export const DEFAULT_MAX_TOKENS = 16;
export const MAX_STOP_STRINGS = 4;
export const MAX_PROMPTS = 64;

// Fields accepted only at values that change nothing (null, or the value given here).
const NO_OP_FIELDS: Record<string, unknown[]> = {
  n: [1],
  best_of: [1],
  echo: [false],
  logprobs: [],
  suffix: [],
  presence_penalty: [0],
  frequency_penalty: [0],
};
const KNOWN_FIELDS = new Set([
  "model",
  "prompt",
  "max_tokens",
  "temperature",
  "top_p",
  "top_k",
  "seed",
  "stop",
  "stream",
  "stream_options",
  "user",
  "logit_bias",
  ...Object.keys(NO_OP_FIELDS),
]);

function bad(param: string, message: string): ServeError {
  return new ServeError("invalid_request", 400, `completions: ${message}`, param);
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isIdList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number");
}

function checkIds(ids: number[], where: string): number[] {
  const i = ids.findIndex((x) => !Number.isSafeInteger(x) || x < 0);
  if (i >= 0) throw bad("prompt", `${where}[${i}] is ${show(ids[i])}, expected a token id (an integer ≥ 0)`);
  return ids;
}

function parsePrompt(v: unknown): PromptInput[] {
  const hint = "a string, an array of strings, an array of token ids or an array of such arrays";
  if (typeof v === "string") return [{ text: v }];
  if (!Array.isArray(v) || v.length === 0) throw bad("prompt", `prompt is ${show(v)}, expected ${hint}`);
  if (isIdList(v)) return [{ ids: checkIds(v, "prompt") }];
  if (v.length > MAX_PROMPTS) throw bad("prompt", `prompt has ${v.length} prompts, expected at most ${MAX_PROMPTS}`);
  return v.map((p, i) => {
    if (typeof p === "string") return { text: p };
    if (isIdList(p)) return { ids: checkIds(p, `prompt[${i}]`) };
    throw bad("prompt", `prompt[${i}] is ${show(p)}, expected a string or a non-empty array of token ids`);
  });
}

// A number in [lo, hi], or (lo, hi] when isOpenBelow.
function optNumber(body: Record<string, unknown>, key: string, fallback: number, range: [number, number, boolean]) {
  const [lo, hi, isOpenBelow] = range;
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || (isOpenBelow && v === lo) || v > hi)
    throw bad(key, `${key} is ${show(v)}, expected a number in ${isOpenBelow ? "(" : "["}${lo}, ${hi}]`);
  return v;
}

function optInteger(body: Record<string, unknown>, key: string, fallback: number, lo: number, hi: number): number {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi)
    throw bad(key, `${key} is ${show(v)}, expected an integer in [${lo}, ${hi}]`);
  return v;
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > MAX_STOP_STRINGS || !list.every((s) => typeof s === "string" && s !== ""))
    throw bad("stop", `stop is ${show(v)}, expected a non-empty string or up to ${MAX_STOP_STRINGS} of them`);
  return list;
}

function checkFields(body: Record<string, unknown>): void {
  for (const key of Object.keys(body)) {
    if (!KNOWN_FIELDS.has(key)) throw bad(key, `unknown field ${show(key)} (not part of the completions API)`);
    const allowed = NO_OP_FIELDS[key];
    const v = body[key];
    if (allowed && v !== null && v !== undefined && !allowed.includes(v))
      throw bad(key, `${key} ${show(v)} is not supported, expected ${[null, ...allowed].map(show).join(" or ")}`);
  }
  const bias = body.logit_bias;
  if (bias !== undefined && bias !== null && (typeof bias !== "object" || Object.keys(bias).length > 0))
    throw bad("logit_bias", `logit_bias ${show(bias)} is not supported, expected null or {}`);
}

/**
 * Validates a parsed JSON body of POST /v1/completions.
 * @throws {ServeError} "invalid_request" (400) naming the first field at fault
 */
export function parseCompletionRequest(body: unknown): CompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ServeError("invalid_request", 400, `completions: the body is ${show(body)}, expected a JSON object`);
  const b = body as Record<string, unknown>;
  checkFields(b);
  if (typeof b.model !== "string" || b.model === "")
    throw bad("model", `model is ${show(b.model)}, expected the name of the base model or of an adapter`);
  if (b.prompt === undefined) throw bad("prompt", "prompt is missing");
  const stream = b.stream ?? false;
  if (typeof stream !== "boolean") throw bad("stream", `stream is ${show(stream)}, expected true or false`);
  const options = b.stream_options ?? null;
  if (options !== null && (typeof options !== "object" || !stream || Array.isArray(options)))
    throw bad("stream_options", `stream_options is ${show(options)}, expected an object, and only with stream: true`);
  const includeUsage = (options as { include_usage?: unknown } | null)?.include_usage ?? false;
  if (typeof includeUsage !== "boolean")
    throw bad("stream_options", `stream_options.include_usage is ${show(includeUsage)}, expected true or false`);
  const seed = b.seed ?? null;
  if (seed !== null && !Number.isSafeInteger(seed))
    throw bad("seed", `seed is ${show(seed)}, expected an integer or null`);
  return {
    model: b.model,
    prompts: parsePrompt(b.prompt),
    maxTokens: optInteger(b, "max_tokens", DEFAULT_MAX_TOKENS, 1, Number.MAX_SAFE_INTEGER),
    sampling: {
      temperature: optNumber(b, "temperature", 1, [0, 2, false]),
      topP: optNumber(b, "top_p", 1, [0, 1, true]),
      topK: Math.max(0, optInteger(b, "top_k", 0, -1, Number.MAX_SAFE_INTEGER)),
    },
    seed: seed as number | null,
    stop: parseStop(b.stop),
    stream,
    includeUsage,
  };
}
