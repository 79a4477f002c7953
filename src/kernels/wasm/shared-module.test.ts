// The threaded kernels use a shared-memory module derived from the shipped private-memory one (shared-module.ts).
// It must be exactly what asc builds with --sharedMemory, for both builds, or the derivation is wrong.
import { describe, expect, it } from "vitest";
import { compileWasm, SHARED_MAX_PAGES } from "../../../scripts/build-wasm.mjs";
import { decodeBase64 } from "./decode.js";
import { RELAXED, SIMD } from "./generated/modules.js";
import { withSharedMemory } from "./shared-module.js";

describe("withSharedMemory", () => {
  it.each([
    ["SIMD", SIMD, false],
    ["RELAXED", RELAXED, true],
  ] as const)(
    "%s: equals asc's --sharedMemory build byte for byte",
    (_name, base64, relaxed) => {
      const derived = withSharedMemory(decodeBase64(base64), SHARED_MAX_PAGES);
      const built = compileWasm({ relaxed, shared: true });
      expect(Buffer.from(derived).equals(built)).toBe(true);
      let mod: WebAssembly.Module;
      try {
        mod = new WebAssembly.Module(derived);
      } catch {
        expect(relaxed).toBe(true); // relaxed SIMD on Node 20 without the flag; the bytes are checked above
        return;
      }
      const memories = WebAssembly.Module.imports(mod).filter((i) => i.kind === "memory");
      expect(memories).toHaveLength(1);
    },
    60_000,
  );

  it("rewrites the memory import after imports of other kinds, keeping them", () => {
    // (import "m" "f" (func (type 0))) (import "m" "g" (global i32)) (import "m" "mem" (memory 2 7))
    const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const types = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00];
    const imp = [0x03, 0x01, 0x6d, 0x01, 0x66, 0x00, 0x00, 0x01, 0x6d, 0x01, 0x67, 0x03, 0x7f, 0x00];
    imp.push(0x01, 0x6d, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x01, 0x02, 0x07);
    const bytes = new Uint8Array([...header, ...types, 0x02, imp.length, ...imp]);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const shared = withSharedMemory(bytes, 300); // 300 pages: a two-byte LEB128, so the section grows
    expect(WebAssembly.validate(shared)).toBe(true);
    const kinds = WebAssembly.Module.imports(new WebAssembly.Module(shared)).map((i) => `${i.name}:${i.kind}`);
    expect(kinds).toEqual(["f:function", "g:global", "mem:memory"]);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 300, shared: true });
    const f = () => undefined;
    expect(
      () => new WebAssembly.Instance(new WebAssembly.Module(shared), { m: { f, g: 1, mem: memory } }),
    ).not.toThrow();
    // the private memory no longer fits
    const priv = new WebAssembly.Memory({ initial: 2, maximum: 7 });
    expect(() => new WebAssembly.Instance(new WebAssembly.Module(shared), { m: { f, g: 1, mem: priv } })).toThrow();
  });

  it("refuses a module without an imported memory", () => {
    const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect(() => withSharedMemory(bytes, 10)).toThrow(/no imported memory/);
  });
});
