// The dispatching kernels of select.ts on problems large enough to leave TypeScript: the LoRA epilogue
// addLowRank against the float64 reference, and its exact-zero guarantee.
import { describe, expect, it } from "vitest";
import { closeMismatch, gemmBound, U_F32 } from "../../test/helpers/close.js";
import { fill } from "../../test/helpers/random.js";
import { gemmReference } from "./reference.js";
import { addLowRank, kernelInfo, WASM_MIN_MACS } from "./select.js";

describe("addLowRank (dispatching)", () => {
  const [n, r, dOut] = [37, 5, 67]; // odd sizes, n·r·dOut above the WebAssembly threshold
  it("uses the WebAssembly path for this size where it is available", () => {
    expect(n * r * dOut).toBeGreaterThanOrEqual(WASM_MIN_MACS);
    expect(["wasm-simd", "wasm-relaxed-simd"]).toContain(kernelInfo().backend);
  });

  it("out += s·t·up within the float32 bound", () => {
    const t = fill(new Float32Array(n * r), 1);
    const up = fill(new Float32Array(r * dOut), 2);
    const out = fill(new Float32Array(n * dOut), 3);
    const before = Float64Array.from(out);
    const low = new Float64Array(n * dOut);
    const gauge = new Float64Array(n * dOut);
    gemmReference(low, gauge, t, up, n, r, dOut);
    const s = 0.75;
    expect(addLowRank(out, t, up, n, r, dOut, s)).toBe(out);
    const want = Float64Array.from(before, (v, i) => v + s * low[i]!);
    const bound = gemmBound(
      U_F32,
      r + 2,
      gauge.map((g) => s * g),
      want,
    ).map((b, i) => b + U_F32 * Math.abs(before[i]!));
    expect(closeMismatch(out, want, { bound, shape: [n, dOut] })).toBeNull();
  });

  it("up = 0 or s = 0 leaves out bit-for-bit unchanged, -0 included", () => {
    const out = fill(new Float32Array(n * dOut), 4);
    out[0] = -0;
    const before = Float32Array.from(out);
    addLowRank(out, fill(new Float32Array(n * r), 5), new Float32Array(r * dOut), n, r, dOut, 2);
    addLowRank(out, fill(new Float32Array(n * r), 6), fill(new Float32Array(r * dOut), 7), n, r, dOut, 0);
    expect(out).toEqual(before);
    expect(Object.is(out[0], -0)).toBe(true);
  });
});
