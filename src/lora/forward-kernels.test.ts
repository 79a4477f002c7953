// loraForward on the selected kernels: the fused WebAssembly path (and the TypeScript path) against the float64
// LoRA reference, thread invariance, and the exact-zero guarantee (alpha = 0, down = 0 or up = 0 ⇒ h is
// bit-identical to x·W from matmul).

import { afterEach, describe, expect, it } from "vitest";
import { expectClose, loraBound, U_F32 } from "../../test/helpers/close.js";
import { loraReference } from "../kernels/reference.js";
import { configureKernels, kernelInfo } from "../kernels/select.js";
import { loraForward } from "./forward.js";
import { matmul } from "./matmul.js";

let state = 3;
function rand(len: number): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    a[i] = (state / 2 ** 32) * 2 - 1;
  }
  return a;
}

const m = (data: Float32Array, rows: number, cols: number) => ({ data, rows, cols });
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

afterEach(() => {
  configureKernels();
});

describe.each(["auto", "typescript"] as const)("loraForward, backend %s", (backend) => {
  it.each([
    [1, 2, 2, 1],
    [1, 300, 77, 4],
    [9, 260, 70, 3],
    [64, 300, 260, 8],
  ])("n %i, dIn %i, dOut %i, r %i matches the float64 reference", (n, dIn, dOut, r) => {
    configureKernels({ backend });
    const x = rand(n * dIn);
    const w = rand(dIn * dOut);
    const down = rand(dIn * r);
    const up = rand(r * dOut);
    const alpha = 3;
    const s = alpha / r;
    const h = loraForward(m(x, n, dIn), m(w, dIn, dOut), m(down, dIn, r), m(up, r, dOut), alpha);
    const ref = loraReference(x, w, down, up, s, n, dIn, dOut, r);
    const bound = loraBound(U_F32, dIn, r, s, ref.gaugeBase, ref.gaugeLowRank, ref.h);
    expectClose(h.data, ref.h, { bound, shape: [n, dOut] });
    if (backend === "auto") {
      const one = configureKernels({ threads: 1 });
      expect(one.backend).toMatch(/^wasm-/);
      const h1 = loraForward(m(x, n, dIn), m(w, dIn, dOut), m(down, dIn, r), m(up, r, dOut), alpha);
      configureKernels({ threads: 2 });
      const h2 = loraForward(m(x, n, dIn), m(w, dIn, dOut), m(down, dIn, r), m(up, r, dOut), alpha);
      expect(bits(h2.data).equals(bits(h1.data))).toBe(true);
    }
  });

  it.each([
    [1, 2, 2, 1],
    [2, 700, 40, 4],
    [64, 300, 260, 8],
  ])("n %i, dIn %i, dOut %i, r %i: a zero low-rank term leaves h bit-identical to x·W", (n, dIn, dOut, r) => {
    configureKernels({ backend });
    const x = m(rand(n * dIn), n, dIn);
    // W with exact zeros and negative columns, so x·W has zeros whose sign could flip
    const wData = rand(dIn * dOut);
    for (let i = 0; i < wData.length; i += 3) wData[i] = 0;
    const w = m(wData, dIn, dOut);
    const base = bits(matmul(x, w).data);
    const down = m(rand(dIn * r), dIn, r);
    const up = m(rand(r * dOut), r, dOut);
    const zeroDown = m(new Float32Array(dIn * r).fill(-0), dIn, r);
    const zeroUp = m(new Float32Array(r * dOut), r, dOut);
    expect(bits(loraForward(x, w, down, up, 0).data).equals(base)).toBe(true);
    expect(bits(loraForward(x, w, zeroDown, up, 4).data).equals(base)).toBe(true);
    expect(bits(loraForward(x, w, down, zeroUp, -4).data).equals(base)).toBe(true);
  });
});

describe("kernel selection", () => {
  it("uses WebAssembly SIMD in Node and the TypeScript kernels on request", () => {
    const auto = kernelInfo();
    expect(auto.backend).toMatch(/^wasm-(relaxed-)?simd$/);
    expect(auto.maxThreads).toBeGreaterThan(1);
    expect(configureKernels({ backend: "typescript" })).toEqual({ backend: "typescript", threads: 1, maxThreads: 1 });
    expect(configureKernels({ threads: 1 }).threads).toBe(1);
  });
});
