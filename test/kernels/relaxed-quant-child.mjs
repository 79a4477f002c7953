// Child process of test/quant/relaxed.test.ts (run with --experimental-wasm-relaxed-simd on Node 20): the relaxed
// SIMD build's quantized products (dist/) against a float64 reference on the dequantized weight, and the packed
// path (n ≥ 4) against the float32 GEMM on the dequantized weight bit for bit. Prints one JSON line:
// { backend, cases, worst, identical } with worst = max |out − ref| / bound (≤ 1 passes).

import { dequantizeMatrix, kernelInfo, matmul, quantizeMatrix } from "../../dist/src/index.js";

let state = 5;
const rand = (len) =>
  Float32Array.from({ length: len }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
const U = 2 ** -24;
const result = { backend: kernelInfo().backend, cases: 0, worst: 0, identical: true };
for (const type of ["q8_0", "q4_0"])
  for (const layout of ["in_out", "out_in"])
    for (const [n, free, blocks] of [
      [1, 5, 96],
      [2, 33, 64],
      [3, 17, 288],
      [6, 33, 96], // ≥ 4096 multiply-adds, so the float32 product runs WebAssembly too
    ]) {
      const [dIn, dOut] = layout === "in_out" ? [free, blocks] : [blocks, free];
      const [rows, cols] = layout === "in_out" ? [dIn, dOut] : [dOut, dIn];
      const q = quantizeMatrix({ data: rand(rows * cols), rows, cols }, type, { layout });
      const wd = dequantizeMatrix(q).data;
      const x = rand(n * dIn);
      const c = matmul({ data: x, rows: n, cols: dIn }, q).data;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < dOut; j++) {
          let s = 0;
          let g = 0;
          for (let p = 0; p < dIn; p++) {
            const w = layout === "in_out" ? wd[p * dOut + j] : wd[j * dIn + p];
            s += x[i * dIn + p] * w;
            g += Math.abs(x[i * dIn + p] * w);
          }
          const bound = 2 * U * (dIn + 2) * g + U * Math.abs(s);
          result.worst = Math.max(
            result.worst,
            bound > 0 ? Math.abs(c[i * dOut + j] - s) / bound : c[i * dOut + j] === s ? 0 : Infinity,
          );
        }
      if (n >= 4) {
        const f = matmul(
          { data: x, rows: n, cols: dIn },
          { data: wd, rows, cols },
          { transB: layout === "out_in" },
        ).data;
        for (let i = 0; i < f.length; i++) if (!Object.is(f[i], c[i])) result.identical = false;
      }
      result.cases++;
    }
console.log(JSON.stringify(result));
