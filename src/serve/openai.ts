// OpenAI-shaped JSON bodies: completions (whole and streamed chunks), the model list, and errors
// ({error: {message, type, param, code}}, the shape the official clients parse into their error classes).
// Each choice also carries `token_ids`, the generated ids (vLLM's name for them), so that clients of a model
// without a tokenizer get their tokens.

import { LoraError, ServeError } from "../errors.js";
import type { SequenceResult } from "./scheduler.js";
import type { ModelEntry, Usage } from "./service.js";

/** OpenAI's error `type` for an HTTP status. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500 || status === 408) return "server_error";
  return "invalid_request_error";
}

/** The OpenAI error body and HTTP status for any thrown value (non-lorakit errors become 500s). */
export function errorBody(e: unknown): { status: number; body: object } {
  const status = e instanceof ServeError ? e.status : e instanceof LoraError ? 400 : 500;
  const code = e instanceof LoraError ? e.code : "internal_error";
  const message = e instanceof Error ? e.message : String(e);
  const param = e instanceof ServeError ? e.param : null;
  return { status, body: { error: { message, type: errorType(status), param, code } } };
}

/** Fields every completion object and chunk share. */
export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

/** The non-streamed response of POST /v1/completions. */
export function completionBody(meta: CompletionMeta, results: SequenceResult[], usage: Usage): object {
  return {
    ...head(meta),
    choices: results.map((r, index) => ({
      index,
      text: r.text,
      logprobs: null,
      finish_reason: r.reason,
      token_ids: r.ids,
    })),
    usage,
  };
}

/** One streamed chunk: a choice's new text (and token), or its finish reason. */
export function chunkBody(
  meta: CompletionMeta,
  index: number,
  text: string,
  tokenIds: readonly number[],
  finishReason: string | null,
): object {
  return {
    ...head(meta),
    choices: [{ index, text, logprobs: null, finish_reason: finishReason, token_ids: tokenIds }],
  };
}

/** The last streamed chunk with stream_options.include_usage: no choices, the token counts. */
export function usageChunkBody(meta: CompletionMeta, usage: Usage): object {
  return { ...head(meta), choices: [], usage };
}

/** GET /v1/models; `created` is when the server started (adapters: when attached is not tracked). */
export function modelsBody(models: ModelEntry[], created: number): object {
  return { object: "list", data: models.map((m) => modelBody(m, created)) };
}

/** GET /v1/models/{id}. */
export function modelBody(m: ModelEntry, created: number): object {
  return { id: m.id, object: "model", created, owned_by: "lorakit", root: m.parent ?? m.id, parent: m.parent };
}

function head(meta: CompletionMeta): object {
  return { id: meta.id, object: "text_completion", created: meta.created, model: meta.model };
}
