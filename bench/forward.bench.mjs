// Benchmark of loraForward (float32 typed path) against a naive nested-array triple loop.
// Run with `npm run bench:forward` (builds first). Every kernel is checked against the float64 reference
// before it is timed; a wrong result stops the bench. Not a test: timings never gate CI.
import { loraErrorBound, loraForward, loraReference, UNIT_ROUNDOFF } from "../dist/src/index.js";

const SHAPES = [
  // [n, dIn, dOut, r]
  [1, 4096, 4096, 16],
  [128, 1024, 1024, 8],
  [512, 2048, 2048, 16],
];

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomF32(len, seed) {
  const next = lcg(seed);
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = next();
  return a;
}

function nested(a, rows, cols) {
  return Array.from({ length: rows }, (_, i) => Array.from(a.subarray(i * cols, (i + 1) * cols)));
}

// The baseline: h = x·W + s·(x·B)·A with plain nested arrays and triple loops.
function naiveNested(x, W, B, A, s) {
  const n = x.length;
  const dIn = W.length;
  const dOut = W[0].length;
  const r = A.length;
  const h = [];
  for (let i = 0; i < n; i++) {
    const t = new Array(r).fill(0);
    for (let q = 0; q < r; q++) for (let p = 0; p < dIn; p++) t[q] += x[i][p] * B[p][q];
    const row = new Array(dOut).fill(0);
    for (let j = 0; j < dOut; j++) {
      let acc = 0;
      for (let p = 0; p < dIn; p++) acc += x[i][p] * W[p][j];
      let low = 0;
      for (let q = 0; q < r; q++) low += t[q] * A[q][j];
      row[j] = acc + s * low;
    }
    h.push(row);
  }
  return h;
}

// Checks rows `rows` of h against the float64 reference with the float32 error bound; throws when wrong.
function check(name, hRow, p, rows) {
  const { x, W, B, A, s, dIn, dOut, r } = p;
  for (const i of rows) {
    const xi = x.subarray(i * dIn, (i + 1) * dIn);
    const ref = loraReference(xi, W, B, A, s, 1, dIn, dOut, r);
    const bound = loraErrorBound(UNIT_ROUNDOFF.float32, dIn, r, s, ref);
    const got = hRow(i);
    for (let j = 0; j < dOut; j++) {
      const err = Math.abs(got[j] - ref.h[j]);
      if (!(err <= bound[j]))
        throw new Error(
          `${name} is wrong at [${i}, ${j}]: ${got[j]} vs ${ref.h[j]} (bound ${bound[j]}); refusing to time it`,
        );
    }
  }
}

function time(fn, minMs, maxReps) {
  fn(); // warm-up
  const times = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < 3 || performance.now() - start < minMs)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const rows = [];
for (const [n, dIn, dOut, r] of SHAPES) {
  const alpha = 2 * r;
  const s = alpha / r;
  const p = {
    x: randomF32(n * dIn, 1),
    W: randomF32(dIn * dOut, 2),
    B: randomF32(dIn * r, 3),
    A: randomF32(r * dOut, 4),
    s,
    dIn,
    dOut,
    r,
  };
  const view = (data, rows_, cols) => ({ data, rows: rows_, cols });
  const args = [view(p.x, n, dIn), view(p.W, dIn, dOut), view(p.B, dIn, r), view(p.A, r, dOut), alpha];
  const sample = [...new Set([0, Math.floor(n / 2), n - 1])];
  const flops = 2 * n * dIn * dOut + 2 * n * dIn * r + 2 * n * r * dOut;

  const h = loraForward(...args).data;
  check("loraForward f32", (i) => h.subarray(i * dOut, (i + 1) * dOut), p, sample);
  const msFast = time(() => loraForward(...args), 1000, 20);

  const nx = nested(p.x, n, dIn);
  const nW = nested(p.W, dIn, dOut);
  const nB = nested(p.B, dIn, r);
  const nA = nested(p.A, r, dOut);
  const hn = naiveNested(nx, nW, nB, nA, s);
  check("naive nested", (i) => hn[i], p, sample);
  const msNaive = time(() => naiveNested(nx, nW, nB, nA, s), 0, n >= 512 ? 1 : 3);

  rows.push({
    shape: `(${n}, ${dIn}, ${dOut}, ${r})`,
    fast: flops / msFast / 1e6,
    naive: flops / msNaive / 1e6,
    msFast,
    msNaive,
  });
}

console.log(
  `loraForward float32 vs naive nested arrays — node ${process.version}, ${new Date().toISOString().slice(0, 10)}`,
);
console.log("| shape (n, dIn, dOut, r) | loraForward f32 ms | GFLOP/s | naive nested ms | GFLOP/s | speed-up |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.shape} | ${r.msFast.toFixed(2)} | ${r.fast.toFixed(2)} | ${r.msNaive.toFixed(1)} | ${r.naive.toFixed(2)} | ${(r.msNaive / r.msFast).toFixed(1)}× |`,
  );
}
