// "Nothing a client sends can crash the server": seeded random requests over real HTTP — every route and method,
// bodies built field by field from valid, wrong-typed and extreme values, broken bytes, odd headers and paths —
// then the server must still answer /health and give a normal request its solo completion. Every answer must be
// well formed: a 2xx with the route's body, or an OpenAI error body with a known code and a status that fits it;
// never a 500 (only an engine failure may answer 500) and never a dropped connection. FUZZ_SEED=N runs another seed
// (seeds 1–12 and 100–115 passed when this was written).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/node/serve/server.js";
import { GOLDEN } from "../model/golden.js";
import { rng } from "../peft/synthetic.js";
import { FakeEngine } from "./fake-engine.js";
import {
  ascii,
  goldenTextEngine,
  hasTokenizers,
  postJson,
  type RawResponse,
  raw,
  soloGreedy,
  startFake,
} from "./helpers.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

/**
 * The statuses each ServeError code comes with (src/node/serve, src/serve); any other LoraError answers 400 with its
 * own code. missing_file: 404 when lora_path names nothing, 400 when the folder lacks a file an adapter needs.
 */
const STATUS: Record<string, number[]> = {
  invalid_request: [400],
  context_length_exceeded: [400],
  duplicate_adapter: [400],
  unauthorized: [401],
  path_not_allowed: [403],
  model_not_found: [404],
  route_not_found: [404],
  missing_file: [404, 400],
  method_not_allowed: [405],
  request_timeout: [408],
  adapter_in_use: [409],
  payload_too_large: [413],
  queue_full: [429],
};

const tmp = mkdtempSync(join(tmpdir(), "lorakit-fuzz-"));
const root = join(tmp, "adapters");
mkdirSync(join(root, "empty"), { recursive: true });
writeFileSync(join(root, "file.txt"), "not a folder");

let server: RunningServer;

beforeAll(async () => {
  ({ server } = await startFake({
    engine: new FakeEngine({ adapters: ["a1", "a2"] }),
    adapterDir: root,
    maxBodyBytes: 64 * 1024,
  }));
});
afterAll(async () => {
  await server.close(0);
  rmSync(tmp, { recursive: true, force: true });
});

function fuzzer(seed: number, models: readonly string[]) {
  // seeded (mulberry32, in [-1, 1)), so a failure names the request that caused it and reproduces
  const next11 = rng(seed);
  const r = () => (next11() + 1) / 2;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  // any JSON value, shallow
  const anyValue = (depth = 0): unknown => {
    const k = int(0, depth > 1 ? 6 : 8);
    if (k === 0) return null;
    if (k === 1) return r() < 0.5;
    if (k === 2) return pick([0, -1, 1, 0.5, -0.5, 1e308, -1e308, 2 ** 53, 2 ** 31, -(2 ** 31), 1e-320, 3]);
    if (k === 3) return pick(["", "a", "base", "a1", "💥", "\u0000", "x".repeat(int(0, 3000)), "../..", "\ud800"]);
    if (k === 4) return int(-5, 200);
    if (k === 5) return r() * 4 - 1;
    if (k === 6) return pick(["</s>", "\n", "stop", "é"]);
    if (k === 7) return Array.from({ length: int(0, 6) }, () => anyValue(depth + 1));
    return Object.fromEntries(
      Array.from({ length: int(0, 3) }, () => [pick(["a", "model", "__proto__"]), anyValue(depth + 1)]),
    );
  };
  const prompt = (): unknown =>
    pick<() => unknown>([
      () => pick(["hello", "x", "", "a b c", "\u{1F600}".repeat(int(1, 40)), "q".repeat(int(400, 700))]),
      () => Array.from({ length: int(0, 12) }, () => int(-2, 130)),
      () => Array.from({ length: int(1, 4) }, () => Array.from({ length: int(0, 4) }, () => int(0, 127))),
      () => [pick(["x", "y"]), pick(["z", ""])],
      () => anyValue(),
    ])();
  // a valid request (each optional field present or not), then with probability 0.6 one or two fields replaced by
  // anything: single mutations reach each check on its own, where random bodies would all fail the first one
  const completion = (): Record<string, unknown> => {
    const body: Record<string, unknown> = { model: pick(models) };
    body.prompt = pick<() => unknown>([
      () => pick(["hello", "x", "a b c", "\u{1F600}".repeat(int(1, 4))]),
      () => Array.from({ length: int(1, 12) }, () => int(0, 127)),
    ])();
    const maybe = (name: string, value: () => unknown) => {
      if (r() < 0.5) body[name] = value();
    };
    maybe("max_tokens", () => int(1, 12));
    maybe("temperature", () => pick([0, 0.7, 1, 2]));
    maybe("top_p", () => pick([0.1, 0.5, 1]));
    maybe("seed", () => int(0, 1000));
    maybe("stop", () => pick(["a", ["b", "c"], [], "zz"]));
    maybe("stream", () => r() < 0.5);
    if (body.stream === true) maybe("stream_options", () => ({ include_usage: r() < 0.5 }));
    maybe("n", () => 1);
    maybe("user", () => "u");
    if (r() < 0.6) {
      const fields = ["model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "stream"];
      const more = ["stream_options", "n", "logprobs", "echo", "best_of", "suffix", "logit_bias", "zzz", "__proto__"];
      for (let k = int(1, 2); k > 0; k--) {
        const name = pick(r() < 0.75 ? fields : more);
        const wrong = pick<() => unknown>([
          () => anyValue(),
          () => pick([-1, 0, 1.5, 600, 1e9, Number.MAX_SAFE_INTEGER, null, "1", true, [], {}]),
          () => (name === "prompt" ? prompt() : anyValue()),
          () => (name === "stop" ? pick([Array(9).fill("z"), ["x".repeat(300)], [""], [1]]) : anyValue()),
        ])();
        if (r() < 0.15) delete body[name];
        else body[name] = wrong;
      }
    }
    return body;
  };
  const next = (): { method: string; path: string; body?: string | Buffer; headers: Record<string, string> } => {
    const headers: Record<string, string> = {};
    if (r() < 0.8)
      headers["content-type"] = pick(["application/json", "text/plain", "application/json; charset=utf-8"]);
    if (r() < 0.1) headers.authorization = pick(["Bearer x", "Basic abc", "", "Bearer"]);
    const kind = r();
    if (kind < 0.55) return { method: "POST", path: "/v1/completions", body: JSON.stringify(completion()), headers };
    if (kind < 0.65) {
      const body = pick<() => string | Buffer>([
        () => JSON.stringify(completion()).slice(0, int(0, 40)),
        () => Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0xc3]),
        () => "[".repeat(int(1, 20000)),
        () => `{"model":"base","prompt":"${"a".repeat(70 * 1024)}"}`,
        () => "{}",
        () => "null",
        () => JSON.stringify(anyValue()),
      ])();
      return { method: "POST", path: pick(["/v1/completions", "/v1/load_lora_adapter"]), body, headers };
    }
    if (kind < 0.8) {
      const load = r() < 0.6;
      const body: Record<string, unknown> = {};
      if (r() < 0.8) body.lora_name = pick(["n1", "n2", "a1", "base", "", "x".repeat(500)]);
      if (load && r() < 0.8)
        body.lora_path = pick(["empty", "file.txt", "../", "..", "/", "/etc", "nope", "\u0000", "empty/../../x", root]);
      if (r() < 0.2) body.lora_path = anyValue();
      const path = load ? "/v1/load_lora_adapter" : "/v1/unload_lora_adapter";
      return { method: "POST", path, body: JSON.stringify(body), headers };
    }
    const method = pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);
    const path = pick([
      "/health",
      "/v1/models",
      "/v1/completions",
      "/v1/completions/",
      "/v1/chat/completions",
      "//v1/models",
      "/v1/models?x=1",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/v1/../health",
      `/${"p".repeat(3000)}`,
      "/v1/load_lora_adapter",
    ]);
    return { method, path, body: method === "GET" ? undefined : "{}", headers };
  };
  return next;
}

// The answer is well formed for its request: a known error code with its status, or a 2xx.
function checkAnswer(what: string, a: RawResponse): void {
  expect(a.status, what).toBeGreaterThanOrEqual(200);
  if (a.status < 300) {
    const type = String(a.headers["content-type"]);
    if (type.startsWith("text/event-stream")) expect(a.text.endsWith("data: [DONE]\n\n"), what).toBe(true);
    else if (type.startsWith("application/json")) expect(() => JSON.parse(a.text), what).not.toThrow();
    else expect(a.text.startsWith("Success: "), what).toBe(true); // vLLM's plain-text adapter load and unload
    return;
  }
  expect(a.status, `${what}: ${a.text.slice(0, 200)}`).not.toBe(500);
  let body: ReturnType<RawResponse["json"]>;
  try {
    body = a.json();
  } catch {
    throw new Error(`${what}: status ${a.status} with a body that is not JSON: ${a.text.slice(0, 200)}`);
  }
  const { error } = body;
  expect(typeof error.message, what).toBe("string");
  expect(error.message.length, what).toBeGreaterThan(0);
  expect(typeof error.type, what).toBe("string");
  expect(error.code, what).not.toBe("internal_error");
  expect(STATUS[error.code] ?? [400], `${what}: ${error.code} with ${a.status}`).toContain(a.status);
}

// `rounds` rounds of 8 concurrent requests from fuzzer(seed, models) against url; returns the count of each status
async function fuzzRounds(url: string, models: readonly string[], rounds: number): Promise<Map<number, number>> {
  const next = fuzzer(SEED, models);
  const statuses = new Map<number, number>();
  for (let round = 0; round < rounds; round++) {
    const batch = Array.from({ length: 8 }, next);
    const answers = await Promise.all(batch.map((q) => raw(url, q.method, q.path, q.body, q.headers)));
    answers.forEach((a, i) => {
      const q = batch[i]!;
      const what = `round ${round} #${i}: ${q.method} ${q.path.slice(0, 60)} ${String(q.body ?? "").slice(0, 160)}`;
      checkAnswer(what, a);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    });
  }
  return statuses;
}

describe("random requests (seeded)", () => {
  it("400 random requests, 8 at a time: each answered well formed; the server serves normally after", async () => {
    const statuses = await fuzzRounds(server.url, ["base", "a1", "a2"], 50);
    // the mix reached successes and refusals alike (a fuzzer that only ever hit one path would prove little)
    expect(statuses.get(200) ?? 0).toBeGreaterThan(20);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(20);
    for (const s of [404, 405, 413]) expect(statuses.get(s) ?? 0, `status ${s}`).toBeGreaterThan(0);
    const health = await raw(server.url, "GET", "/health");
    expect(health.status).toBe(200);
    const c = await postJson(server.url, "/v1/completions", {
      model: "base", // an adapter may have been unloaded by a random request
      prompt: [104, 105],
      max_tokens: 6,
      temperature: 0,
    });
    expect(c.status).toBe(200);
    expect(JSON.parse(c.text).choices[0].token_ids).toEqual(await soloGreedy(null, ascii("hi"), 6));
    expect(server.openRequests()).toBe(0);
  });
});

// The same over the real runtime: the PEFT golden llama (vocab 256) with a byte-level tokenizer.json, so text
// prompts, multi-byte characters and stop strings go through the tokenizer and the model engine.
const realSuite = GOLDEN && hasTokenizers() ? describe : describe.skip;
realSuite("random requests to the real model runtime (seeded)", () => {
  it("160 random requests, 8 at a time: each answered well formed; then a request equals its solo run", async () => {
    const dir = join(tmp, "llama");
    mkdirSync(dir);
    const engine = await goldenTextEngine(dir);
    const { server: real } = await startFake({ engine: engine as never, modelName: "llama", adapterDir: root });
    try {
      const solo = await postJson(real.url, "/v1/completions", {
        model: "basic",
        prompt: "Hi é",
        max_tokens: 5,
        temperature: 0,
      });
      const statuses = await fuzzRounds(real.url, ["llama", "basic"], 20);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(10);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(10);
      const again = await postJson(real.url, "/v1/completions", {
        model: "basic",
        prompt: "Hi é",
        max_tokens: 5,
        temperature: 0,
      });
      expect([again.status, JSON.parse(again.text).choices]).toEqual([200, JSON.parse(solo.text).choices]);
      expect(real.openRequests()).toBe(0);
    } finally {
      await real.close(0);
    }
  });
});
