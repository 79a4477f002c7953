// Child process of test/quant/decode-q8.test.ts (run with --experimental-wasm-relaxed-simd on Node 20): the
// relaxed-SIMD build's decodeActivations: "q8_0" kernels (dist/) against the float64 model of llama.cpp's
// arithmetic. Prints one JSON line: { backend, cases, worst } with worst = max |out − model| / bound (≤ 1 passes).

import { configureKernels, decodeF16, kernelInfo, matmul, quantizeMatrix } from "../../dist/src/index.js";
import { ggmlDotModel } from "./ggml-dot-model.mjs";

let state = 9;
const rand = (len) =>
  Float32Array.from({ length: len }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
configureKernels({ decodeActivations: "q8_0" });
const result = { backend: kernelInfo().backend, cases: 0, worst: 0 };
for (const type of ["q8_0", "q4_0"])
  for (const [n, dIn, dOut] of [
    [1, 96, 5],
    [2, 288, 17],
    [3, 4096, 33],
  ]) {
    const w = quantizeMatrix({ data: rand(dOut * dIn), rows: dOut, cols: dIn }, type, { layout: "out_in" });
    const x = rand(n * dIn);
    const c = matmul({ data: x, rows: n, cols: dIn }, w).data;
    const ref = ggmlDotModel(x, w, n, dIn, dOut, undefined, { quantizeMatrix, decodeF16 });
    for (let i = 0; i < c.length; i++) result.worst = Math.max(result.worst, Math.abs(c[i] - ref.h[i]) / ref.bound[i]);
    result.cases++;
  }
console.log(JSON.stringify(result));
