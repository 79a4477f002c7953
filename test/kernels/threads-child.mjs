// Child of src/kernels/wasm/host-flags.test.ts, run under the host flags being tested (--input-type=module from
// stdin or NODE_OPTIONS, the permission model): a threaded float32 product through the public API must equal the
// single-threaded one, and (unless threads are expected off) a fresh pool's worker must start. Prints one JSON line.
// Run from stdin it finds dist/ through LORAKIT_DIST (a file URL of dist/src/).
const dist = new URL(process.env.LORAKIT_DIST ?? new URL("../../dist/src/", import.meta.url).href);
const { configureKernels, kernelInfo, matmul } = await import(new URL("index.js", dist).href);
const { WasmGemm } = await import(new URL("kernels/wasm/runtime.js", dist).href);

const n = 256; // 256³ multiply-adds: above THREAD_MIN_MACS, so the product goes to the pool
const a = { data: Float32Array.from({ length: n * n }, (_, i) => ((i * 7) % 13) - 6), rows: n, cols: n };
configureKernels({ threads: 1 });
const one = matmul(a, a).data;
configureKernels({ threads: 2 });
const two = matmul(a, a).data;
const again = matmul(a, a).data;
const same = one.every((v, i) => Object.is(v, two[i]) && Object.is(v, again[i]));
// exact in float32: every product and partial sum is an integer below 2^24
let exact = true;
for (let i = 0; i < n && exact; i += 37)
  for (let j = 0; j < n; j += 41) {
    let s = 0;
    for (let p = 0; p < n; p++) s += a.data[i * n + p] * a.data[p * n + j];
    if (s !== one[i * n + j]) exact = false;
  }
const w = WasmGemm.createSync("simd", true);
const pool = w.poolOf(1);
const ready = pool ? pool.waitReady(1, 30_000).length : 0;
w.close();
console.log(JSON.stringify({ same, exact, info: kernelInfo(), ready, threadError: w.threadError }));
