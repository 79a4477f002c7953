// Quantized weights (Q8_0, Q4_0) against float32 in the same run: single-token decode 1×4096×4096 with an r = 16
// adapter (loraForward; weights resident in kernel memory, both storage layouts for the quantized ones), the opt-in
// llama.cpp arithmetic (configureKernels({ decodeActivations: "q8_0" }), out_in), and a 512×4096×4096 batch at Q8_0.
// Bytes of W read per second are set against the DRAM read bandwidth measured in the same run (bench/ceiling.mjs).
// Every kernel's output is checked before it is timed — against a float64 reference computed from the dequantized
// weight, or for the opt-in rows against the float64 model of ggml's arithmetic (test/kernels/ggml-dot-model.mjs) —
// and a wrong result is reported as WRONG and never timed.
// --cold reads a buffer of three times the last-level cache (768 MiB where its size is unknown) before every timed
// decode call, so every weight comes from DRAM, as in decoding a model larger than the cache; without it a 64 MiB
// float32 weight may be partly served from a large L3 between calls (this machine's is 260 MiB).
// Run: npm run build && node bench/quant.bench.mjs [--threads N] [--cold]   (one thread, warm, by default)

import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import {
  configureKernels,
  decodeF16,
  dequantizeMatrix,
  kernelBytes,
  kernelFloat32Array,
  kernelInfo,
  loraForward,
  quantizeMatrix,
} from "../dist/src/index.js";
import { ggmlDotModel } from "../test/kernels/ggml-dot-model.mjs";
import { describeCeiling, measureCeiling } from "./ceiling.mjs";
import { best, isClose, rand } from "./common.mjs";

const threadsArg = process.argv.indexOf("--threads");
const threads = threadsArg > 0 ? Number(process.argv[threadsArg + 1]) : 1;
configureKernels({ threads });
const ceiling = await measureCeiling();
const cold = process.argv.includes("--cold");

// The last-level cache's size (Linux sysfs), or null.
function lastLevelCache() {
  for (const index of [3, 2]) {
    try {
      const text = readFileSync(`/sys/devices/system/cpu/cpu0/cache/index${index}/size`, "utf8").trim();
      const m = /^(\d+)([KMG]?)$/.exec(text);
      if (m) return Number(m[1]) * { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[m[2]];
    } catch {}
  }
  return null;
}
const flushBytes = 3 * (lastLevelCache() ?? 256 * 2 ** 20);
const flushBuffer = cold ? new Float64Array(flushBytes / 8).fill(1) : null;
let flushSink = 0;
// reads every cache line of the flush buffer (evicting the weights from every cache level)
function flush() {
  let s = 0;
  for (let i = 0; i < flushBuffer.length; i += 8) s += flushBuffer[i];
  flushSink += s;
}
// the minimum over reps calls, each one after a flush
function bestCold(f, reps) {
  f();
  let t = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    flush();
    const t0 = performance.now();
    f();
    t = Math.min(t, performance.now() - t0);
  }
  return t / 1e3;
}

// float64 reference of rows [0, rows) of h = x·W + s·(x·down)·up, W given by at(p, j), with its gauge
function reference(x, at, down, up, s, dIn, dOut, r, rows) {
  const h = new Float64Array(rows * dOut);
  const g = new Float64Array(rows * dOut);
  for (let i = 0; i < rows; i++) {
    const t = new Float64Array(r);
    for (let p = 0; p < dIn; p++) for (let q = 0; q < r; q++) t[q] += x[i * dIn + p] * down[p * r + q];
    for (let j = 0; j < dOut; j++) {
      let v = 0;
      let a = 0;
      for (let p = 0; p < dIn; p++) {
        const w = at(p, j);
        v += x[i * dIn + p] * w;
        a += Math.abs(x[i * dIn + p] * w);
      }
      for (let q = 0; q < r; q++) {
        v += s * t[q] * up[q * dOut + j];
        a += 2 * Math.abs(s * t[q] * up[q * dOut + j]);
      }
      h[i * dOut + j] = v;
      g[i * dOut + j] = a;
    }
  }
  return { h, g };
}

const rows = [];
// Checks a case against the float64 reference (a wrong one is recorded and never timed) and returns its row, timed
// later by timeRounds: the cases of one shape are timed in interleaved rounds (best of each), so a change in the
// machine's load during the run affects float32 and the quantized weights alike.
// q8: run with decodeActivations "q8_0" (set around each call) and check against the model of ggml's arithmetic
function prepare(label, n, dIn, dOut, r, weight, at, bytesOfW, q8 = false) {
  const x = rand(n * dIn);
  const down = { data: rand(dIn * r), rows: dIn, cols: r };
  const up = { data: rand(r * dOut), rows: r, cols: dOut };
  const xm = { data: x, rows: n, cols: dIn };
  const out = new Float32Array(n * dOut);
  const product = () => loraForward(xm, weight, down, up, 2 * r, { out });
  const call = q8
    ? () => {
        configureKernels({ threads, decodeActivations: "q8_0" });
        product();
        configureKernels({ threads });
      }
    : product;
  call();
  const check = Math.min(n, 2);
  const row = { label, shape: `${n}×${dIn}×${dOut}, r=${r}`, n, dIn, dOut, bytesOfW, call, s: Infinity };
  if (q8) {
    const lr = { down: down.data, up: up.data, r, s: 2 };
    const m = ggmlDotModel(x, weight, check, dIn, dOut, lr, { quantizeMatrix, decodeF16 });
    for (let i = 0; i < m.h.length; i++) if (!(Math.abs(out[i] - m.h[i]) <= m.bound[i])) row.wrong = true;
  } else if (
    !isClose(out.subarray(0, check * dOut), reference(x, at, down.data, up.data, 2, dIn, dOut, r, check), dIn, r)
  )
    row.wrong = true;
  rows.push(row);
  return row;
}

function timeRounds(group, rounds, reps, timer = best) {
  for (let k = 0; k < rounds; k++)
    for (const row of group) if (!row.wrong) row.s = Math.min(row.s, timer(row.call, reps));
  for (const row of group) {
    if (row.wrong) continue;
    // bytes of W per second only where W is read once per call (decode); a batch re-reads it from cache
    row.gbs = row.n === 1 ? row.bytesOfW / row.s / 1e9 : null;
    row.flops = (2 * row.n * row.dIn * row.dOut) / row.s / 1e9;
  }
}

function quantized(type, layout, dIn, dOut) {
  const [r, c] = layout === "in_out" ? [dIn, dOut] : [dOut, dIn];
  const q = quantizeMatrix({ data: rand(r * c), rows: r, cols: c }, type, { layout });
  const bytes = kernelBytes(q.bytes.length);
  bytes.set(q.bytes);
  const wd = dequantizeMatrix(q).data;
  const at = layout === "in_out" ? (p, j) => wd[p * dOut + j] : (p, j) => wd[j * dIn + p];
  return { w: { ...q, bytes }, at, bytes: q.bytes.length };
}

function float32(dIn, dOut) {
  const data = kernelFloat32Array(dIn * dOut);
  data.set(rand(dIn * dOut));
  return { w: { data, rows: dIn, cols: dOut }, at: (p, j) => data[p * dOut + j], bytes: 4 * dIn * dOut };
}

const D = 4096;
const R = 16;
const f = float32(D, D);
const decode = [prepare("float32 (in_out)", 1, D, D, R, f.w, f.at, f.bytes)];
for (const type of ["q8_0", "q4_0"]) {
  for (const layout of ["out_in", "in_out"]) {
    const q = quantized(type, layout, D, D);
    decode.push(prepare(`${type} (${layout})`, 1, D, D, R, q.w, q.at, q.bytes));
    if (layout === "out_in")
      decode.push(prepare(`${type} (${layout}), x as Q8_0 (opt-in)`, 1, D, D, R, q.w, q.at, q.bytes, true));
  }
}
// warm: ~5 s, the minimum of 150 calls per case, robust to a shared machine; cold: 40 calls per case, each after
// a flush of ~0.1 s
if (cold) timeRounds(decode, 8, 5, bestCold);
else timeRounds(decode, 25, 6);
const q8 = quantized("q8_0", "out_in", D, D);
const q8b = quantized("q8_0", "in_out", D, D);
const batch = [
  prepare("float32 (in_out)", 512, D, D, R, f.w, f.at, f.bytes),
  prepare("q8_0 (out_in)", 512, D, D, R, q8.w, q8.at, q8.bytes),
  prepare("q8_0 (in_out)", 512, D, D, R, q8b.w, q8b.at, q8b.bytes),
];
timeRounds(batch, 3, 1);
const ratios = [];
for (const [group, what] of [
  [decode, "decode"],
  [batch, "512-row batch"],
]) {
  const base = group[0];
  for (const row of group.slice(1))
    if (!row.wrong && !base.wrong) ratios.push(`${what} ${row.label}: ${(base.s / row.s).toFixed(2)}×`);
}

const info = kernelInfo();
console.log(
  `Node ${process.version}, ${info.backend}, threads ${threads}, load average ${loadavg()
    .map((v) => v.toFixed(1))
    .join(" ")}`,
);
console.log(describeCeiling(ceiling).join("\n"));
console.log(
  cold
    ? `Decode timed cold: ${(flushBytes / 2 ** 20).toFixed(0)} MiB read before every call (three times the last-level cache; checksum ${flushSink > 0 ? "ok" : "?"}), so W comes from DRAM.`
    : "Decode timed warm: calls back to back (W may be partly served from the last-level cache).",
);
console.log("");
console.log("| shape | weight | time | GFLOP/s | W read GB/s | of measured read bandwidth |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  if (r.wrong) console.log(`| ${r.shape} | ${r.label} | WRONG (not timed) | | | |`);
  else
    console.log(
      `| ${r.shape} | ${r.label} | ${(r.s * 1e3).toFixed(2)} ms | ${r.flops.toFixed(1)} | ${r.gbs === null ? "-" : r.gbs.toFixed(1)} | ${r.gbs === null ? "-" : `${((100 * r.gbs) / ceiling.readGBs).toFixed(0)}%`} |`,
    );
}
console.log("");
console.log(`Speed against float32 in this run: ${ratios.join(", ")}`);
