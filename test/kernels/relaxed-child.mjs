// Child process of relaxed.test.ts: run with `node --experimental-wasm-relaxed-simd` on Node 20 (relaxed SIMD is on
// by default from Node 22). Checks the built relaxed-SIMD kernels (dist/) against the float64 reference and the
// thread-count invariance, and that rows computed by the unpacked m < 4 paths and the small-m path (4 ≤ m ≤ 16)
// carry the packed path's bits (relaxed builds fuse multiply-adds, so every product must take the same fused step on
// every path). Prints one JSON line:
// { build, cases, worst, identical, rowsIdentical }.
// worst = max over elements of |out − ref| / bound, so worst ≤ 1 means every element is within its bound.

import { gemmReference } from "../../dist/src/kernels/reference.js";
import { canRun, WasmGemm } from "../../dist/src/kernels/wasm/runtime.js";
import { rowsMismatches } from "./rows-match.mjs";

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
  // rows computed with m < 4 (GEMV paths) and 4..16 (small-m path) against the packed path's, column tails included (rows-match.mjs)
  for (const [n, k, k2] of [
    [70, 300, 3],
    [9, 257, 0],
    [3, 40, 2],
  ]) {
    if (rowsMismatches(priv, n, k, k2, rand).length > 0) result.rowsIdentical = false;
  }
  shared.close();
}
console.log(JSON.stringify(result));
