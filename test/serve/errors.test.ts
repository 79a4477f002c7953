// What a client can get wrong, and what goes wrong under load: every ServeError code over real HTTP, with OpenAI's
// error body ({error: {message, type, param, code}}) and the right status; the official client's error classes.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Duplex, Writable } from "node:stream";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { answerClientError } from "../../src/node/serve/http.js";
import type { RunningServer } from "../../src/node/serve/server.js";
import { FakeEngine } from "./fake-engine.js";
import { ascii, postJson, raw, soloGreedy, startFake, until } from "./helpers.js";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.close(0);
  server = null;
});

async function fresh(options: Parameters<typeof startFake>[0] = {}) {
  const s = await startFake(options);
  server = s.server;
  return s;
}

const C = "/v1/completions";

describe("malformed and refused requests", () => {
  // [what, body, status, code, param, message start]
  const CASES: [string, string, number, string, string | null, string][] = [
    ["not JSON", "{model:", 400, "invalid_request", null, "completions: the body is not valid JSON ("],
    ["empty body", "", 400, "invalid_request", null, "completions: the body is empty, expected JSON"],
    ["a JSON string", '"hi"', 400, "invalid_request", null, 'completions: the body is "hi", expected a JSON object'],
    [
      "bad temperature",
      '{"model":"base","prompt":"x","temperature":-1}',
      400,
      "invalid_request",
      "temperature",
      "completions: temperature is -1",
    ],
    [
      "unknown model",
      '{"model":"gpt-4","prompt":"x"}',
      404,
      "model_not_found",
      "model",
      'completions: model "gpt-4" does not exist, expected "base" or an adapter (loaded: "a1"',
    ],
    [
      "token id out of vocabulary",
      '{"model":"base","prompt":[1,128]}',
      400,
      "invalid_request",
      "prompt",
      "completions: prompt[1] is token 128, expected an id below the vocabulary size 128",
    ],
    [
      "empty text prompt",
      '{"model":"base","prompt":""}',
      400,
      "invalid_request",
      "prompt",
      "completions: prompt has no tokens, expected at least one",
    ],
    [
      "prompt over the context",
      JSON.stringify({ model: "base", prompt: "x".repeat(600) }),
      400,
      "context_length_exceeded",
      "prompt",
      "completions: prompt has 600 tokens and max_tokens is 16, 616 in all, expected at most the model's context length 512",
    ],
    [
      "max_tokens over the context",
      '{"model":"a1","prompt":"xy","max_tokens":511}',
      400,
      "context_length_exceeded",
      "max_tokens",
      "completions: prompt has 2 tokens and max_tokens is 511, 513 in all",
    ],
  ];

  it.each(CASES)("%s", async (_what, body, status, code, param, message) => {
    const { server: s } = await fresh();
    const r = await raw(s.url, "POST", C, body, { "content-type": "application/json" });
    expect(r.status).toBe(status);
    expect(r.headers["content-type"]).toBe("application/json");
    const { error } = r.json();
    expect(error.code).toBe(code);
    expect(error.param).toBe(param);
    expect(error.type).toBe("invalid_request_error");
    expect(error.message.startsWith(message)).toBe(true);
  });

  it("refuses a body over the limit with 413 payload_too_large", async () => {
    const { server: s } = await fresh({ maxBodyBytes: 1000 });
    const r = await postJson(s.url, C, { model: "base", prompt: "y".repeat(2000) });
    expect(r.status).toBe(413);
    expect(r.json().error).toMatchObject({
      code: "payload_too_large",
      message: "completions: the body has 2028 bytes or more, expected at most 1000",
    });
  });

  it("bytes that are not HTTP get a 400 invalid_request body (not Node's empty answer); too-large headers 431", async () => {
    const { server: s } = await fresh();
    // what Node's own client sends for a DELETE with a body: the body unframed, read as the next request's start
    const unframed = await socketAnswer(s.port, "DELETE /health HTTP/1.1\r\nhost: x\r\n\r\n{}");
    expect(unframed).toContain("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json");
    const garbage = await socketAnswer(s.port, "NOT HTTP AT ALL\r\n\r\n");
    expect(garbage.startsWith("HTTP/1.1 400 Bad Request\r\n")).toBe(true);
    const body = JSON.parse(garbage.slice(garbage.indexOf("\r\n\r\n") + 4));
    expect(body.error).toMatchObject({ code: "invalid_request", type: "invalid_request_error", param: null });
    expect(body.error.message.startsWith("HTTP: the bytes are not a valid HTTP request (HPE_")).toBe(true);
    const big = await socketAnswer(s.port, `GET /health HTTP/1.1\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`);
    expect(big.startsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n")).toBe(true);
    expect(JSON.parse(big.slice(big.indexOf("\r\n\r\n") + 4)).error).toMatchObject({
      code: "invalid_request",
      message: "HTTP: the request's headers are over Node's size limit",
    });
    expect((await raw(s.url, "GET", "/health")).status).toBe(200);
  });

  it("a request that arrives too slowly gets 408 request_timeout; a reset connection gets nothing", () => {
    // Node reports these through 'clientError' after server.requestTimeout (60 s): the handler is called directly
    const written: string[] = [];
    const sink = () =>
      new Writable({
        write(chunk: Buffer, _enc, done) {
          written.push(chunk.toString("utf8"));
          done();
        },
      });
    const slow = Object.assign(new Error("timed out"), { code: "ERR_HTTP_REQUEST_TIMEOUT" });
    answerClientError(slow, sink() as unknown as Duplex);
    const text = written.join("");
    expect(text.startsWith("HTTP/1.1 408 Request Timeout\r\n")).toBe(true);
    expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)).error).toEqual({
      message: "HTTP: the request did not arrive in time",
      type: "server_error",
      param: null,
      code: "request_timeout",
    });
    written.length = 0;
    const reset = sink();
    answerClientError(Object.assign(new Error("reset"), { code: "ECONNRESET" }), reset as unknown as Duplex);
    expect([written.length, reset.destroyed]).toEqual([0, true]);
  });

  it("unknown routes get 404 route_not_found, wrong methods 405 method_not_allowed", async () => {
    const { server: s } = await fresh();
    const a = await raw(s.url, "GET", "/v1/chat/completions");
    expect([a.status, a.json().error.code, a.json().error.message]).toEqual([
      404,
      "route_not_found",
      "GET /v1/chat/completions: no such route",
    ]);
    const b = await raw(s.url, "GET", C);
    expect([b.status, b.json().error.code, b.json().error.message]).toEqual([
      405,
      "method_not_allowed",
      "GET /v1/completions: method not allowed, expected POST",
    ]);
    const c = await raw(s.url, "GET", "/v1/models/nope");
    expect([c.status, c.json().error.code]).toEqual([404, "model_not_found"]);
  });

  it("a model without a tokenizer refuses text prompts and stop strings, and answers token ids", async () => {
    const { server: s, client } = await fresh({ engine: new FakeEngine({ hasTokenizer: false }) });
    const a = await postJson(s.url, C, { model: "base", prompt: "text" });
    expect(a.status).toBe(400);
    expect(a.json().error.message).toBe(
      "completions: prompt is text but the model has no tokenizer (send token ids; stop on token ids is not available)",
    );
    const b = await postJson(s.url, C, { model: "base", prompt: [1, 2], stop: "x" });
    expect([b.json().error.param, b.json().error.message.startsWith("completions: stop strings were given")]).toEqual([
      "stop",
      true,
    ]);
    const r = await client.completions.create({ model: "base", prompt: [72, 105], max_tokens: 6, temperature: 0 });
    expect(r.choices[0]!.text).toBe("");
    expect((r.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(
      await soloGreedy(null, [72, 105], 6),
    );
  });
});

describe("start-up", () => {
  it("refuses a base model name that an adapter also has (invalid_argument)", async () => {
    await expect(startFake({ modelName: "a3" })).rejects.toMatchObject({
      code: "invalid_argument",
      message:
        'startServer: modelName "a3" is also an adapter\'s name, expected a name of its own (the base model and each adapter are addressed by name)',
    });
  });

  it("refuses an adapter folder that does not exist or is a file (missing_file), at start-up", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lorakit-serve-start-"));
    writeFileSync(join(dir, "file.txt"), "x");
    await expect(startFake({ adapterDir: join(dir, "nope") })).rejects.toMatchObject({
      code: "missing_file",
      message: `startServer: adapterDir ${join(dir, "nope")} does not exist (ENOENT)`,
    });
    await expect(startFake({ adapterDir: join(dir, "file.txt") })).rejects.toMatchObject({
      code: "missing_file",
      message: `startServer: adapterDir ${join(dir, "file.txt")} is not a folder`,
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it("a port in use or an address it cannot bind is invalid_argument naming host and port", async () => {
    const { server: first } = await fresh();
    await expect(startFake({ port: first.port })).rejects.toMatchObject({
      code: "invalid_argument",
      message: `startServer: cannot listen on 127.0.0.1:${first.port} (EADDRINUSE)`,
    });
    // TEST-NET-1 (RFC 5737): an address no machine here has, refused at once without a name lookup
    await expect(startFake({ host: "192.0.2.1", port: 0 })).rejects.toMatchObject({
      code: "invalid_argument",
      message: "startServer: cannot listen on 192.0.2.1:0 (EADDRNOTAVAIL)",
    });
  });
});

describe("API key", () => {
  it("401 unauthorized without the key or with a wrong one; /health stays open", async () => {
    const { server: s, client } = await fresh({ apiKey: "sekret" });
    const none = await postJson(s.url, C, { model: "base", prompt: "x" });
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="lorakit"');
    expect(none.json().error).toMatchObject({ code: "unauthorized", type: "authentication_error" });
    expect(none.json().error.message).toBe(
      "the request has no Authorization header, expected 'Authorization: Bearer <api key>'",
    );
    const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "guess", maxRetries: 0 });
    const e = await wrong.models.list().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((e as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("unauthorized");
    expect((await raw(s.url, "GET", "/health")).status).toBe(200);
    const ok = await client.completions.create({ model: "base", prompt: "x", max_tokens: 2 });
    expect(ok.choices).toHaveLength(1);
  });
});

describe("under load", () => {
  it("a full queue answers 429 queue_full with Retry-After; the held requests then finish", async () => {
    const { server: s, engine, client } = await fresh({ maxBatch: 1, maxQueue: 1 });
    const release = engine.hold();
    const first = client.completions.create({ model: "a1", prompt: "one", max_tokens: 3, temperature: 0 });
    const second = client.completions.create({ model: "a2", prompt: "two", max_tokens: 3, temperature: 0 });
    await until(() => s.service.stats().running === 1 && s.service.stats().waiting === 1);
    const third = await postJson(s.url, C, { model: "a3", prompt: "three" });
    expect(third.status).toBe(429);
    expect(third.headers["retry-after"]).toBe("1");
    expect(third.json().error).toMatchObject({ code: "queue_full", type: "rate_limit_error" });
    expect(third.json().error.message).toBe(
      "completions: 1 sequences are running and 1 waiting, 1 more do not fit (limit 1 running + 1 waiting); try again shortly",
    );
    const e = await client.completions.create({ model: "a3", prompt: "three" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect((a.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(
      await soloGreedy("a1", ascii("one"), 3),
    );
    expect(b.choices).toHaveLength(1);
  });

  it("a client that disconnects frees its place at once; its sequence never runs again", async () => {
    const { server: s, engine, client } = await fresh({ maxBatch: 1, maxQueue: 4 });
    const release = engine.hold();
    const abort = new AbortController();
    const gone = client.completions
      .create({ model: "a1", prompt: "leaving", max_tokens: 50, stream: true }, { signal: abort.signal })
      .then(async (stream) => {
        for await (const _ of stream);
      })
      .catch((x: unknown) => x);
    await until(() => s.service.stats().running === 1);
    const waiting = client.completions.create({ model: "a2", prompt: "stays", max_tokens: 4, temperature: 0 });
    await until(() => s.service.stats().waiting === 1);
    expect(s.service.stats().adapterUses).toEqual({ a1: 1, a2: 1 });
    abort.abort();
    await until(() => s.service.stats().running === 0);
    // freed while the step that holds it is still in flight
    expect(s.service.stats()).toMatchObject({ waiting: 1, adapterUses: { a2: 1 } });
    const stepsBefore = engine.steps.length;
    release();
    const r = await waiting;
    await gone;
    const later = engine.steps.slice(stepsBefore + 1).flatMap((st) => st.rows.map((row) => row.adapter));
    expect(later.every((a) => a === "a2")).toBe(true);
    expect((r.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(
      await soloGreedy("a2", ascii("stays"), 4),
    );
    expect(engine.live.size).toBe(0);
    expect(s.service.stats()).toMatchObject({ running: 0, waiting: 0, cached: 0, adapterUses: {} });
    expect(s.openRequests()).toBe(0);
  });

  it("the per-request timeout answers 408 request_timeout, in whole and streamed answers", async () => {
    const { server: s, engine, client } = await fresh({ requestTimeoutMs: 30 });
    const release = engine.hold();
    const r = await postJson(s.url, C, { model: "a1", prompt: "slow" });
    expect(r.status).toBe(408);
    expect(r.json().error).toMatchObject({ code: "request_timeout", type: "server_error" });
    expect(r.json().error.message).toBe(
      "completions: the request ran for 30 ms (queueing included), the server's limit; shorten max_tokens or retry later",
    );
    const stream = await client.completions.create({ model: "a1", prompt: "slow", stream: true });
    const e = await (async () => {
      for await (const _ of stream);
    })().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.APIError);
    expect((e as InstanceType<typeof OpenAI.APIError>).code).toBe("request_timeout");
    release();
    await until(() => s.service.stats().running === 0 && engine.live.size === 0);
  });

  it("an engine failure answers 500 engine_failed to the requests of that step; the server goes on", async () => {
    const { server: s, engine, client } = await fresh();
    engine.failNext = "out of memory";
    const r = await postJson(s.url, C, { model: "a1", prompt: "boom" });
    expect(r.status).toBe(500);
    expect(r.json().error).toMatchObject({ code: "engine_failed", type: "server_error" });
    expect(r.json().error.message).toBe("completions: the model failed on a step of 1 sequences: out of memory");
    const ok = await client.completions.create({ model: "a1", prompt: "boom", max_tokens: 3, temperature: 0 });
    expect((ok.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(
      await soloGreedy("a1", ascii("boom"), 3),
    );
    expect(engine.live.size).toBe(0);
  });
});

describe("graceful shutdown", () => {
  it("lets running requests finish within the grace time and refuses new ones with 503", async () => {
    const { server: s, engine, client } = await fresh();
    const release = engine.hold();
    const running = client.completions.create({ model: "a1", prompt: "finish me", max_tokens: 5, temperature: 0 });
    await until(() => s.service.stats().running === 1);
    const closing = s.close(60_000);
    expect(() => s.service.complete({ model: "a1", prompt: "late" }, null as never)).toThrow(
      expect.objectContaining({
        code: "shutting_down",
        status: 503,
        message: "completions: the server is shutting down",
      }),
    );
    release();
    const r = await running;
    expect((r.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(
      await soloGreedy("a1", ascii("finish me"), 5),
    );
    await closing;
    server = null;
    await expect(raw(s.url, "GET", "/health")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("a second close (a second signal) during the grace time cancels at once", async () => {
    const { server: s, engine } = await fresh();
    engine.hold();
    const pending = postJson(s.url, C, { model: "a2", prompt: "never", max_tokens: 5 });
    await until(() => s.service.stats().running === 1);
    const first = s.close(600_000);
    await s.close(600_000);
    await first;
    server = null;
    const r = await pending;
    expect([r.status, r.json().error.code]).toEqual([503, "shutting_down"]);
  });

  it("cancels what is left after the grace time with 503 shutting_down", async () => {
    const { server: s, engine } = await fresh();
    engine.hold();
    const pending = postJson(s.url, C, { model: "a1", prompt: "never", max_tokens: 5 });
    await until(() => s.service.stats().running === 1);
    await s.close(10);
    server = null;
    const r = await pending;
    expect(r.status).toBe(503);
    expect(r.json().error).toMatchObject({
      code: "shutting_down",
      message: "completions: cancelled because the server is shutting down",
    });
    expect(s.service.stats()).toMatchObject({ running: 0, waiting: 0, adapterUses: {} });
  });
});

// Writes raw bytes on a fresh connection and resolves with everything the server sent until it closed.
function socketAnswer(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}
