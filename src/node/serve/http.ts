// HTTP plumbing for the server: bounded JSON bodies, OpenAI error responses, the API key check, SSE framing.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ServeError } from "../../errors.js";
import { errorBody } from "../../serve/openai.js";

/** Reads the request body as JSON, refusing more than maxBytes (413) and text that is not JSON (400). */
export async function readJsonBody(req: IncomingMessage, maxBytes: number, op: string): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  const tooLarge = (n: number) =>
    new ServeError("payload_too_large", 413, `${op}: the body has ${n} bytes or more, expected at most ${maxBytes}`);
  if (declared > maxBytes) throw tooLarge(declared);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(size);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new ServeError("invalid_request", 400, `${op}: the body is empty, expected JSON`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ServeError("invalid_request", 400, `${op}: the body is not valid JSON (${(e as Error).message})`);
  }
}

/** Sends a JSON body with `status`. */
export function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Sends a plain-text body (vLLM answers adapter loads and unloads in text). */
export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Answers bytes that are not a request Node's HTTP parser accepts (its 'clientError': garbage, a body without
 * framing, headers over Node's limit, a request that took over server.requestTimeout to arrive) with an OpenAI error
 * body instead of Node's empty one, then closes the connection: after a parse error its bytes cannot be trusted.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code, what]: [number, string, "request_timeout" | "invalid_request", string] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "Request Timeout", "request_timeout", "the request did not arrive in time"]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [
            431,
            "Request Header Fields Too Large",
            "invalid_request",
            "the request's headers are over Node's size limit",
          ]
        : [
            400,
            "Bad Request",
            "invalid_request",
            `the bytes are not a valid HTTP request (${err.code ?? err.message})`,
          ];
  const text = JSON.stringify(errorBody(new ServeError(code, status, `HTTP: ${what}`)).body);
  const head = `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}`;
  socket.end(`${head}\r\nconnection: close\r\n\r\n${text}`);
}

/** Sends `e` as an OpenAI error body, with Retry-After on 429 and WWW-Authenticate on 401. */
export function sendError(res: ServerResponse, e: unknown, retryAfterSeconds = 1): void {
  const { status, body } = errorBody(e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = {};
  if (status === 429) headers["retry-after"] = String(retryAfterSeconds);
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="lorakit"';
  // an oversize body is left unread: close the connection rather than drain it
  if (status === 413) headers.connection = "close";
  sendJson(res, status, body, headers);
}

/** Compares the Authorization header with "Bearer <key>" in constant time (hashes of equal length). */
export function checkApiKey(req: IncomingMessage, apiKey: string | undefined): void {
  if (apiKey === undefined) return;
  const given = req.headers.authorization ?? "";
  const digest = (s: string) => createHash("sha256").update(s).digest();
  if (!timingSafeEqual(digest(given), digest(`Bearer ${apiKey}`)))
    throw new ServeError(
      "unauthorized",
      401,
      given === ""
        ? "the request has no Authorization header, expected 'Authorization: Bearer <api key>'"
        : "the API key in the Authorization header is not the server's (expected 'Authorization: Bearer <api key>')",
    );
}

/** Starts a server-sent event stream. */
export function startEvents(res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  res.flushHeaders();
}

/** Writes one SSE event with a JSON payload (or the literal [DONE]). */
export function writeEvent(res: ServerResponse, data: object | "[DONE]"): void {
  if (res.writableEnded || res.destroyed) return;
  res.write(`data: ${data === "[DONE]" ? data : JSON.stringify(data)}\n\n`);
}
