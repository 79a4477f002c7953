// vLLM's runtime adapter endpoints: POST /v1/load_lora_adapter {lora_name, lora_path} and
// /v1/unload_lora_adapter {lora_name}; loading only from inside --adapter-dir, whatever the path or symlinks say.
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/node/serve/server.js";
import { FakeEngine } from "./fake-engine.js";
import { ascii, postJson, soloGreedy, startFake, until } from "./helpers.js";

const LOAD = "/v1/load_lora_adapter";
const UNLOAD = "/v1/unload_lora_adapter";

// <tmp>/outside/{secret/, secret.json}, <tmp>/adapters/{good/, other/, broken/, file.txt, up -> ../outside/secret,
//   leaky/{adapter_config.json -> ../../outside/secret.json}, inner -> good}
const tmp = realpathSync(mkdtempSync(join(tmpdir(), "lorakit-serve-")));
const root = join(tmp, "adapters");
for (const d of ["outside/secret", "adapters/good", "adapters/other", "adapters/broken", "adapters/leaky"])
  mkdirSync(join(tmp, d), { recursive: true });
writeFileSync(join(tmp, "outside", "secret.json"), "{}");
writeFileSync(join(root, "file.txt"), "not a folder");
symlinkSync(join(tmp, "outside", "secret"), join(root, "up"));
symlinkSync(join(tmp, "outside", "secret.json"), join(root, "leaky", "adapter_config.json"));
symlinkSync(join(root, "good"), join(root, "inner"));

let server: RunningServer;
let engine: FakeEngine;
let client: Awaited<ReturnType<typeof startFake>>["client"];

beforeAll(async () => {
  ({ server, engine, client } = await startFake({ engine: new FakeEngine({ adapters: ["a1"] }), adapterDir: root }));
});
afterAll(() => server.close(0));

describe("load and unload while serving", () => {
  it("loads a folder by relative or absolute path, serves it, lists it, and unloads it", async () => {
    const r = await postJson(server.url, LOAD, { lora_name: "fresh", lora_path: "good" });
    expect([r.status, r.text]).toEqual([200, "Success: LoRA adapter 'fresh' added successfully."]);
    const abs = await postJson(server.url, LOAD, { lora_name: "viaLink", lora_path: join(root, "inner") });
    expect(abs.status).toBe(200);
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toEqual(["base", "a1", "fresh", "viaLink"]);
    const c = await client.completions.create({ model: "fresh", prompt: "new", max_tokens: 6, temperature: 0 });
    expect((c.choices[0] as unknown as { token_ids: number[] }).token_ids).toEqual(
      await soloGreedy("fresh", ascii("new"), 6),
    );
    const u = await postJson(server.url, UNLOAD, { lora_name: "fresh" });
    expect([u.status, u.text]).toEqual([200, "Success: LoRA adapter 'fresh' removed successfully."]);
    await postJson(server.url, UNLOAD, { lora_name: "viaLink" });
    const gone = await postJson(server.url, "/v1/completions", { model: "fresh", prompt: "x" });
    expect([gone.status, gone.json().error.code]).toEqual([404, "model_not_found"]);
  });

  // [what, body, status, code, message]
  const REFUSED: [string, object, number, string, string][] = [
    [
      "a path out by ..",
      { lora_name: "x", lora_path: "../outside/secret" },
      403,
      "path_not_allowed",
      'load_lora_adapter: lora_path "../outside/secret" is outside the adapter folder, expected a folder inside the server\'s adapter folder',
    ],
    [
      "an absolute path outside",
      { lora_name: "x", lora_path: tmp },
      403,
      "path_not_allowed",
      "is outside the adapter folder",
    ],
    [
      "a symlinked folder leading out",
      { lora_name: "x", lora_path: "up" },
      403,
      "path_not_allowed",
      'lora_path "up" leads outside the adapter folder through a symlink',
    ],
    [
      "a folder holding a symlink out",
      { lora_name: "x", lora_path: "leaky" },
      403,
      "path_not_allowed",
      'holds "adapter_config.json", a symlink that leads outside the adapter folder',
    ],
    [
      "a missing folder",
      { lora_name: "x", lora_path: "nope" },
      404,
      "missing_file",
      'load_lora_adapter: lora_path "nope" does not exist in the adapter folder',
    ],
    [
      "a file",
      { lora_name: "x", lora_path: "file.txt" },
      400,
      "invalid_request",
      'load_lora_adapter: lora_path "file.txt" is a file, expected an adapter folder',
    ],
    [
      "no path",
      { lora_name: "x" },
      400,
      "invalid_request",
      "load_lora_adapter: lora_path is undefined, expected a folder path",
    ],
    [
      "a NUL byte",
      { lora_name: "x", lora_path: "good\u0000" },
      400,
      "invalid_request",
      "load_lora_adapter: lora_path is",
    ],
    [
      "a taken name",
      { lora_name: "a1", lora_path: "other" },
      400,
      "duplicate_adapter",
      'load_lora_adapter: an adapter named "a1" is already loaded (unload it first)',
    ],
    [
      "the base model's name",
      { lora_name: "base", lora_path: "other" },
      400,
      "invalid_request",
      'load_lora_adapter: lora_name is "base", expected a non-empty string',
    ],
    [
      "an unreadable adapter",
      { lora_name: "x", lora_path: "broken" },
      400,
      "unsupported_format",
      "fake engine: the folder holds no adapter",
    ],
  ];

  it.each(REFUSED)("refuses %s", async (_what, body, status, code, message) => {
    const r = await postJson(server.url, LOAD, body);
    expect(r.status).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect(r.json().error.message).toContain(message);
    expect(engine.adapters()).toEqual(["a1"]);
  });

  it("unloading an unknown adapter is 404; one that requests use is 409 until they finish", async () => {
    const missing = await postJson(server.url, UNLOAD, { lora_name: "zz" });
    expect([missing.status, missing.json().error.code, missing.json().error.message]).toEqual([
      404,
      "model_not_found",
      'unload_lora_adapter: no adapter named "zz" (loaded: "a1")',
    ]);
    await postJson(server.url, LOAD, { lora_name: "busy", lora_path: "other" });
    const release = engine.hold();
    const running = client.completions.create({ model: "busy", prompt: ["p", "q"], max_tokens: 4, temperature: 0 });
    await until(() => server.service.stats().running === 2);
    const refused = await postJson(server.url, UNLOAD, { lora_name: "busy" });
    expect(refused.status).toBe(409);
    expect(refused.json().error).toMatchObject({
      code: "adapter_in_use",
      param: "lora_name",
      message: 'unload_lora_adapter: adapter "busy" is used by 2 queued or running sequences; retry when they finish',
    });
    release();
    expect((await running).choices).toHaveLength(2);
    const ok = await postJson(server.url, UNLOAD, { lora_name: "busy" });
    expect(ok.status).toBe(200);
    expect(engine.adapters()).toEqual(["a1"]);
  });
});

describe("without --adapter-dir", () => {
  it("refuses every load with 403 path_not_allowed", async () => {
    const { server: s } = await startFake();
    try {
      const r = await postJson(s.url, LOAD, { lora_name: "x", lora_path: root });
      expect(r.status).toBe(403);
      expect(r.json().error).toMatchObject({
        code: "path_not_allowed",
        type: "permission_error",
        message:
          "load_lora_adapter: loading adapters at run time is off (start the server with --adapter-dir DIR to allow folders inside DIR)",
      });
    } finally {
      await s.close(0);
    }
  });
});
