// `lorakit serve` as a user runs it (dist/cli/main.js; `npm test` builds first): usage errors, then the golden llama
// base served on a free loopback port, one completion, and a graceful stop on SIGTERM (a second signal calls the
// same close() again, which test/serve/errors.test.ts checks in-process).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GOLDEN, goldenFile, inputIds } from "../model/golden.js";
import { postJson } from "../serve/helpers.js";

const BIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

function lorakit(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the server and resolves with its URL once it logs that it listens. */
function serve(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string; log: () => string }> {
  const child = spawn(process.execPath, [BIN, "serve", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let log = "";
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/[^ ]+)/.exec(log);
      if (m) resolve({ child, url: m[1]!, log: () => log });
    });
    child.on("exit", (code) => reject(new Error(`exited with ${code} before listening: ${log}`)));
  });
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => child.on("exit", (code) => r(code)));

describe("lorakit serve: usage", () => {
  it("--help, a missing --model, a bad --adapter and a bad number are usage errors (exit 2)", () => {
    const help = lorakit(["serve", "--help"]);
    expect([help.code, help.stdout.startsWith("Usage: lorakit serve --model DIR")]).toEqual([0, true]);
    expect(lorakit(["serve"]).stderr).toBe("lorakit serve: --model DIR is required (see 'lorakit serve --help')\n");
    const a = lorakit(["serve", "--model", ".", "--adapter", "noequals"]);
    expect([a.code, a.stderr]).toEqual([
      2,
      'lorakit serve: --adapter "noequals": expected NAME=DIR (e.g. --adapter support=./support)\n',
    ]);
    const b = lorakit(["serve", "--model", ".", "--max-batch", "0"]);
    expect([b.code, b.stderr]).toEqual([2, "lorakit serve: --max-batch must be at least 1, got 0\n"]);
    const w = lorakit(["serve", "--model", ".", "--batch-window", "5ms"]);
    expect([w.code, w.stderr]).toEqual([
      2,
      'lorakit serve: --batch-window must be a non-negative integer, got "5ms"\n',
    ]);
    // a negative number is the option's value, refused by its own check (not parseArgs' "ambiguous" message)
    const n = lorakit(["serve", "--model", ".", "--port", "-1"]);
    expect([n.code, n.stderr]).toEqual([2, 'lorakit serve: --port must be a non-negative integer, got "-1"\n']);
    const u = lorakit(["serve", "--model", ".", "--max-bach", "4"]);
    expect([u.code, u.stderr]).toEqual([
      2,
      "lorakit serve: unknown option --max-bach (did you mean --max-batch?) (see 'lorakit serve --help')\n",
    ]);
    const c = lorakit(["serve", "--model", "/nonexistent-model-dir"]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("is not a model folder (no config.json) [missing_file]");
  });
});

describe.skipIf(!GOLDEN)("lorakit serve: the golden llama base", () => {
  it("serves (API key from LORAKIT_API_KEY), answers, and stops on SIGTERM with exit code 0", async () => {
    const adapter = `basic=${goldenFile("peft-llama-basic", "adapter")}`;
    const args = ["--model", goldenFile("base", "llama"), "--adapter", adapter, "--port", "0"];
    const { child, url, log } = await serve(args, { LORAKIT_API_KEY: "from-env" });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(log()).toContain('(model "llama", adapters: basic; batch 16, queue 64)');
    const body = { model: "basic", prompt: inputIds(), max_tokens: 4, temperature: 0 }; // greedy: the same tokens every run
    expect((await postJson(url, "/v1/completions", body)).status).toBe(401);
    const r = await postJson(url, "/v1/completions", body, { authorization: "Bearer from-env" });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).choices[0].token_ids.length).toBeGreaterThan(0);
    const done = exited(child);
    child.kill("SIGTERM");
    expect(await done).toBe(0);
    expect(log()).toContain("lorakit serve: SIGTERM, shutting down");
    expect(log()).toContain("lorakit serve: stopped\n");
  });
});
