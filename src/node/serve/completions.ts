// POST /v1/completions over HTTP: one JSON answer when every choice is done, or server-sent events (one chunk per
// generated token, a chunk with each choice's finish_reason, an optional usage chunk, then [DONE]). A client that
// closes the connection cancels its sequences at once; the per-request timeout cancels them with 408.

import type { IncomingMessage, ServerResponse } from "node:http";
import { ServeError } from "../../errors.js";
import { chunkBody, completionBody, errorBody, usageChunkBody } from "../../serve/openai.js";
import type { SequenceResult } from "../../serve/scheduler.js";
import type { CompletionHandle, CompletionService, CompletionSink } from "../../serve/service.js";
import { sendError, sendJson, startEvents, writeEvent } from "./http.js";

/** What the completions handler needs from the server. */
export interface CompletionContext {
  service: CompletionService;
  newId: () => string;
  /** Milliseconds from arrival to the last token, queueing included. */
  timeoutMs: number;
  /** Registers a live request so that shutdown can wait for it; returns the function that unregisters it. */
  track: (handle: CompletionHandle) => () => void;
}

/** Answers one completions request whose body has been read and parsed. */
export function handleCompletion(
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  ctx: CompletionContext,
): void {
  const meta = { id: ctx.newId(), created: Math.floor(Date.now() / 1000), model: "" };
  const results: SequenceResult[] = [];
  let isStream = false;
  let isFinished = false;
  let untrack = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finish = () => {
    isFinished = true;
    clearTimeout(timer);
    untrack();
  };
  const sink: CompletionSink = {
    onToken(index, id, text) {
      if (isStream) writeEvent(res, chunkBody(meta, index, text, [id], null));
    },
    onChoiceFinish(index, result) {
      results[index] = result;
      if (isStream) writeEvent(res, chunkBody(meta, index, result.tail, [], result.reason));
    },
    onDone(usage) {
      finish();
      if (!isStream) return sendJson(res, 200, completionBody(meta, results, usage));
      if (handle.request.includeUsage) writeEvent(res, usageChunkBody(meta, usage));
      writeEvent(res, "[DONE]");
      res.end();
    },
    onError(error) {
      finish();
      if (!isStream) return sendError(res, error);
      writeEvent(res, errorBody(error).body);
      writeEvent(res, "[DONE]");
      res.end();
    },
  };
  const handle = ctx.service.complete(body, sink);
  meta.model = handle.request.model;
  isStream = handle.request.stream;
  untrack = ctx.track(handle);
  timer = setTimeout(() => {
    handle.cancel(
      new ServeError(
        "request_timeout",
        408,
        `completions: the request ran for ${ctx.timeoutMs} ms (queueing included), the server's limit; shorten max_tokens or retry later`,
      ),
    );
  }, ctx.timeoutMs);
  // the client went away before the answer was complete: free its places in the batch now
  res.on("close", () => {
    if (!isFinished) {
      finish();
      handle.cancel(null);
    }
  });
  req.on("error", () => handle.cancel(null));
  if (isStream) startEvents(res);
}
