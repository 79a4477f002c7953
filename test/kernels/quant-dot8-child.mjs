// Child process of test/quant/decode-q8.test.ts (run with --experimental-wasm-relaxed-simd on Node 20): the relaxed
// build's opt-in Q4_0 decode (quant-dot.ts) on its own instance, once on the path the instance picks (the 8-bit dot
// product where the engine computes it as specified) and once forced onto the 16-bit path. Both give exact integer
// block sums, so every output bit must agree. Prints one JSON line: { dot8, cases, identical }.

import { quantizeMatrix } from "../../dist/src/index.js";
import { wasmBytes } from "../../dist/src/kernels/wasm/runtime.js";

function instance() {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 32768 });
  const module = new WebAssembly.Module(wasmBytes("relaxed", false));
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  memory.grow(400); // 25 MiB
  return { e: exports, memory };
}

let state = 17;
const rand = (len) =>
  Float32Array.from({ length: len }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
const OFF = { x: 1 << 20, out: 2 << 20, work: 3 << 20, w: 12 << 20 };
// out [n, dOut] = x [n, dIn] · wᵀ, w Q4_0 stored [dOut, dIn] (transB = 1, Q4_0 = 2 << 1, opt-in = 16)
function run({ e, memory }, x, w, n, dIn, dOut) {
  new Float32Array(memory.buffer, OFF.x, n * dIn).set(x);
  new Uint8Array(memory.buffer, OFF.w, w.bytes.length).set(w.bytes);
  e.gemm(OFF.out, OFF.x, OFF.w, n, dIn, dOut, 0, 1 | 4 | 16, 1, 0, 0, 0, 0, 0, dOut, OFF.work);
  return new Float32Array(memory.buffer, OFF.out, n * dOut).slice();
}

const auto = instance();
const forced = instance();
const dot8 = auto.e.quantDot8(OFF.work, 0);
forced.e.quantDot8(OFF.work, 1);
const result = { dot8, cases: 0, identical: true };
for (const [n, dIn, dOut] of [
  [1, 32, 3],
  [1, 96, 5],
  [2, 160, 17],
  [3, 288, 9],
  [1, 4096, 33],
]) {
  // the extremes too: nibbles 0 and 15, and x's quants ±127 (each block's largest |x|)
  const data = rand(dOut * dIn);
  for (let i = 0; i < data.length; i += 7) data[i] = i % 2 ? 1 : -1;
  const w = quantizeMatrix({ data, rows: dOut, cols: dIn }, "q4_0", { layout: "out_in" });
  const x = rand(n * dIn);
  const a = run(auto, x, w, n, dIn, dOut);
  const b = run(forced, x, w, n, dIn, dOut);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) result.identical = false;
  result.cases++;
}
console.log(JSON.stringify(result));
