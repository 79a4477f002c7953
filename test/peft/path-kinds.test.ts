// Adapter and GGUF files that are not regular files: a FIFO is refused at once (reading it would block until a
// writer comes, forever for a forgotten mkfifo) and a folder where a file is expected gets a coded message, not a
// raw EISDIR.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAdapter, loadMlxAdapterDir, loadPeftAdapterDir } from "../../src/node/adapter-files.js";
import { openGguf } from "../../src/node/gguf-file.js";
import { adapterBytes, GPT2_CONFIG, gpt2Modules } from "./synthetic.js";

const hasMkfifo = (() => {
  try {
    execFileSync("mkfifo", ["--version"], { stdio: "ignore" });
    return process.platform !== "win32";
  } catch {
    return false;
  }
})();

async function refusal(p: Promise<unknown>): Promise<{ name: string; code?: string; message: string }> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (e === null) throw new Error("expected a refusal");
  return e as { name: string; code?: string; message: string };
}

function folder(files: Record<string, "fifo" | "folder" | string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), "lorakit-kinds-"));
  for (const [name, what] of Object.entries(files)) {
    const path = join(dir, name);
    if (what === "fifo") execFileSync("mkfifo", [path]);
    else if (what === "folder") mkdirSync(path);
    else writeFileSync(path, what);
  }
  return dir;
}

const CONFIG = JSON.stringify(GPT2_CONFIG);
const WEIGHTS = adapterBytes(gpt2Modules(1, 4, 4));
const MLX_CONFIG = JSON.stringify({ fine_tune_type: "lora", lora_parameters: { rank: 4, scale: 2 } });

describe.skipIf(!hasMkfifo)("FIFOs are refused without reading them", () => {
  it.each([
    ["adapter_config.json", { "adapter_config.json": "fifo", "adapter_model.safetensors": WEIGHTS }],
    ["adapter_model.safetensors", { "adapter_config.json": CONFIG, "adapter_model.safetensors": "fifo" }],
  ] as const)("a PEFT folder whose %s is a FIFO", async (name, files) => {
    const dir = folder(files);
    for (const load of [loadPeftAdapterDir, loadAdapter]) {
      const e = await refusal(load(dir));
      expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
      expect(e.message).toMatch(
        new RegExp(`^load\\w+: ${join(dir, name).replaceAll(".", "\\.")} is a FIFO, expected a file \\(`),
      );
    }
  });

  it("an MLX folder whose adapters.safetensors is a FIFO", async () => {
    const dir = folder({ "adapter_config.json": MLX_CONFIG, "adapters.safetensors": "fifo" });
    const e = await refusal(loadMlxAdapterDir(dir));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(
      `loadMlxAdapterDir: ${join(dir, "adapters.safetensors")} is a FIFO, expected a file (MLX adapter weights)`,
    );
  });

  it("loadAdapter of a weights path that is a FIFO, and openGguf of a FIFO", async () => {
    const dir = folder({ "adapter_config.json": CONFIG, "w.safetensors": "fifo", "m.gguf": "fifo" });
    let e = await refusal(loadAdapter(join(dir, "w.safetensors")));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(
      `loadAdapter: ${join(dir, "w.safetensors")} is a FIFO, expected a file (an adapter weights file)`,
    );
    e = await refusal(openGguf(join(dir, "m.gguf")));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(`openGguf: ${join(dir, "m.gguf")} is a FIFO, expected a file (a GGUF file)`);
  });
});

describe("a folder where a file is expected", () => {
  it("adapter_config.json or adapter_model.safetensors that is a folder", async () => {
    let dir = folder({ "adapter_config.json": "folder", "adapter_model.safetensors": WEIGHTS });
    let e = await refusal(loadPeftAdapterDir(dir));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(
      `loadPeftAdapterDir: ${join(dir, "adapter_config.json")} is a folder, expected a file (an adapter folder needs adapter_config.json)`,
    );
    dir = folder({ "adapter_config.json": CONFIG, "adapter_model.safetensors": "folder" });
    e = await refusal(loadAdapter(dir));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(
      `loadPeftAdapterDir: ${join(dir, "adapter_model.safetensors")} is a folder, expected a file (an adapter weights file)`,
    );
  });

  it("openGguf of a folder, and of a path that does not exist", async () => {
    const dir = folder({ "m.gguf": "folder" });
    let e = await refusal(openGguf(join(dir, "m.gguf")));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(`openGguf: ${join(dir, "m.gguf")} is a folder, expected a file (a GGUF file)`);
    e = await refusal(openGguf(join(dir, "none.gguf")));
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "missing_file"]);
    expect(e.message).toBe(`openGguf: ${join(dir, "none.gguf")} does not exist (a GGUF file)`);
  });
});
