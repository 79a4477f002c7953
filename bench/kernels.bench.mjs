// Kernel benchmark: float32 plain matmul, unmerged LoRA (fused), merged LoRA and the merge itself, lorakit on 1 and
// 2 threads beside a nested-array loop, a Float32Array loop, TensorFlow.js (cpu and wasm backends) and numpy.
// Every kernel's output is first checked against a float64 reference on sampled rows (all columns) with the
// bound of test/helpers/close.ts; a kernel that fails is reported WRONG and not timed. Times are the minimum of a
// few repetitions (few for the big shapes so the whole run takes minutes on 2 cores). Prints markdown.
// Needs `npm run build` first (npm run bench does it). Options: --quick (small shapes only).

import { createRequire } from "node:module";
import { availableParallelism, loadavg } from "node:os";
import { dirname } from "node:path";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { configureKernels, kernelFloat32Array, kernelInfo, loraForward, matmul } from "../dist/src/index.js";
import { gemm } from "../dist/src/kernels/select.js";
import { loopMatmul, nestedMatmul, numpyRun, SLOW_LIMIT, tfjsRun } from "./baselines.mjs";
import { describeCeiling, measureCeiling } from "./ceiling.mjs";
import { best, isClose, rand, record, refRows, results } from "./common.mjs";

const quick = process.argv.includes("--quick");
// [n, dIn, dOut, r, repetitions]
const SHAPES = [
  [1, 2, 2, 1, 20],
  [1, 4096, 4096, 16, 20],
  [128, 1024, 1024, 8, 10],
  [512, 2048, 2048, 16, 5],
  [2048, 4096, 4096, 16, 3],
  [512, 4096, 11008, 64, 3],
].filter((s) => !quick || s[0] * s[1] * s[2] <= 2 ** 28);

const shapes = SHAPES.map((shape) => {
  const [n, dIn, dOut, r] = shape;
  const x = rand(n * dIn);
  const w = rand(dIn * dOut);
  const down = rand(dIn * r);
  const up = rand(r * dOut);
  const s = 2 / r;
  const rows = Math.min(n, 4);
  const ref0 = refRows(x, w, down, up, 0, dIn, dOut, r, rows);
  const refL = refRows(x, w, down, up, s, dIn, dOut, r, rows);
  const flops = 2 * n * dIn * dOut;
  const flopsL = flops + 2 * n * dIn * r + 2 * n * r * dOut;
  const flopsOf = { matmul: flops, lora: flopsL, merged: flops, merge: 2 * dIn * r * dOut };
  return { shape, x, w, down, up, s, rows, ref0, refL, flops, flopsL, flopsOf };
});

const ceiling = await measureCeiling();
const info = kernelInfo();
for (const sh of shapes) {
  const [n, dIn, dOut, r, reps] = sh.shape;
  const { x, w, down, up, s, rows, ref0, refL, flops, flopsL } = sh;
  const X = { data: x, rows: n, cols: dIn };
  const W = { data: w, rows: dIn, cols: dOut };
  const D = { data: down, rows: dIn, cols: r };
  const U = { data: up, rows: r, cols: dOut };
  const out = new Float32Array(n * dOut);
  const merged = new Float32Array(w.length);
  const merge = () => {
    merged.set(w);
    return gemm(merged, down, up, dIn, r, dOut, false, false, s, 1); // W + s·down·up
  };
  for (const threads of [1, 2]) {
    configureKernels({ threads });
    const mm = () => matmul(X, W, { out, threads }).data;
    const lora = () => loraForward(X, W, D, U, s * r, { out }).data;
    const mergedMm = () => matmul(X, { data: merged, rows: dIn, cols: dOut }, { out, threads }).data;
    record(
      sh.shape,
      "lorakit",
      "matmul",
      threads,
      () => isClose(mm(), ref0, dIn, r),
      () => best(mm, reps),
      flops,
    );
    record(
      sh.shape,
      "lorakit",
      "lora",
      threads,
      () => isClose(lora(), refL, dIn, r),
      () => best(lora, reps),
      flopsL,
    );
    merge();
    record(
      sh.shape,
      "lorakit",
      "merged",
      threads,
      () => isClose(mergedMm(), refL, dIn, r),
      () => best(mergedMm, reps),
      flops,
    );
    record(
      sh.shape,
      "lorakit",
      "merge",
      threads,
      () => true,
      () => best(merge, reps),
      2 * dIn * r * dOut,
    );
  }
  // weights (W, down, up, merged W) and out allocated in the kernel memory once: used in place, not copied per call
  if (n * dIn * dOut > 8) {
    const res = (a) => {
      const r0 = kernelFloat32Array(a.length);
      r0.set(a);
      return r0;
    };
    const RW = { data: res(w), rows: dIn, cols: dOut };
    const RD = { data: res(down), rows: dIn, cols: r };
    const RU = { data: res(up), rows: r, cols: dOut };
    const RM = { data: res(merged), rows: dIn, cols: dOut };
    const rout = kernelFloat32Array(n * dOut);
    // the same weight stored [dOut, dIn] (PyTorch / PEFT layout), multiplied with transB
    const wt = kernelFloat32Array(dIn * dOut);
    for (let p = 0; p < dIn; p++) for (let j = 0; j < dOut; j++) wt[j * dIn + p] = w[p * dOut + j];
    const RWT = { data: wt, rows: dOut, cols: dIn };
    for (const threads of [1, 2]) {
      configureKernels({ threads });
      const mmT = () => matmul(X, RWT, { out: rout, threads, transB: true }).data;
      record(
        sh.shape,
        "lorakit, resident Wᵀ [dOut, dIn]",
        "matmul",
        threads,
        () => isClose(mmT(), ref0, dIn, r),
        () => best(mmT, reps),
        flops,
      );
      const mm = () => matmul(X, RW, { out: rout, threads }).data;
      const lora = () => loraForward(X, RW, RD, RU, s * r, { out: rout }).data;
      const mergedMm = () => matmul(X, RM, { out: rout, threads }).data;
      const sys = "lorakit, resident W";
      record(
        sh.shape,
        sys,
        "matmul",
        threads,
        () => isClose(mm(), ref0, dIn, r),
        () => best(mm, reps),
        flops,
      );
      record(
        sh.shape,
        sys,
        "lora",
        threads,
        () => isClose(lora(), refL, dIn, r),
        () => best(lora, reps),
        flopsL,
      );
      record(
        sh.shape,
        sys,
        "merged",
        threads,
        () => isClose(mergedMm(), refL, dIn, r),
        () => best(mergedMm, reps),
        flops,
      );
    }
  }
  configureKernels();
  if (n * dIn * dOut <= 8) {
    // the mission-sized call: per-call latency after warm-up (typed and nested)
    const k = 200_000;
    for (let i = 0; i < 1000; i++) loraForward(X, W, D, U, s * r);
    let t0 = performance.now();
    for (let i = 0; i < k; i++) loraForward(X, W, D, U, s * r);
    results.push({
      shape: sh.shape,
      system: "lorakit",
      op: "call µs",
      threads: 1,
      us: ((performance.now() - t0) / k) * 1e3,
    });
    const nx = [[...x]];
    const nw = [[...w.slice(0, 2)], [...w.slice(2)]];
    const nd = [[down[0]], [down[1]]];
    const nu = [[...up]];
    t0 = performance.now();
    for (let i = 0; i < k / 4; i++) loraForward(nx, nw, nd, nu, s * r);
    results.push({
      shape: sh.shape,
      system: "lorakit nested",
      op: "call µs",
      threads: 1,
      us: ((performance.now() - t0) / (k / 4)) * 1e3,
    });
  }
  if (n * dIn * dOut <= SLOW_LIMIT) {
    const xa = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * dIn, (i + 1) * dIn)));
    const wa = Array.from({ length: dIn }, (_, p) => Array.from(w.subarray(p * dOut, (p + 1) * dOut)));
    const nm = () => nestedMatmul(xa, wa);
    record(
      sh.shape,
      "nested-array loop",
      "matmul",
      1,
      () => isClose(nm().slice(0, rows).flat(), ref0, dIn, r),
      () => best(nm, 1),
      flops,
    );
    const lm = () => loopMatmul(out, x, w, n, dIn, dOut);
    record(
      sh.shape,
      "Float32Array loop",
      "matmul",
      1,
      () => isClose(lm(), ref0, dIn, r),
      () => best(lm, 1),
      flops,
    );
  }
}

const require = createRequire(import.meta.url);
setWasmPaths(`${dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"))}/`);
await tfjsRun("wasm", shapes);
await tfjsRun("cpu", shapes);
const core1 = numpyRun(shapes, 1);
const core2 = numpyRun(shapes, 2);

// ---- report
const fmt = (v) => (v === undefined ? "—" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const get = (shape, system, op, threads) =>
  results.find((x) => x.shape === shape && x.system === system && x.op === op && x.threads === threads);
const cell = (e) => (!e ? "—" : e.wrong ? "WRONG" : fmt(e.gflops));
console.log(`## Kernels: ${process.version} ${process.execArgv.join(" ")}`.trim());
console.log(
  `\nlorakit backend: ${info.backend}; cores: ${availableParallelism()}; load average (1, 5, 15 min) at the end: ${loadavg()
    .map((v) => v.toFixed(1))
    .join(
      " ",
    )}; numpy OpenBLAS core: ${core1 ?? "numpy not available"}${core2 && core2 !== core1 ? ` / ${core2}` : ""}.`,
);
console.log(
  "GFLOP/s (each op's own FLOPs; min time of the repetitions). 1t / 2t = threads. — = not run. Ratios below use lorakit with resident W where measured.\n",
);
console.log(`${describeCeiling(ceiling).join("\n")}\n`);
for (const sh of shapes) {
  const shape = sh.shape;
  console.log(`### (n, dIn, dOut, r) = (${shape.slice(0, 4).join(", ")})\n`);
  console.log(
    "| system | matmul 1t | matmul 2t | LoRA unmerged 1t | LoRA unmerged 2t | LoRA merged 1t | LoRA merged 2t | merge 1t | merge 2t |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const system of [
    "lorakit",
    "lorakit, resident W",
    "lorakit, resident Wᵀ [dOut, dIn]",
    "numpy",
    "tfjs-wasm",
    "tfjs-cpu",
    "Float32Array loop",
    "nested-array loop",
  ]) {
    const row = ["matmul", "lora", "merged", "merge"].flatMap((op) =>
      [1, 2].map((t) => cell(get(shape, system, op, t))),
    );
    if (row.every((c) => c === "—")) continue;
    console.log(`| ${system} | ${row.join(" | ")} |`);
  }
  const lines = [];
  for (const t of [1, 2]) {
    const lk = get(shape, "lorakit, resident W", "matmul", t) ?? get(shape, "lorakit", "matmul", t);
    const ll = get(shape, "lorakit, resident W", "lora", t) ?? get(shape, "lorakit", "lora", t);
    const np = get(shape, "numpy", "matmul", t);
    const nl = get(shape, "numpy", "lora", t);
    const tw = get(shape, "tfjs-wasm", "matmul", 1);
    const parts = [];
    if (lk?.gflops && lk.shape[0] > 1)
      parts.push(`matmul ${((100 * lk.gflops) / (t * ceiling.peakGflops)).toFixed(0)}% of the 128-bit peak`);
    if (lk?.s && lk.shape[0] === 1 && lk.shape[1] * lk.shape[2] >= 2 ** 20)
      parts.push(`matmul reads W at ${((4 * lk.shape[1] * lk.shape[2]) / lk.s / 1e9).toFixed(1)} GB/s`);
    if (lk?.s && ll?.s) parts.push(`lorakit LoRA overhead ${(ll.s / lk.s).toFixed(3)}×`);
    if (np?.s && nl?.s) parts.push(`numpy LoRA overhead ${(nl.s / np.s).toFixed(3)}×`);
    if (lk?.s && np?.s) parts.push(`matmul vs numpy ${(np.s / lk.s).toFixed(2)}×`);
    if (lk?.s && tw?.s) parts.push(`matmul vs tfjs-wasm (1 thread) ${(tw.s / lk.s).toFixed(2)}×`);
    lines.push(`- ${t} thread${t > 1 ? "s" : ""}: ${parts.join("; ")}`);
  }
  console.log(`\n${lines.join("\n")}`);
  const calls = results.filter((x) => x.shape === shape && x.op === "call µs");
  if (calls.length)
    console.log(`- per call after warm-up: ${calls.map((c) => `${c.system} ${c.us.toFixed(2)} µs`).join(", ")}`);
  console.log("");
}
if (results.some((x) => x.wrong)) {
  console.log("Some kernels failed the float64 check (WRONG) and were not timed.");
  process.exitCode = 1;
}
