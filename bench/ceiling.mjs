// The machine's ceilings for 128-bit WebAssembly, measured in the same run as the kernels so that GFLOP/s can be read
// as a fraction of what this engine on this core can do right now (clock speeds differ between machines of one kind
// and over time). Three probes, compiled from the AssemblyScript below with the assemblyscript dev dependency:
// - clock: a chain of 16 dependent one-cycle integer ops (add, xor) per iteration; ops/s is the core clock.
// - FMA peak: eight independent f32x4.relaxed_madd chains (V8 emits vfmadd231ps). A 128-bit FMA retires at most
//   2 per cycle here, 4 lanes × 2 FLOP each: 16 FLOP/cycle, the most any f32x4 kernel can do (mul + add pairs reach
//   the same 16 with two multiply and two add pipes). Relaxed SIMD needs --experimental-wasm-relaxed-simd on Node 20,
//   so this probe runs in a child process with that flag when the engine lacks it.
// - read bandwidth: a 4-accumulator v128 sum over 64 MiB (≫ L3 share), the bound for single-token decode, which
//   streams the whole weight per call: decode GFLOP/s ≤ 2 FLOP per 4 bytes = GB/s / 2.
// `node bench/ceiling.mjs` prints them; kernels.bench.mjs imports measureCeiling().

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";
import { best } from "./common.mjs";

const SOURCE = `
export function chain(n: i32, y: i32): i32 {
  let x: i32 = 0;
  for (let i = 0; i < n; i++) {
    x = (x + y) ^ i; x = (x + y) ^ i; x = (x + y) ^ i; x = (x + y) ^ i;
    x = (x + y) ^ i; x = (x + y) ^ i; x = (x + y) ^ i; x = (x + y) ^ i;
  }
  return x;
}
export function readsum(p: usize, bytes: usize): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  const end = p + bytes;
  for (; p < end; p += 64) {
    s0 = f32x4.add(s0, v128.load(p)); s1 = f32x4.add(s1, v128.load(p, 16));
    s2 = f32x4.add(s2, v128.load(p, 32)); s3 = f32x4.add(s3, v128.load(p, 48));
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)), 0);
}
`;
const FMA_SOURCE = `
export function fmaPeak(n: i32): f32 {
  let x0 = f32x4.splat(1), x1 = f32x4.splat(2), x2 = f32x4.splat(3), x3 = f32x4.splat(4);
  let x4 = f32x4.splat(5), x5 = f32x4.splat(6), x6 = f32x4.splat(7), x7 = f32x4.splat(8);
  for (let i = 0; i < n; i++) {
    const m = v128.load(64), d = v128.load(80);
    x0 = f32x4.relaxed_madd(x0, m, d); x1 = f32x4.relaxed_madd(x1, m, d);
    x2 = f32x4.relaxed_madd(x2, m, d); x3 = f32x4.relaxed_madd(x3, m, d);
    x4 = f32x4.relaxed_madd(x4, m, d); x5 = f32x4.relaxed_madd(x5, m, d);
    x6 = f32x4.relaxed_madd(x6, m, d); x7 = f32x4.relaxed_madd(x7, m, d);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(x0, x1), f32x4.add(x2, x3)), f32x4.add(f32x4.add(x4, x5), f32x4.add(x6, x7)));
  return f32x4.extract_lane(s, 0);
}
`;

async function compile(source, features) {
  const options = { optimizeLevel: 3, runtime: "stub", importMemory: true, noAssert: true };
  const r = await asc.compileString(source, { ...options, enable: ["simd", ...features] });
  if (!r.binary) throw new Error(`ceiling probe failed to compile: ${r.stderr.toString()}`);
  return r.binary;
}

function instantiate(binary, pages) {
  const memory = new WebAssembly.Memory({ initial: pages });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { memory, abort() {} } });
  return { e: inst.exports, memory };
}

/** FLOP/s of 8 relaxed_madd chains in this process, or null if this engine has no relaxed SIMD. */
async function fmaPeakHere() {
  const bin = await compile(FMA_SOURCE, ["relaxed-simd"]);
  if (!WebAssembly.validate(bin)) return null;
  const { e, memory } = instantiate(bin, 1);
  new Float32Array(memory.buffer).fill(0.999, 16, 24);
  const n = 2e7;
  return (64 * n) / best(() => e.fmaPeak(n), 5);
}

/** The three ceilings: { ghz, fmaGflops (null if relaxed SIMD could not run), peakGflops (16·clock), readGBs }. */
export async function measureCeiling() {
  const { e, memory } = instantiate(await compile(SOURCE, []), 1 + 1024 + 16);
  const n = 5e7;
  const ghz = (16 * n) / best(() => e.chain(n, 3), 5) / 1e9;
  const bytes = 64 * 1024 * 1024;
  new Float32Array(memory.buffer, 65536, bytes / 4).fill(0.5);
  const readGBs = bytes / best(() => e.readsum(65536, bytes), 10) / 1e9;
  let fma = await fmaPeakHere();
  if (fma === null) {
    const child = spawnSync(
      process.execPath,
      ["--experimental-wasm-relaxed-simd", fileURLToPath(import.meta.url), "--fma-json"],
      { encoding: "utf8" },
    );
    const line = child.status === 0 ? child.stdout.trim().split("\n").pop() : "";
    fma = line ? JSON.parse(line).fma : null;
  }
  return { ghz, peakGflops: 16 * ghz, fmaGflops: fma === null ? null : fma / 1e9, readGBs };
}

/** Markdown lines describing the ceilings. */
export function describeCeiling(c) {
  const fma = c.fmaGflops === null ? "not measured (no relaxed SIMD)" : `${c.fmaGflops.toFixed(1)} GFLOP/s`;
  return [
    `Ceilings measured in this run (bench/ceiling.mjs): core clock ${c.ghz.toFixed(2)} GHz (dependent integer chain) → ` +
      `128-bit peak 16 FLOP/cycle = ${c.peakGflops.toFixed(1)} GFLOP/s per core; 8 relaxed_madd chains reach ${fma}; ` +
      `a WASM v128 read loop streams ${c.readGBs.toFixed(1)} GB/s from DRAM on one core → ` +
      `single-token decode ≤ ${(c.readGBs / 2).toFixed(1)} GFLOP/s.`,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--fma-json")) {
    console.log(JSON.stringify({ fma: await fmaPeakHere() }));
  } else {
    console.log(describeCeiling(await measureCeiling()).join("\n"));
  }
}
