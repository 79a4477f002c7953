// KvCache: power-of-two capacities, contents kept when it grows, arrays in kernel memory where the WebAssembly
// kernels run (Node), and their space given back by dispose() for the next cache of the same size.
import { describe, expect, it } from "vitest";
import { kernelInfo } from "../../src/kernels/select.js";
import { ADVANCE, KvCache } from "../../src/model/kv-cache.js";

describe("KvCache", () => {
  it("rounds its capacity up to a power of two and keeps every stored position when it grows", () => {
    const c = new KvCache(2, 3, 5);
    expect(c.bytes).toBe(2 * 2 * 8 * 3 * 4); // capacity 8
    c.keysOf(1).set([1, 2, 3, 4, 5, 6], 0);
    c.valuesOf(0).set([7, 8, 9], 3);
    c[ADVANCE](2);
    c.reserve(7); // 9 positions → 16
    expect(c.bytes).toBe(2 * 2 * 16 * 3 * 4);
    expect([...c.keysOf(1).subarray(0, 6)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...c.valuesOf(0).subarray(3, 6)]).toEqual([7, 8, 9]);
    expect(c.keysOf(0).length).toBe(16 * 3);
  });

  it("lives in kernel memory here, and dispose() gives it back to the next cache of the same size", () => {
    expect(["wasm-simd", "wasm-relaxed-simd"]).toContain(kernelInfo().backend);
    const a = new KvCache(3, 64, 16);
    const offsets = [0, 1, 2].flatMap((l) => [a.keysOf(l).byteOffset, a.valuesOf(l).byteOffset]);
    const buffer = a.keysOf(0).buffer;
    expect(buffer).toBeInstanceOf(SharedArrayBuffer); // the kernels' memory, not a private array
    a.keysOf(2)[5] = 42;
    a.dispose();
    expect(a.bytes).toBe(0);
    const b = new KvCache(3, 64, 16);
    const reused = [0, 1, 2].flatMap((l) => [b.keysOf(l).byteOffset, b.valuesOf(l).byteOffset]);
    expect(new Set(reused)).toEqual(new Set(offsets));
    expect(b.keysOf(0).buffer).toBe(buffer);
    expect([0, 1, 2].every((l) => b.keysOf(l).every((x) => x === 0))).toBe(true); // handed out zeroed
    b.dispose();
  });

  it("works again after dispose(): it grows from empty on the next reserve", () => {
    const c = new KvCache(1, 4, 4);
    c.dispose();
    expect(c.length).toBe(0);
    c.reserve(3);
    c.keysOf(0).set([1, 2, 3, 4]);
    expect(c.bytes).toBe(2 * 1 * 4 * 4 * 4);
    expect([...c.keysOf(0).subarray(0, 4)]).toEqual([1, 2, 3, 4]);
    c.dispose();
  });
});
