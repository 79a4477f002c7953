// Mixed-adapter batches: one forward over n rows where the rows use 16 different adapters, against the same batch
// with one adapter for every row. Checks correctness first (each adapter run separately on its own rows must
// agree), then times. Not a test: run with `npm run bench:mixed` (builds first). Options: --n, --d, --r,
// --adapters, --reps, --all (also time the active-adapter and base-only forwards). With the plain TypeScript GEMM the default size takes roughly 1–2 s per forward, so the
// default is 3 interleaved repetitions per variant (median reported) to stay under a minute.
import { performance } from "node:perf_hooks";
import { createRng, LoraLinear } from "../dist/src/index.js";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const n = arg("n", 512);
const d = arg("d", 2048);
const r = arg("r", 16);
const k = arg("adapters", 16);
const reps = arg("reps", 3);

const rng = createRng(20261128);
const rand = (len, scale) => {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = (2 * rng.uniform() - 1) * scale;
  return a;
};

const layer = new LoraLinear({ weight: { data: rand(d * d, 1 / Math.sqrt(d)), rows: d, cols: d } });
const names = Array.from({ length: k }, (_, i) => `task${i}`);
for (const name of names) {
  layer.addAdapter(name, {
    down: { data: rand(d * r, 1 / Math.sqrt(d)), rows: d, cols: r },
    up: { data: rand(r * d, 0.1), rows: r, cols: d },
    alpha: 2 * r,
  });
}
const x = { data: rand(n * d, 1), rows: n, cols: d };
const mixedIds = Array.from({ length: n }, (_, i) => names[i % k]);
const singleIds = Array.from({ length: n }, () => names[0]);

// correctness: every adapter's rows, run separately with only that adapter active, must match the mixed batch
const mixed = layer.forward(x, { adapterIds: mixedIds }).data;
let worst = 0;
for (const name of names) {
  const rows = mixedIds.flatMap((id, i) => (id === name ? [i] : []));
  const xs = new Float32Array(rows.length * d);
  for (const [q, row] of rows.entries()) xs.set(x.data.subarray(row * d, (row + 1) * d), q * d);
  layer.setActive([name]);
  const alone = layer.forward({ data: xs, rows: rows.length, cols: d }).data;
  rows.forEach((row, q) => {
    for (let j = 0; j < d; j++) {
      const e = alone[q * d + j];
      const err = Math.abs(mixed[row * d + j] - e) / (1e-4 + 1e-4 * Math.abs(e)); // PEFT's 1e-4 tolerance
      if (!(err <= 1)) throw new Error(`mixed batch differs from adapter ${name} alone at row ${row}, col ${j}`);
      worst = Math.max(worst, err);
    }
  });
}
layer.setActive([names[0]]);

/** Times the variants interleaved (one run of each per round); returns medians in ms. The correctness pass above
 * already ran every kernel on these shapes, which serves as the warm-up. */
function timeAll(variants) {
  const times = variants.map(() => []);
  for (let i = 0; i < reps; i++) {
    variants.forEach((v, j) => {
      const t0 = performance.now();
      v.f();
      times[j].push(performance.now() - t0);
    });
  }
  return variants.map((v, j) => {
    const t = times[j].sort((a, b) => a - b);
    const med = t[Math.floor(t.length / 2)];
    console.log(
      `${v.label.padEnd(44)} median ${med.toFixed(1)} ms  (min ${t[0].toFixed(1)}, max ${t[t.length - 1].toFixed(1)})`,
    );
    return { med, min: t[0] };
  });
}

console.log(
  `mixed-adapter batch: n = ${n}, dIn = dOut = ${d}, r = ${r}, float32, ${reps} interleaved timed runs (warmed up by the correctness pass)`,
);
console.log(
  `correctness: ${k} adapters, each run alone on its rows, agree (worst error ${worst.toFixed(3)} of PEFT's 1e-4 tolerance)`,
);
const variants = [
  { label: `${k} adapters (adapterIds, ${n / k} rows each)`, f: () => layer.forward(x, { adapterIds: mixedIds }) },
  { label: "1 adapter (adapterIds, all rows)", f: () => layer.forward(x, { adapterIds: singleIds }) },
];
if (process.argv.includes("--all")) {
  variants.push({ label: "1 adapter (active, no adapterIds)", f: () => layer.forward(x) });
  variants.push({
    label: "base only (no adapter)",
    f: () => layer.forward(x, { adapterIds: mixedIds.map(() => null) }),
  });
}
const [tMixed, tSingle] = timeAll(variants);
console.log(
  `ratio ${k} adapters / 1 adapter: ${(tMixed.med / tSingle.med).toFixed(3)}x of medians, ${(tMixed.min / tSingle.min).toFixed(3)}x of minima (target ≤ 1.3x)`,
);
