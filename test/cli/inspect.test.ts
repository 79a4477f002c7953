// `lorakit inspect` as a user sees it: modules in natural order (h.2 before h.10), a base tensor whose layout does
// not fit shown with the word "mismatch", and a quiet exit when stdout is closed early (| head -1).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { naturalCompare } from "../../cli/inspect.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { PEFT_GOLDEN } from "../helpers/shared.js";
import { adapterBytes, GPT2_CONFIG, gpt2BaseBytes, gpt2Modules } from "../peft/synthetic.js";
import { lorakit, lorakitStdoutClosed } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "lorakit-inspect-"));
const adapterDir = join(dir, "adapter");
const base = join(dir, "model.safetensors");
const wideBase = join(dir, "wide.safetensors");

beforeAll(async () => {
  const a = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(12, 4, 4)) });
  await savePeftAdapterDir(adapterDir, a.modules, a.config);
  writeFileSync(base, gpt2BaseBytes(12, 4));
  writeFileSync(wideBase, gpt2BaseBytes(12, 8));
});

describe("lorakit inspect", () => {
  it("lists modules in natural order: h.2 before h.10, in the table and in --json", () => {
    const expected = Array.from({ length: 12 }, (_, l) => [
      `transformer.h.${l}.attn.c_attn`,
      `transformer.h.${l}.attn.c_proj`,
      `transformer.h.${l}.mlp.c_proj`,
    ]).flat();
    const json = lorakit(["inspect", adapterDir, "--json"]);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { modules: { module: string }[] }).modules.map((m) => m.module)).toEqual(
      expected,
    );
    const table = lorakit(["inspect", adapterDir]);
    const listed = table.stdout
      .split("\n")
      .filter((l) => l.startsWith("transformer."))
      .map((l) => l.split(/\s+/)[0]);
    expect(listed).toEqual(expected);
  });

  it("says mismatch for a base tensor whose shape does not fit, with the shape expected", () => {
    const ok = lorakit(["inspect", adapterDir, "--base", base]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain("mismatch");
    const r = lorakit(["inspect", adapterDir, "--base", wideBase]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /\ntransformer\.h\.10\.attn\.c_proj .* h\.10\.attn\.c_proj\.weight mismatch: shape \[8, 8\], expected \[4, 4\]\n/,
    );
    const doc = JSON.parse(lorakit(["inspect", adapterDir, "--base", wideBase, "--json"]).stdout);
    expect(doc.modules[0].baseStatus).toBe("mismatch: shape [8, 24], expected [4, 12]");
  });

  it("exits 0 quietly when stdout is closed early, as with | head -1", async () => {
    for (const args of [
      ["inspect", adapterDir],
      ["inspect", adapterDir, "--json"],
      ["inspect", base],
    ]) {
      expect(await lorakitStdoutClosed(args)).toEqual({ code: 0, stderr: "" });
    }
  });

  it("natural order compares digit runs as numbers", () => {
    const names = ["h.10.a", "h.2.b", "h.2.a", "h.1", "h.01", "g.100", "h"];
    expect([...names].sort(naturalCompare)).toEqual(["g.100", "h", "h.1", "h.01", "h.2.a", "h.2.b", "h.10.a"]);
  });
});

describe.skipIf(PEFT_GOLDEN === null)("lorakit inspect on PEFT's embedding + modules_to_save adapter", () => {
  // peft-llama-embed-mts: LoRA on embed_tokens [256, 64] (r 4) and two q_proj [64, 64] (r 4), lm_head [256, 64] in
  // modules_to_save, and PEFT's copy of the frozen embedding weight (save_embedding_layers).
  const adapter = join(PEFT_GOLDEN ?? "", "peft-llama-embed-mts", "adapter");
  const lora = (256 + 64) * 4 + 2 * (64 + 64) * 4;
  const lmHead = 256 * 64;

  it("counts LoRA factors and modules_to_save as trainable, not the saved frozen embedding weight", () => {
    const r = lorakit(["inspect", adapter, "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.trainableParams).toBe(lora + lmHead);
    const rows = doc.savedTensors.map((t: { name: string; trainable: boolean }) => [t.name, t.trainable]);
    expect(rows).toEqual([
      ["model.embed_tokens.weight", false],
      ["lm_head.weight", true],
    ]);
    const text = lorakit(["inspect", adapter]).stdout;
    expect(text).toMatch(
      /saved full tensor: model\.embed_tokens\.weight F32 \[256, 64\] \(the module's frozen base weight, saved by save_embedding_layers; not trainable\)\n/,
    );
    expect(text).toMatch(new RegExp(`trainable parameters: ${lora + lmHead}\n`));
  });
});
