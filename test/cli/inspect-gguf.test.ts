import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGguf, serializeGguf } from "../../src/io/gguf.js";
import { GOLDEN, tmpFile } from "../gguf/helpers.js";
import { lorakit } from "./helpers.js";

describe.skipIf(GOLDEN === null)("lorakit inspect on a .gguf file", () => {
  const gguf = tmpFile("inspect-basic.gguf");
  // converted while the tests are collected, so only where the fixtures are (skipIf still collects this body)
  const made =
    GOLDEN === null
      ? null
      : lorakit([
          "convert",
          "--from",
          join(GOLDEN, "peft-llama-basic", "adapter"),
          "--to",
          gguf,
          "--base",
          join(GOLDEN, "base", "llama"),
        ]);

  it("lists the metadata and every tensor with its ggml type and shape", () => {
    expect(made?.code).toBe(0);
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

describe("lorakit inspect on a .gguf file with 64-bit integer metadata", () => {
  const path = tmpFile("inspect-u64.gguf");
  writeFileSync(
    path,
    serializeGguf(
      {
        "general.architecture": { type: "string", value: "llama" },
        "general.type": { type: "string", value: "adapter" },
        "general.u64s": { type: "array", itemType: "u64", value: [1n, 2n ** 60n, 18446744073709551615n] },
        "general.i64s": { type: "array", itemType: "i64", value: [-3n, -(2n ** 62n)] },
        "general.big": { type: "u64", value: 2n ** 63n },
        "general.small": { type: "i64", value: -7n },
      },
      [],
    ),
  );

  it("prints u64 / i64 values and arrays: numbers when exact, else decimal strings", () => {
    const r = lorakit(["inspect", path]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('general.u64s = [1,"1152921504606846976","18446744073709551615"]\n');
    expect(r.stdout).toContain('general.i64s = [-3,"-4611686018427387904"]\n');
    expect(r.stdout).toContain('general.big = "9223372036854775808"\n');
    expect(r.stdout).toContain("general.small = -7\n");
  });

  it("--json carries the same values", () => {
    const r = lorakit(["inspect", "--json", path]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { metadata: Record<string, unknown> };
    expect(doc.metadata["general.u64s"]).toEqual([1, "1152921504606846976", "18446744073709551615"]);
    expect(doc.metadata["general.i64s"]).toEqual([-3, "-4611686018427387904"]);
    expect(doc.metadata["general.big"]).toBe("9223372036854775808");
    expect(doc.metadata["general.small"]).toBe(-7);
  });
});
