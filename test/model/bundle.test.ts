// lorakit/model is browser-safe: bundled for the browser (esbuild, platform "browser") it has no Node built-in,
// leaves @huggingface/tokenizers to a run-time import, and computes what the source computes.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { randomModel, toSafetensors } from "../../scripts/random-model.mjs";
import { parseSafetensors } from "../../src/io/safetensors.js";
import * as source from "../../src/model/index.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let dir = "";
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("lorakit/model browser bundle", () => {
  it("has no node: import and gives the source's logits", async () => {
    const out = await build({
      absWorkingDir: ROOT,
      entryPoints: ["src/model/index.ts"],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      loader: { ".wasm": "binary" },
      write: false,
      logLevel: "silent",
    });
    const code = out.outputFiles[0]!.text;
    expect(code.indexOf("node:")).toBe(-1);
    expect(code).toContain("@huggingface/tokenizers");
    dir = mkdtempSync(path.join(tmpdir(), "lorakit-model-bundle-"));
    const file = path.join(dir, "model.js");
    writeFileSync(file, code);
    const bundled = (await import(pathToFileURL(file).href)) as typeof source;
    const rm = randomModel({
      type: "llama",
      hidden: 64,
      layers: 1,
      heads: 4,
      kvHeads: 2,
      vocab: 40,
      positions: 16,
      seed: 9,
    });
    const bytes = toSafetensors(rm.tensors);
    const run = (M: typeof source.CausalLM) => {
      const m = new M(rm.config, parseSafetensors(bytes));
      return m.forward([{ ids: [1, 2, 3], cache: m.createCache() }])[0]!;
    };
    expect(run(bundled.CausalLM)).toEqual(run(source.CausalLM));
  });
});
