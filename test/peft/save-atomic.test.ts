// savePeftAdapterDir writes both files or neither: a write that fails (a full disk, injected through openFile) or a
// target that is a folder leaves no new folder, or the old folder exactly as it was, and no temporaries.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapterDir } from "../../src/node/adapter-files.js";
import type { OpenFile } from "../../src/node/atomic-write.js";
import { adapterBytes, GPT2_CONFIG, gpt2Modules } from "./synthetic.js";

const adapter = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(1, 4, 4)) });

// Fails like a full disk when the file being opened is (the temporary of) adapter_config.json, written second.
const fullOnConfig: OpenFile = async (path, flags, mode) => {
  if (path.includes("adapter_config.json"))
    throw Object.assign(new Error(`ENOSPC: no space left on device, open '${path}'`), { code: "ENOSPC", path });
  return open(path, flags, mode);
};

async function caught(p: Promise<unknown>): Promise<{ code?: string; message: string; name: string }> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (e === null) throw new Error("expected a rejection");
  return e as { code?: string; message: string; name: string };
}

describe("savePeftAdapterDir is all or nothing", () => {
  it("a failed write into a new folder leaves no folder", async () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-atomic-"));
    const dir = join(root, "adapter");
    const e = await caught(savePeftAdapterDir(dir, adapter.modules, adapter.config, { openFile: fullOnConfig }));
    expect([e.name, e.code]).toEqual(["FileWriteError", "no_space"]);
    expect(e.message).toBe(
      `savePeftAdapterDir: no space left on the device while writing ${join(dir, "adapter_config.json")} (ENOSPC); nothing was written`,
    );
    expect(readdirSync(root)).toEqual([]);
  });

  it("a failed write into an existing folder leaves its files as they were, and no temporaries", async () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-atomic-"));
    const dir = join(root, "adapter");
    mkdirSync(dir);
    writeFileSync(join(dir, "adapter_model.safetensors"), "old weights");
    writeFileSync(join(dir, "adapter_config.json"), "old config");
    writeFileSync(join(dir, "README.md"), "kept");
    const e = await caught(savePeftAdapterDir(dir, adapter.modules, adapter.config, { openFile: fullOnConfig }));
    expect([e.name, e.code]).toEqual(["FileWriteError", "no_space"]);
    expect(e.message).toBe(
      `savePeftAdapterDir: no space left on the device while writing ${join(dir, "adapter_config.json")} (ENOSPC); nothing was written`,
    );
    expect(readdirSync(dir).sort()).toEqual(["README.md", "adapter_config.json", "adapter_model.safetensors"]);
    expect(readFileSync(join(dir, "adapter_model.safetensors"), "utf8")).toBe("old weights");
    expect(readFileSync(join(dir, "adapter_config.json"), "utf8")).toBe("old config");
  });

  it("a target that is a folder is refused before either file is replaced", async () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-atomic-"));
    const dir = join(root, "adapter");
    mkdirSync(join(dir, "adapter_config.json"), { recursive: true });
    writeFileSync(join(dir, "adapter_model.safetensors"), "old weights");
    const e = await caught(savePeftAdapterDir(dir, adapter.modules, adapter.config));
    expect([e.name, e.code]).toEqual(["FileWriteError", "invalid_output"]);
    expect(e.message).toBe(
      `savePeftAdapterDir: cannot write ${join(dir, "adapter_config.json")}: it is a folder (EISDIR); nothing was written`,
    );
    expect(readdirSync(dir).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    expect(readFileSync(join(dir, "adapter_model.safetensors"), "utf8")).toBe("old weights");
  });

  it("a successful save into an existing folder keeps its other files", async () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-atomic-"));
    const dir = join(root, "adapter");
    mkdirSync(dir);
    writeFileSync(join(dir, "README.md"), "kept");
    await savePeftAdapterDir(dir, adapter.modules, adapter.config);
    expect(readdirSync(dir).sort()).toEqual(["README.md", "adapter_config.json", "adapter_model.safetensors"]);
    expect(existsSync(join(dir, "README.md"))).toBe(true);
  });
});
