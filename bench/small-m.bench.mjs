// Batched decode in the kernel alone: the time of an m-row product (m = 4, 8, 16) against a 1-row one over the same
// weight, for the shipped kernels and for a variant compiled from the same sources with the small-m path off
// (SMALL_ROWS = 0: every m >= 4 takes the packed GEMM), both in this process, one thread, private memory, operands
// already in the module's memory (as with kernelFloat32Array weights). Every kernel is checked against a float64
// reference first and is not timed if it fails. Times are the minimum of many calls, interleaved between variants,
// because the shared machine's load moves single timings by tens of percent.
// Run: node bench/small-m.bench.mjs [--quick]   (Node 20: add --experimental-wasm-relaxed-simd for the relaxed build)

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compileWasm } from "../scripts/build-wasm.mjs";
import { rand } from "./common.mjs";

const quick = process.argv.includes("--quick");
const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const src = join(root, "src/kernels/wasm/assembly");

function build(relaxed, smallRows, smallNc = null) {
  const tmp = mkdtempSync(join(tmpdir(), "lorakit-smallm-"));
  try {
    cpSync(src, tmp, { recursive: true });
    const file = join(tmp, "gemm.ts");
    const text = readFileSync(file, "utf8");
    let patched = text;
    if (smallRows !== null) patched = patched.replace(/const SMALL_ROWS = \d+;/, `const SMALL_ROWS = ${smallRows};`);
    if (smallNc !== null) patched = patched.replace(/const SMALL_NC = \d+;/, `const SMALL_NC = ${smallNc};`);
    if (patched === text && (smallRows !== null || smallNc !== null)) throw new Error("constants not found in gemm.ts");
    writeFileSync(file, patched);
    const bytes = compileWasm({ relaxed, shared: false, entry: file });
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    return { memory, ex: inst.exports };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const relaxed =
  process.execArgv.some((a) => a.includes("relaxed-simd")) || Number(process.versions.node.split(".")[0]) >= 22;
const variants = { small: build(relaxed, null), packed: build(relaxed, 0) };

const MAXM = 16;
// lays out a [MAXM, k], b [k·n], out [MAXM, n], work in each variant's memory; returns float32 views
function place(v, k, n) {
  const align = (x) => Math.ceil(x / 64) * 64;
  const aOff = 64;
  const bOff = align(aOff + 4 * MAXM * k);
  const oOff = align(bOff + 4 * k * n);
  const wOff = align(oOff + 4 * MAXM * n);
  const top = wOff + v.ex.workBytes(0) + 64;
  const have = v.memory.buffer.byteLength;
  if (top > have) v.memory.grow(Math.ceil((top - have) / 65536));
  const buf = v.memory.buffer;
  return {
    offs: { aOff, bOff, oOff, wOff },
    a: new Float32Array(buf, aOff, MAXM * k),
    b: new Float32Array(buf, bOff, k * n),
    out: new Float32Array(buf, oOff, MAXM * n),
  };
}

// float64 reference of out rows [0, m) with op(b) = b [k, n] or bᵀ (b stored [n, k]); false if any element is off
function check(out, a, b, m, k, n, transB) {
  const u = 2 ** -24;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j += j % 97 === 96 ? 1 : 7) {
      let h = 0;
      let g = 0;
      for (let p = 0; p < k; p++) {
        const x = a[i * k + p] * (transB ? b[j * k + p] : b[p * n + j]);
        h += x;
        g += Math.abs(x);
      }
      if (!(Math.abs(out[i * n + j] - h) <= 2 * u * (k + 2) * g)) return false;
    }
  return true;
}

const shapes = quick
  ? [[768, 3072]]
  : [
      [768, 3072],
      [768, 768],
      [4096, 4096],
    ];
const reps = quick ? 15 : 40;
console.log(
  `node ${process.version}, ${relaxed ? "relaxed SIMD" : "SIMD128"}, 1 thread, load average ${loadavg()[0].toFixed(1)}; min of ${reps} calls per cell`,
);
console.log(
  "k×n       layout      m | 1 row ms | m rows ms (small-m) | ratio | m rows ms (packed) | ratio | packed/small",
);
for (const [k, n] of shapes) {
  for (const transB of [0, 1]) {
    const data = { a: rand(MAXM * k), b: rand(k * n) };
    const views = {};
    for (const [name, v] of Object.entries(variants)) {
      views[name] = place(v, k, n);
      views[name].a.set(data.a);
      views[name].b.set(data.b);
    }
    const call = (name, m) => {
      const { ex } = variants[name];
      const { aOff, bOff, oOff, wOff } = views[name].offs;
      return () => ex.gemm(oOff, aOff, bOff, m, k, n, 0, transB, 1, 0, 0, 0, 0, 0, n, wOff);
    };
    for (const m of [4, 8, 16]) {
      const runs = { one: call("small", 1), small: call("small", m), packed: call("packed", m) };
      const ok = { one: true, small: true, packed: true };
      for (const key of Object.keys(runs)) {
        runs[key]();
        const v = views[key === "packed" ? "packed" : "small"];
        ok[key] = check(v.out, data.a, data.b, key === "one" ? 1 : m, k, n, transB);
      }
      const t = { one: Infinity, small: Infinity, packed: Infinity };
      for (let r = 0; r < reps; r++)
        for (const key of Object.keys(runs)) {
          if (!ok[key]) continue;
          const t0 = performance.now();
          runs[key]();
          t[key] = Math.min(t[key], performance.now() - t0);
        }
      const f = (key) => (ok[key] ? t[key].toFixed(3) : "WRONG");
      const ratio = (key) => (ok[key] && ok.one ? (t[key] / t.one).toFixed(2) : "-");
      console.log(
        `${`${k}×${n}`.padEnd(9)} ${transB ? "transB [n,k]" : "W [k,n]     "} ${String(m).padStart(2)} | ${f("one").padStart(8)} | ${f("small").padStart(19)} | ${ratio("small").padStart(5)} | ${f("packed").padStart(18)} | ${ratio("packed").padStart(5)} | ${ok.small && ok.packed ? (t.packed / t.small).toFixed(2) : "-"}`,
      );
    }
  }
}
