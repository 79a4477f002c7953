import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGguf } from "../../src/io/gguf.js";
import { GOLDEN, tmpFile } from "../gguf/helpers.js";
import { lorakit } from "./helpers.js";

describe.skipIf(GOLDEN === null)("lorakit inspect on a .gguf file", () => {
  const g = GOLDEN!;
  const gguf = tmpFile("inspect-basic.gguf");
  const made = lorakit([
    "convert",
    "--from",
    join(g, "peft-llama-basic", "adapter"),
    "--to",
    gguf,
    "--base",
    join(g, "base", "llama"),
  ]);

  it("lists the metadata and every tensor with its ggml type and shape", () => {
    expect(made.code).toBe(0);
    const parsed = parseGguf(new Uint8Array(readFileSync(gguf)));
    const r = lorakit(["inspect", gguf]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const total = parsed.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    expect(r.stdout.split("\n")[0]).toBe(`${gguf}: GGUF v3, ${parsed.tensors.length} tensors, ${total} parameters`);
    expect(r.stdout).toContain('general.type = "adapter"');
    expect(r.stdout).toContain(`adapter.lora.alpha = ${parsed.metadata.get("adapter.lora.alpha")?.value}`);
    for (const t of parsed.tensors)
      expect(r.stdout).toMatch(
        new RegExp(`${t.name.replaceAll(".", "\\.")}\\s+${t.type.name}\\s+\\[${t.shape.join(", ")}\\]`),
      );
  });

  it("--json gives the same tensors as parseGguf", () => {
    const parsed = parseGguf(new Uint8Array(readFileSync(gguf)));
    const r = lorakit(["inspect", "--json", gguf]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      metadata: Record<string, unknown>;
      tensors: { name: string; type: string; shape: number[] }[];
    };
    expect(doc.metadata["general.architecture"]).toBe("llama");
    expect(doc.tensors.map((t) => [t.name, t.type, t.shape])).toEqual(
      parsed.tensors.map((t) => [t.name, t.type.name, t.shape]),
    );
  });

  it("a file that is not GGUF is a one-line coded error, exit 2", () => {
    const bad = tmpFile("inspect-bad.gguf");
    writeFileSync(bad, new Uint8Array(32).fill(7)); // 32 bytes that do not start with "GGUF"
    const r = lorakit(["inspect", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lorakit inspect: .*\[invalid_magic\]\n$/);
  });
});
