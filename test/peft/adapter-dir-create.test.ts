// savePeftAdapterDir creates a missing folder (mkdir -p), as `lorakit train --out` does, and refuses a path that
// is a file, writing nothing.

import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AdapterFormatError } from "../../src/errors.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { loadPeftAdapterDir, savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { adapterBytes, GPT2_CONFIG, gpt2Modules } from "./synthetic.js";

const adapter = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(1, 4, 4)) });

describe("savePeftAdapterDir", () => {
  it("creates a folder that does not exist, parents included, and the adapter reads back", async () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-save-"));
    const dir = join(root, "a", "b", "adapter");
    await savePeftAdapterDir(dir, adapter.modules, adapter.config);
    expect(readdirSync(dir).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    const back = await loadPeftAdapterDir(dir);
    expect(back.modules.map((m) => m.modulePath)).toEqual(adapter.modules.map((m) => m.modulePath));
    expect(Array.from(back.modules[0]!.down.data)).toEqual(Array.from(adapter.modules[0]!.down.data));
  });

  it("refuses a path that is a file, with a coded error, and leaves it as it was", async () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-save-"));
    const file = join(root, "not-a-folder");
    writeFileSync(file, "keep me");
    const err = await savePeftAdapterDir(file, adapter.modules, adapter.config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdapterFormatError);
    expect((err as AdapterFormatError).code).toBe("missing_file");
    expect((err as Error).message).toBe(`savePeftAdapterDir: ${file} exists and is not a folder`);
    expect(readFileSync(file, "utf8")).toBe("keep me");
    expect(existsSync(join(root, "adapter_model.safetensors"))).toBe(false);
  });
});
