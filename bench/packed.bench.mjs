// Pre-packed weights (kernels/panel.ts) against the same weights unpacked, in one process: every product of a
// GPT-2-small-shaped forward step (12 layers of c_attn 768×2304, c_proj 768×768, c_fc 768×3072, mlp.c_proj
// 3072×768, stored [in, out] as GPT-2's Conv1D does, and the tied 50257×768 lm_head stored [vocab, hidden], read
// transposed) for m = 1 and m = 8 rows. 475 MiB of weights each way, so a step reads them from memory, not cache.
// Before timing, every packed product is checked to equal the unpacked one bit for bit, and one of each shape
// against a float64 reference; nothing is timed otherwise. Each cell is the best of several interleaved rounds.
// Run: npm run build && node bench/packed.bench.mjs [--threads N] [--rounds R]

import { loadavg } from "node:os";
import { configureKernels, kernelFloat32Array, kernelInfo, packPanels, panelLength } from "../dist/src/index.js";
import { gemm, panelGemm } from "../dist/src/kernels/select.js";
import { rand } from "./common.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const threads = arg("threads", 1);
const rounds = arg("rounds", 5);
configureKernels({ threads });

const H = 768;
const V = 50257;
const shapes = [];
for (let l = 0; l < 12; l++) shapes.push([H, 3 * H, false], [H, H, false], [H, 4 * H, false], [4 * H, H, false]);
shapes.push([H, V, true]); // op(b) = headᵀ [H, V], stored [V, H]

// weights: stored as the checkpoint has them (kernel memory) and packed
const layers = shapes.map(([k, n, transposed]) => {
  const w = kernelFloat32Array(k * n);
  w.set(rand(k * n));
  return { k, n, transposed, w, p: packPanels(kernelFloat32Array(panelLength(k, n)), w, k, n, transposed) };
});
const x = rand(8 * 4 * H);

const plain = (L, m) =>
  gemm(new Float32Array(m * L.n), x.subarray(0, m * L.k), L.w, m, L.k, L.n, false, L.transposed, 1, 0);
const packed = (L, m) => panelGemm(new Float32Array(m * L.n), x.subarray(0, m * L.k), L.p, m, L.k, L.n);

// float64 reference of a few columns of row i, with its error bound
function checkRef(L, m, out) {
  const u = 2 ** -24;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < L.n; j += 97) {
      let h = 0;
      let g = 0;
      for (let p = 0; p < L.k; p++) {
        const t = x[i * L.k + p] * (L.transposed ? L.w[j * L.k + p] : L.w[p * L.n + j]);
        h += t;
        g += Math.abs(t);
      }
      if (!(Math.abs(out[i * L.n + j] - h) <= 2 * u * (L.k + 2) * g)) return false;
    }
  return true;
}

let ok = true;
const seen = new Set();
for (const L of layers)
  for (const m of [1, 8]) {
    const a = plain(L, m);
    const b = packed(L, m);
    if (a.length !== b.length || a.some((v, i) => !Object.is(v, b[i]))) ok = false;
    const key = `${L.k}x${L.n}x${m}`;
    if (!seen.has(key)) {
      seen.add(key);
      if (!checkRef(L, m, b)) ok = false;
    }
  }
if (!ok) {
  console.log("WRONG: a packed product differs from the unpacked one or from the reference; nothing timed");
  process.exit(1);
}

const best = {};
for (let r = 0; r < rounds; r++)
  for (const m of [1, 8])
    for (const [name, f] of [
      ["unpacked", plain],
      ["packed", packed],
    ]) {
      const t0 = performance.now();
      for (const L of layers) f(L, m);
      const dt = performance.now() - t0;
      const key = `${name} m=${m}`;
      best[key] = Math.min(best[key] ?? Infinity, dt);
    }
const info = kernelInfo();
console.log(
  `node ${process.version}, ${info.backend}, ${threads} thread(s), load average ${loadavg()[0].toFixed(1)}; ` +
    `best of ${rounds} interleaved rounds; products of one GPT-2-small step (475 MiB of weights)`,
);
console.log(
  "| rows | unpacked ms | packed ms | unpacked / packed | 8 rows / 1 row (unpacked) | 8 rows / 1 row (packed) |",
);
console.log("| ---: | ---: | ---: | ---: | ---: | ---: |");
for (const m of [1, 8]) {
  const u = best[`unpacked m=${m}`];
  const p = best[`packed m=${m}`];
  const ru = m === 8 ? (u / best["unpacked m=1"]).toFixed(2) : "1";
  const rp = m === 8 ? (p / best["packed m=1"]).toFixed(2) : "1";
  console.log(`| ${m} | ${u.toFixed(1)} | ${p.toFixed(1)} | ${(u / p).toFixed(2)}× | ${ru} | ${rp} |`);
}
