// Continuous batching of a burst: requests sent together by another process while the server is busy inside a
// step (as a real model blocks its thread for tens of ms) join the next step together, rather than one step each
// (a newcomer needs more than one event-loop turn between steps to reach the scheduler: accept, then read); and
// with a batch window, a burst that finds the server idle shares its first step.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/node/serve/server.js";
import type { StepEntry } from "../../src/serve/engine.js";
import { FakeEngine } from "./fake-engine.js";
import { ADAPTERS, startFake } from "./helpers.js";

// Blocks its thread for BUSY_MS in every step, like a model's forward.
class BusyEngine extends FakeEngine {
  override async step(entries: readonly StepEntry[]): Promise<Float32Array> {
    const end = performance.now() + BUSY_MS;
    while (performance.now() < end);
    return super.step(entries);
  }
}

const BUSY_MS = 100;
const BURST = 6;

// A client process: one warm-up request (so the burst below arrives on open connections as well as new ones),
// then BURST streamed requests at once; prints "done" when all are answered.
const CLIENT = `
const url = process.argv[1];
const ask = (i) => fetch(url + "/v1/completions", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "base", prompt: "burst request " + i, max_tokens: 6, temperature: 0, stream: i % 2 === 0 }) })
  .then((r) => r.text());
(async () => {
  await ask(99);
  process.stdout.write("warm\\n");
  await new Promise((r) => process.stdin.once("data", r));
  await Promise.all(Array.from({ length: ${BURST} }, (_, i) => ask(i)));
  process.stdout.write("done\\n");
})();
`;

let server: RunningServer;
let engine: FakeEngine;

beforeAll(async () => {
  engine = new BusyEngine({ adapters: ADAPTERS });
  ({ server } = await startFake({ engine, maxBatch: 16, batchWindowMs: 0 }));
});
afterAll(() => server.close(0));

// Runs the client against `url`; returns the prefill steps of its burst: the number of prompts of each.
async function burst(url: string, engine: FakeEngine): Promise<number[]> {
  const child = spawn(process.execPath, ["-e", CLIENT, url], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  const saw = (word: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (out.includes(word) ? resolve() : undefined);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        check();
      });
      child.once("exit", (code) => reject(new Error(`client exited ${code} before "${word}": ${out}`)));
      check();
    });
  await saw("warm");
  const before = engine.steps.length;
  child.stdin!.write("go\n");
  await saw("done");
  return engine.steps
    .slice(before)
    .map((s) => s.rows.filter((r) => r.tokens > 1).length)
    .filter((n) => n > 0);
}

describe("a burst of requests from another process, the server idle when it starts", () => {
  it("with a batch window of 300 ms: every prompt prefilled in the first step", async () => {
    const busy = new BusyEngine({ adapters: ADAPTERS });
    const { server: s } = await startFake({ engine: busy, maxBatch: 16, batchWindowMs: 300 });
    try {
      expect(await burst(s.url, busy)).toEqual([BURST]);
    } finally {
      await s.close(0);
    }
  }, 30_000);

  it(`without one (batchWindowMs 0): the first request's step starts alone, the other prompts join together (${BURST} prompts in at most three steps, not one step each)`, async () => {
    const prefills = await burst(server.url, engine);
    expect(prefills.reduce((a, b) => a + b, 0)).toBe(BURST);
    expect(prefills[0]).toBe(1);
    expect(prefills.length, `prompts per prefill step: ${prefills.join(", ")}`).toBeLessThanOrEqual(3);
  }, 30_000);

  it("refuses a batch window that is not a number of milliseconds ≥ 0", async () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = await startFake({ batchWindowMs: bad }).then(
        () => null,
        (err: unknown) => err as { code: string; message: string },
      );
      expect(e?.code).toBe("invalid_argument");
      expect(e?.message).toBe(
        `startServer: batchWindowMs is ${JSON.stringify(bad)}, expected a number of milliseconds ≥ 0`,
      );
    }
  });
});
