// Child process of relaxed.test.ts: run with `node --experimental-wasm-relaxed-simd` on Node 20 (relaxed SIMD is on
// by default from Node 22). Checks the built relaxed-SIMD kernels (dist/) against the float64 reference and the
// thread-count invariance, and that rows computed by the unpacked m < 4 paths carry the packed path's bits (relaxed
// builds fuse multiply-adds, so every product must take the same fused step on every path). Prints one JSON line:
// { build, cases, worst, identical, rowsIdentical }.
// worst = max over elements of |out − ref| / bound, so worst ≤ 1 means every element is within its bound.

import { gemmReference } from "../../dist/src/kernels/reference.js";
import { canRun, WasmGemm } from "../../dist/src/kernels/wasm/runtime.js";

let state = 99;
const rand = (len) =>
  Float32Array.from({ length: len }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 4 - 2;
  });
const U = 2 ** -24;
const result = {
  build: canRun("relaxed", true) ? "relaxed" : "unavailable",
  cases: 0,
  worst: 0,
  identical: true,
  rowsIdentical: true,
};
if (result.build === "relaxed") {
  const shared = WasmGemm.createSync("relaxed", true);
  const priv = WasmGemm.createSync("relaxed", false);
  const shapes = [
    [1, 1, 1],
    [1, 300, 33],
    [3, 7, 2],
    [5, 9, 17],
    [9, 257, 33],
    [130, 300, 70],
    [0, 4, 4],
    [4, 0, 9],
  ];
  for (const [m, k, n] of shapes) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      const a = rand(m * k);
      const b = rand(k * n);
      const out = priv.gemm(new Float32Array(m * n).fill(Number.NaN), a, b, m, k, n, tA, tB, 1, 0);
      const ref = new Float64Array(m * n);
      const gauge = new Float64Array(m * n);
      gemmReference(ref, gauge, a, b, m, k, n, tA, tB);
      for (let i = 0; i < ref.length; i++) {
        const bound = 2 * U * k * gauge[i] + U * Math.abs(ref[i]);
        const err = Math.abs(out[i] - ref[i]);
        result.worst = Math.max(result.worst, bound === 0 ? (err === 0 ? 0 : Infinity) : err / bound);
        if (Number.isNaN(out[i])) result.worst = Infinity;
      }
      for (const t of [1, 2, 3]) {
        const o = shared.gemm(new Float32Array(m * n), a, b, m, k, n, tA, tB, 1, 0, t);
        if (!Buffer.from(o.buffer).equals(Buffer.from(out.buffer))) result.identical = false;
      }
      result.cases++;
    }
  }
  // rows of an m = 6 product (packed path) against the same rows computed 1–3 at a time (GEMV paths), with the
  // column tails of both GEMV paths (n mod 4 and n mod 8 non-zero), a k2 extension and beta = 1
  for (const [n, k, k2] of [
    [70, 300, 3],
    [9, 257, 0],
    [3, 40, 2],
  ]) {
    const m = 6;
    for (const tB of [false, true]) {
      const a = rand(m * k);
      const b = rand(k * n);
      const a2 = rand(m * k2);
      const b2 = rand(k2 * n);
      const start = rand(m * n);
      const full = priv.gemm(start.slice(), a, b, m, k, n, false, tB, -0.75, 1, 1, a2, b2, k2);
      for (const [i0, rows] of [
        [0, 1],
        [1, 3],
        [4, 2],
      ]) {
        const part = priv.gemm(
          start.slice(i0 * n, (i0 + rows) * n),
          a.slice(i0 * k, (i0 + rows) * k),
          b,
          rows,
          k,
          n,
          false,
          tB,
          -0.75,
          1,
          1,
          a2.slice(i0 * k2, (i0 + rows) * k2),
          b2,
          k2,
        );
        const want = full.slice(i0 * n, (i0 + rows) * n);
        if (!Buffer.from(part.buffer).equals(Buffer.from(want.buffer))) result.rowsIdentical = false;
      }
    }
  }
  shared.close();
}
console.log(JSON.stringify(result));
