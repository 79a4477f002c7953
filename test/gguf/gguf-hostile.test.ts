// Hostile and malformed GGUF LoRA adapters and conversion inputs: each refusal with its code and message.

import { describe, expect, it } from "vitest";
import { serializeGguf } from "../../src/io/gguf.js";
import { ggufToAdapter } from "../../src/io/gguf-lora.js";
import { ggufArchitectureOf, ggufNameOf } from "../../src/io/gguf-names.js";
import type { GgufValue } from "../../src/io/gguf-types.js";

function caught(f: () => unknown): { code?: string; message: string; name: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message: string; name: string };
  }
  throw new Error("expected a throw");
}

function adapterMd(arch: string, extra: Record<string, GgufValue> = {}): Record<string, GgufValue> {
  return {
    "general.architecture": { type: "string", value: arch },
    "general.type": { type: "string", value: "adapter" },
    "adapter.type": { type: "string", value: "lora" },
    ...extra,
  };
}

describe("architecture names that are Object.prototype members", () => {
  it.each(["constructor", "__proto__", "toString", "hasOwnProperty"])("%s is unsupported_architecture", (arch) => {
    expect(ggufArchitectureOf(arch)).toBeUndefined();
    const e = caught(() => ggufToAdapter(serializeGguf(adapterMd(arch), [])));
    expect(e.name).toBe("GgufError");
    expect(e.code).toBe("unsupported_architecture");
    expect(e.message).toBe(
      `ggufToAdapter: architecture "${arch}" is not one lorakit converts (llama, mistral, qwen2, gemma, phi3, gpt2)`,
    );
  });

  it("a module path named like a prototype member has no GGUF name", () => {
    expect(ggufNameOf("llama", "constructor")).toBeNull();
    expect(ggufNameOf("gpt2", "transformer.toString")).toBeNull();
  });
});
