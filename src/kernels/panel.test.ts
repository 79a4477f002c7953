// Pre-packed weights (panel.ts, assembly/panel.ts): packing round trips, and products on a packed b give exactly the
// bits of the same product on b unpacked (gemm / loraGemm), over 0, 1, odd and non-panel sizes, k across several KC
// blocks, m on every kernel path (GEMV m < 4, small-m 4..16, packed GEMM > 16), one and two threads, b in kernel
// memory or not; plus the float64 reference once, and the TypeScript fallback for tiny products.
import { describe, expect, it } from "vitest";
import { closeMismatch, gemmBound, U_F32 } from "../../test/helpers/close.js";
import { fill } from "../../test/helpers/random.js";
import { PANEL, packPanels, panelIndex, panelLength, unpackPanels } from "./panel.js";
import { gemmReference } from "./reference.js";
import { gemmScalar, loraGemmScalar } from "./scalar.js";
import {
  configureKernels,
  gemm,
  kernelFloat32Array,
  kernelInfo,
  loraGemm,
  panelGemm,
  WASM_MIN_MACS,
} from "./select.js";

function packed(w: Float32Array, k: number, n: number, transposed: boolean, resident: boolean): Float32Array {
  const dst = resident ? kernelFloat32Array(panelLength(k, n)) : new Float32Array(panelLength(k, n));
  return packPanels(dst, w, k, n, transposed);
}

describe("packPanels / unpackPanels", () => {
  it("put element (p, j) at panelIndex and zero the padding, from either source layout", () => {
    for (const [k, n] of [
      [0, 5],
      [3, 0],
      [1, 1],
      [5, 16],
      [7, 17],
      [4, 33],
    ] as const) {
      const w = fill(new Float32Array(k * n), k + n); // op(b) [k, n]
      const wt = new Float32Array(n * k); // b stored [n, k]
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) wt[j * k + p] = w[p * n + j]!;
      const a = packPanels(new Float32Array(panelLength(k, n)).fill(Number.NaN), w, k, n, false);
      const b = packPanels(new Float32Array(panelLength(k, n)), wt, k, n, true);
      expect(a).toEqual(b);
      expect(a.length).toBe(k * Math.ceil(n / PANEL) * PANEL);
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) expect(a[panelIndex(k, p, j)]).toBe(w[p * n + j]);
      expect(a.filter((v) => v !== 0 && !w.includes(v)).length).toBe(0); // padding is 0, never NaN
      expect(unpackPanels(a, k, n)).toEqual(w);
    }
  });
});

describe("panelGemm equals the product on the unpacked weight bit for bit", () => {
  it("runs in WebAssembly here", () => {
    expect(["wasm-simd", "wasm-relaxed-simd"]).toContain(kernelInfo().backend);
  });

  const shapes: [number, number, number][] = [];
  for (const m of [1, 2, 3, 4, 5, 8, 16, 17, 40])
    for (const [k, n] of [
      [300, 17],
      [7, 50],
      [513, 33],
      [64, 16],
      [257, 1],
    ] as const)
      if (m * k * n >= WASM_MIN_MACS) shapes.push([m, k, n]);
  shapes.push([8, 768, 1000], [1, 4096, 1030], [24, 600, 400]); // over THREAD_MIN_MACS: two threads split columns

  for (const threads of [1, 2])
    it(`${shapes.length} shapes (m, k, n), beta 0 and 1, ${threads} thread(s)`, () => {
      const before = configureKernels({ threads });
      try {
        for (const [m, k, n] of shapes) {
          const w = fill(new Float32Array(k * n), m + 7 * k + n);
          const x = fill(new Float32Array(m * k), m * k);
          const c0 = fill(new Float32Array(m * n), n);
          for (const resident of [true, false]) {
            const b = packed(w, k, n, false, resident);
            const want = gemm(new Float32Array(m * n), x, w, m, k, n, false, false, 1, 0);
            expect(panelGemm(new Float32Array(m * n), x, b, m, k, n)).toEqual(want);
            const acc = gemm(c0.slice(), x, w, m, k, n, false, false, 1, 1);
            expect(panelGemm(c0.slice(), x, b, m, k, n, 1)).toEqual(acc);
          }
        }
      } finally {
        configureKernels({ threads: before.threads });
      }
    });

  it("with the low-rank term fused (loraGemm), from a transposed [n, k] source too", () => {
    for (const [m, k, n, r] of [
      [1, 300, 17, 3],
      [3, 513, 33, 8],
      [8, 768, 48, 16],
      [17, 100, 40, 5],
      [20, 600, 40, 4], // more than 16 rows over three KC blocks: the first two read in place, the last copied with the term
    ] as const) {
      const wt = fill(new Float32Array(n * k), k); // stored [n, k]: op(b) = wtᵀ
      const x = fill(new Float32Array(m * k), m);
      const t = fill(new Float32Array(m * r), r);
      const up = fill(new Float32Array(r * n), n);
      const want = loraGemm(new Float32Array(m * n), x, wt, t, up, m, k, n, r, 0.5, undefined, true);
      const got = panelGemm(new Float32Array(m * n), x, packed(wt, k, n, true, true), m, k, n, 0, t, up, r, 0.5);
      expect(got).toEqual(want);
      // s = 0 or up = 0: the plain product
      const plain = gemm(new Float32Array(m * n), x, wt, m, k, n, false, true, 1, 0);
      const b = packed(wt, k, n, true, false);
      expect(panelGemm(new Float32Array(m * n), x, b, m, k, n, 0, t, up, r, 0)).toEqual(plain);
      expect(panelGemm(new Float32Array(m * n), x, b, m, k, n, 0, t, new Float32Array(r * n), r, 2)).toEqual(plain);
    }
  });

  it("is within the float32 bound of the float64 reference (m = 8, k over three KC blocks)", () => {
    const [m, k, n] = [8, 700, 45];
    const w = fill(new Float32Array(k * n), 11);
    const x = fill(new Float32Array(m * k), 12);
    const want = new Float64Array(m * n);
    const gauge = new Float64Array(m * n);
    gemmReference(want, gauge, x, w, m, k, n);
    const got = panelGemm(new Float32Array(m * n), x, packed(w, k, n, false, true), m, k, n);
    expect(closeMismatch(got, want, { bound: gemmBound(U_F32, k, gauge, want), shape: [m, n] })).toBeNull();
  });

  it("tiny products run the TypeScript kernels on the unpacked weight", () => {
    const [m, k, n, r] = [2, 5, 7, 2];
    expect(m * k * n).toBeLessThan(WASM_MIN_MACS);
    const w = fill(new Float32Array(k * n), 21);
    const x = fill(new Float32Array(m * k), 22);
    const t = fill(new Float32Array(m * r), 23);
    const up = fill(new Float32Array(r * n), 24);
    const b = packed(w, k, n, false, false);
    expect(panelGemm(new Float32Array(m * n), x, b, m, k, n)).toEqual(
      gemmScalar(new Float32Array(m * n), x, w, m, k, n, false, false, 1, 0),
    );
    expect(panelGemm(new Float32Array(m * n), x, b, m, k, n, 0, t, up, r, 3)).toEqual(
      loraGemmScalar(new Float32Array(m * n), x, w, t, up, m, k, n, r, 3, false),
    );
  });
});
