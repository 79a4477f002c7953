// Every GEMM kernel (TypeScript f64/f32, WebAssembly SIMD with private and shared memory, threaded, relaxed SIMD
// where this engine validates it) against the float64 reference, over empty, tiny, odd and non-multiple-of-tile
// shapes (tile 2×16, KC 256, MC 128, NC 2048, GEMV strip 16384), both transposes, alpha/beta, and the fused k2 extension.

import { describe, expect, it } from "vitest";
import { expectClose, gemmBound, U_F32, U_F64 } from "../../test/helpers/close.js";
import { rowsMismatches } from "../../test/kernels/rows-match.mjs";
import type { KernelArray } from "./contract.js";
import { gemmReference } from "./reference.js";
import { gemmScalar } from "./scalar.js";
import { canRun, WasmGemm } from "./wasm/runtime.js";

let state = 12345;
function rand(len: number, Ctor: Float32ArrayConstructor | Float64ArrayConstructor): KernelArray {
  const a = new Ctor(len);
  for (let i = 0; i < len; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    a[i] = (state / 2 ** 32) * 4 - 2;
  }
  return a;
}

type Run = (
  out: KernelArray,
  a: KernelArray,
  b: KernelArray,
  m: number,
  k: number,
  n: number,
  tA: boolean,
  tB: boolean,
  alpha: number,
  beta: 0 | 1,
) => void;

interface Case {
  name: string;
  f32: boolean;
  run: Run;
}

const simd = WasmGemm.createSync("simd", false);
const simdShared = WasmGemm.createSync("simd", true);
const wasmRun =
  (w: WasmGemm, threads: number): Run =>
  (out, a, b, m, k, n, tA, tB, alpha, beta) =>
    w.gemm(out as Float32Array, a as Float32Array, b as Float32Array, m, k, n, tA, tB, alpha, beta, threads);

const KERNELS: Case[] = [
  {
    name: "typescript f64",
    f32: false,
    run: (o, a, b, m, k, n, tA, tB, al, be) => gemmScalar(o, a, b, m, k, n, tA, tB, al, be),
  },
  {
    name: "typescript f32",
    f32: true,
    run: (o, a, b, m, k, n, tA, tB, al, be) => gemmScalar(o, a, b, m, k, n, tA, tB, al, be),
  },
  { name: "wasm simd", f32: true, run: wasmRun(simd, 1) },
  { name: "wasm simd shared, 1 thread", f32: true, run: wasmRun(simdShared, 1) },
  { name: "wasm simd shared, 3 threads", f32: true, run: wasmRun(simdShared, 3) },
];
if (canRun("relaxed", true)) {
  KERNELS.push({
    name: "wasm relaxed simd, 2 threads",
    f32: true,
    run: wasmRun(WasmGemm.createSync("relaxed", true), 2),
  });
}

const SHAPES: [number, number, number][] = [
  [0, 3, 4],
  [3, 0, 4],
  [3, 4, 0],
  [1, 1, 1],
  [1, 5, 17],
  [2, 300, 9],
  [3, 7, 2],
  [4, 8, 8],
  [5, 9, 17],
  [9, 257, 33],
  [17, 64, 64],
  [130, 300, 70],
  [6, 40, 2100],
];

describe.each(KERNELS)("$name", ({ f32, run }) => {
  const Ctor = f32 ? Float32Array : Float64Array;
  const u = f32 ? U_F32 : U_F64;
  it.each(SHAPES)("op(a) [%i, %i] · op(b) [.., %i] matches the float64 reference, all transposes", (m, k, n) => {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const a = rand(m * k, Ctor);
        const b = rand(k * n, Ctor);
        const out = new Ctor(m * n).fill(Number.NaN);
        run(out, a, b, m, k, n, tA, tB, 1, 0);
        const ref = new Float64Array(m * n);
        const gauge = new Float64Array(m * n);
        gemmReference(ref, gauge, a, b, m, k, n, tA, tB);
        expectClose(out, ref, { bound: gemmBound(u, k, gauge, ref), shape: [m, n] });
      }
    }
  });

  it("accumulates with beta = 1 and scales by alpha; returns out, leaves inputs unchanged", () => {
    const [m, k, n] = [7, 37, 21];
    const a = rand(m * k, Ctor);
    const b = rand(k * n, Ctor);
    const a0 = a.slice();
    const b0 = b.slice();
    const out = rand(m * n, Ctor);
    const start = Float64Array.from(out);
    run(out, a, b, m, k, n, false, true, -0.5, 1);
    const ref = new Float64Array(m * n);
    const gauge = new Float64Array(m * n);
    gemmReference(ref, gauge, a, b, m, k, n, false, true);
    const want = ref.map((v, i) => start[i]! - 0.5 * v);
    const bound = gemmBound(
      u,
      k + 2,
      gauge.map((g, i) => 0.5 * g + Math.abs(start[i]!)),
      want,
    );
    expectClose(out, want, { bound, shape: [m, n] });
    expect(a).toEqual(a0);
    expect(b).toEqual(b0);
  });
});

describe("wasm k2 extension (fused low-rank term)", () => {
  it.each([
    [1, 40, 33, 3],
    [5, 300, 70, 16],
    [130, 256, 24, 1],
    [4, 0, 9, 2],
  ])("[op(a) | a2]·[op(b) ; b2] for m %i, k %i, n %i, k2 %i", (m, k, n, k2) => {
    const a = rand(m * k, Float32Array) as Float32Array;
    const b = rand(k * n, Float32Array) as Float32Array;
    const a2 = rand(m * k2, Float32Array) as Float32Array;
    const b2 = rand(k2 * n, Float32Array) as Float32Array;
    const out = new Float32Array(m * n);
    simdShared.gemm(out, a, b, m, k, n, false, false, 1, 0, 2, a2, b2, k2);
    const ref = new Float64Array(m * n);
    const gauge = new Float64Array(m * n);
    const ref2 = new Float64Array(m * n);
    const gauge2 = new Float64Array(m * n);
    gemmReference(ref, gauge, a, b, m, k, n);
    gemmReference(ref2, gauge2, a2, b2, m, k2, n);
    const want = ref.map((v, i) => v + ref2[i]!);
    const bound = gemmBound(
      U_F32,
      k + k2,
      gauge.map((g, i) => g + gauge2[i]!),
      want,
    );
    expectClose(out, want, { bound, shape: [m, n] });
  });

  it("an exactly-zero extension leaves out bit-identical to the plain product", () => {
    const [m, k, n, k2] = [9, 520, 40, 8];
    const a = rand(m * k, Float32Array) as Float32Array;
    const b = rand(k * n, Float32Array) as Float32Array;
    const plain = simd.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0);
    const a2 = new Float32Array(m * k2).fill(-0);
    const b2 = rand(k2 * n, Float32Array) as Float32Array;
    expect(simd.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0, 1, a2, b2, k2)).toEqual(plain);
    const a3 = rand(m * k2, Float32Array) as Float32Array;
    const zeroUp = new Float32Array(k2 * n);
    expect(simd.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0, 1, a3, zeroUp, k2)).toEqual(plain);
  });
});

describe("wasm rows m < 4 (unpacked GEMV paths) and 4 <= m <= 16 (small-m path)", () => {
  // The GEMV paths (b as stored, and bᵀ from a [n, k] array) and the small-m path must give each row the packed
  // path's bits: the same per-element summation order, k2 extension and alpha/beta combine. The packed path runs
  // for m > 16.
  it.each([
    [1, 1, 0],
    [9, 300, 0],
    [17, 513, 3],
    [40, 257, 16],
    [7, 8, 1],
    [70, 40, 2], // column tails of 2 (b as stored) and 6 (bᵀ)
    [3, 20, 0],
    [16400, 9, 2], // wider than one 16384-column GEMV strip
  ])("n %i, k %i, k2 %i: rows of an m = 20 product equal m = 1..3, 4, 9, 16 products bit for bit", (n, k, k2) => {
    for (const w of GEMV_BUILDS)
      expect(rowsMismatches(w, n, k, k2, (len) => rand(len, Float32Array) as Float32Array)).toEqual([]);
  });
});

describe("wasm small-m path (4 <= m <= 16, batched decode)", () => {
  // b packed one 16-column strip at a time (gemmSmall in gemm.ts), columns split across threads; odd m (a half
  // register tile), n not a multiple of 16 or 8 (edge tiles), k = 0 / 1 / past one 256-deep block, and the k2 term.
  const builds: [string, WasmGemm, number][] = [
    ["simd", simd, 1],
    ["simd shared, 3 threads", simdShared, 3],
  ];
  it.each([
    [4, 1, 1, 0],
    [5, 0, 7, 2],
    [7, 3, 17, 1],
    [8, 768, 40, 16],
    [9, 257, 33, 3],
    [13, 300, 70, 0],
    [16, 513, 24, 8],
    [16, 64, 2100, 4],
  ])("m %i, k %i, n %i, k2 %i matches the float64 reference, b as stored and transposed", (m, k, n, k2) => {
    for (const [, w, threads] of builds) {
      for (const tB of [false, true]) {
        const a = rand(m * k, Float32Array) as Float32Array;
        const b = rand(k * n, Float32Array) as Float32Array;
        const a2 = rand(m * k2, Float32Array) as Float32Array;
        const b2 = rand(k2 * n, Float32Array) as Float32Array;
        const out = new Float32Array(m * n).fill(Number.NaN);
        w.gemm(out, a, b, m, k, n, false, tB, 1, 0, threads, a2, b2, k2);
        const ref = new Float64Array(m * n);
        const gauge = new Float64Array(m * n);
        const ref2 = new Float64Array(m * n);
        const gauge2 = new Float64Array(m * n);
        gemmReference(ref, gauge, a, b, m, k, n, false, tB);
        gemmReference(ref2, gauge2, a2, b2, m, k2, n);
        const want = ref.map((v, i) => v + ref2[i]!);
        const bound = gemmBound(
          U_F32,
          k + k2,
          gauge.map((g, i) => g + gauge2[i]!),
          want,
        );
        expectClose(out, want, { bound, shape: [m, n] });
      }
    }
  });
});

// The plain build, and the relaxed one where this engine runs it (Node 22+; on Node 20 relaxed-child.mjs checks it).
const GEMV_BUILDS = canRun("relaxed", false) ? [simd, WasmGemm.createSync("relaxed", false)] : [simd];

describe("threads", () => {
  it.each([
    [1, 700, 333],
    [2, 64, 100],
    [130, 300, 517],
    [33, 1, 48],
  ])("m %i, k %i, n %i: every thread count gives bit-identical results", (m, k, n) => {
    for (const [tA, tB] of [
      [false, false],
      [true, true],
    ] as const) {
      const a = rand(m * k, Float32Array) as Float32Array;
      const b = rand(k * n, Float32Array) as Float32Array;
      const one = simdShared.gemm(new Float32Array(m * n), a, b, m, k, n, tA, tB, 1, 0, 1);
      for (const t of [2, 3, 4]) {
        const many = simdShared.gemm(new Float32Array(m * n), a, b, m, k, n, tA, tB, 1, 0, t);
        expect(Buffer.from(many.buffer).equals(Buffer.from(one.buffer))).toBe(true);
      }
      // the private-memory build runs the same arithmetic
      const priv = simd.gemm(new Float32Array(m * n), a, b, m, k, n, tA, tB, 1, 0);
      expect(Buffer.from(priv.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    }
  });
});

describe("resident operands", () => {
  it("reads and writes arrays inside the kernel memory in place, with the same bits as copied operands", () => {
    const w = WasmGemm.createSync("simd", true);
    const [m, k, n] = [5, 300, 40];
    const a = rand(m * k, Float32Array) as Float32Array;
    const b = rand(k * n, Float32Array) as Float32Array;
    const copied = w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0, 2);
    const ra = w.allocResident(m * k)!;
    const rb = w.allocResident(k * n)!;
    const rout = w.allocResident(m * n)!;
    ra.set(a);
    rb.set(b);
    expect(w.gemm(rout, ra, rb, m, k, n, false, false, 1, 0, 2)).toBe(rout);
    expect(rout).toEqual(copied);
    // a resident array stays valid after the memory grows
    w.gemm(
      new Float32Array(300 * 300),
      rand(300 * 300, Float32Array) as Float32Array,
      rb.subarray(0, 0),
      300,
      0,
      300,
      false,
      false,
      1,
      0,
    );
    w.allocResident(1 << 22);
    expect(w.gemm(new Float32Array(m * n), ra, rb, m, k, n, false, false, 1, 0, 1)).toEqual(copied);
    expect(simd.allocResident(4)).toBeNull();
    w.close();
  });
});
