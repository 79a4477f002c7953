// The kernel memory filled by long-lived arrays (weights, KV caches): allocResident stops SCRATCH_HEADROOM
// (64 MiB) short of the maximum, so products, gelu and attention still find scratch and keep working in
// WebAssembly; what still does not fit takes the TypeScript kernels; a memory that will not grow is KernelError
// out_of_memory, never the engine's RangeError. Each instance's memory only reserves its pages (untouched, they
// use no RAM).
import { describe, expect, it } from "vitest";
import { caught } from "../../../test/helpers/errors.js";
import { fill } from "../../../test/helpers/random.js";
import { KernelError, LoraError } from "../../errors.js";
import { geluNew, kernelFloat32Array, releaseKernelArray } from "../select.js";
import { WasmGemm } from "./runtime.js";

const HEADROOM = 64 * 2 ** 20;
const CHUNK = 2 ** 24; // floats: 64 MiB

/** Fills w's memory with resident arrays up to the headroom; returns them. */
function fillUp(alloc: (length: number) => Float32Array | null): Float32Array[] {
  const taken: Float32Array[] = [];
  for (;;) {
    let refused: unknown;
    try {
      const a = alloc(CHUNK);
      if (a) taken.push(a);
    } catch (e) {
      refused = e;
    }
    if (refused === undefined) continue;
    expect(refused).toBeInstanceOf(LoraError);
    const e = refused as LoraError;
    expect(e.code).toBe("too_large");
    const available = e.details.available as number;
    expect(available).toBeLessThan(CHUNK);
    const last = alloc(available);
    if (last) taken.push(last);
    return taken;
  }
}

describe("a kernel memory full of resident arrays", () => {
  it("refuses the last 64 MiB to resident arrays, with the room left in the message", () => {
    const w = WasmGemm.createSync("simd", true);
    fillUp((n) => w.allocResident(n));
    const e = caught(() => w.allocResident(1));
    expect(e.code).toBe("too_large");
    expect(e.message).toBe(
      "kernelFloat32Array: length 1 (4 bytes) does not fit in the kernel memory, expected at most 0 more elements (2 GiB in all)",
    );
    expect(w.scratchFits(HEADROOM)).toBe(true);
    expect(w.scratchFits(HEADROOM + 1)).toBe(false);
  });

  it("still runs products, gelu and attention with the same bits as an empty memory", () => {
    const full = WasmGemm.createSync("simd", true);
    const empty = WasmGemm.createSync("simd", true);
    const [m, k, n] = [33, 70, 45];
    const a = fill(new Float32Array(m * k), 1);
    const b = fill(new Float32Array(k * n), 2);
    // K, V of a 2-head cache (D = 8, 5 positions), resident in each memory before the other arrays fill it
    const [H, D, past, t] = [2, 8, 4, 1];
    const W = H * D;
    const kv = (w: WasmGemm): [Float32Array, Float32Array] => {
      const K = w.allocResident((past + t) * W)!;
      const V = w.allocResident((past + t) * W)!;
      K.set(fill(new Float32Array(K.length), 3));
      V.set(fill(new Float32Array(V.length), 4));
      return [K, V];
    };
    const [Kf, Vf] = kv(full);
    const [Ke, Ve] = kv(empty);
    fillUp((len) => full.allocResident(len));
    const q = fill(new Float32Array(t * W), 5);
    const x = fill(new Float32Array(1 << 16), 6);
    for (const w of [full, empty]) expect(w.bytesFor(m, k, n, 0, 1)).toBeLessThan(w.maxBytes());
    const run = (w: WasmGemm, K: Float32Array, V: Float32Array) => {
      const out = w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0);
      const g = w.gelu(x.slice());
      const att = new Float32Array(t * W);
      expect(w.attend(att, q, W, K, V, W, past, t, H, H, D, 0.35)).toBe(true);
      return [out, g, att];
    };
    const got = run(full, Kf, Vf);
    const want = run(empty, Ke, Ve);
    for (let i = 0; i < got.length; i++) expect(got[i]).toEqual(want[i]);
  });

  it("attention whose scratch does not fit returns false (the caller takes the TypeScript kernel)", () => {
    const w = WasmGemm.createSync("simd", true);
    const [H, D] = [1, 4];
    const K = w.allocResident(4 * D)!;
    const V = w.allocResident(4 * D)!;
    fillUp((len) => w.allocResident(len));
    // t rows of q and out (4·H·D bytes each) and t scores (4 bytes): 36·t bytes, over 64 MiB of scratch
    const t = HEADROOM / 16;
    const q = new Float32Array(t * H * D);
    expect(w.attend(new Float32Array(t * H * D), q, H * D, K, V, H * D, 0, t, H, H, D, 0.5)).toBe(false);
  });

  it("a memory that does not grow for a call's scratch is KernelError out_of_memory, and the next call works", () => {
    const w = WasmGemm.createSync("simd", true);
    const [m, k, n] = [64, 64, 64];
    const a = fill(new Float32Array(m * k), 1);
    const b = fill(new Float32Array(k * n), 2);
    const memory = (w as unknown as { memory: WebAssembly.Memory }).memory;
    const grow = memory.grow;
    memory.grow = () => {
      throw new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded");
    };
    const have = memory.buffer.byteLength;
    const e = caught(() => w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0));
    const g = caught(() => w.gelu(new Float32Array(1 << 20)));
    memory.grow = grow;
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe("out_of_memory");
    expect(e.message).toMatch(
      new RegExp(
        `^gemm: the kernel memory could not grow from ${have} to \\d+ bytes \\(WebAssembly.Memory.grow\\(\\): Maximum memory size exceeded\\)$`,
      ),
    );
    expect(g.code).toBe("out_of_memory");
    expect(g.message).toMatch(/^gelu: the kernel memory could not grow from \d+ to \d+ bytes/);
    const out = w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0);
    const again = WasmGemm.createSync("simd", true).gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0);
    expect(out).toEqual(again);
  });

  it("geluNew through select: in the headroom in WebAssembly, beyond it in TypeScript, both right", () => {
    const taken = fillUp((n) => kernelFloat32Array(n));
    try {
      for (const length of [1 << 20, (HEADROOM >> 2) + 1000]) {
        const x = fill(new Float32Array(length), 7);
        const y = geluNew(x.slice());
        for (let i = 0; i < length; i += 997) {
          const v = x[i]!;
          const want = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
          expect(Math.abs(y[i]! - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
        }
      }
    } finally {
      for (const a of taken) releaseKernelArray(a);
    }
  });
});
