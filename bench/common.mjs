// Shared by the kernel benchmarks: seeded data, the float64 reference of sampled rows with its error gauge, the
// check a kernel must pass before it is timed, the timer and the result table, the random model of the model benches,
// and their command-line flags.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

let seed = 1;
export const rand = (len) => {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    a[i] = (seed / 2 ** 32) * 2 - 1;
  }
  return a;
};

// float64 reference of rows [0, rows) of x·W (+ s·(x·down)·up) and the gauge bound
export function refRows(x, w, down, up, s, dIn, dOut, r, rows) {
  const h = new Float64Array(rows * dOut);
  const g = new Float64Array(rows * dOut);
  for (let i = 0; i < rows; i++) {
    const t = new Float64Array(r);
    for (let p = 0; p < dIn; p++) {
      const xv = x[i * dIn + p];
      for (let q = 0; q < r; q++) t[q] += xv * down[p * r + q];
      for (let j = 0; j < dOut; j++) {
        h[i * dOut + j] += xv * w[p * dOut + j];
        g[i * dOut + j] += Math.abs(xv * w[p * dOut + j]);
      }
    }
    if (s !== 0) {
      for (let q = 0; q < r; q++)
        for (let j = 0; j < dOut; j++) {
          h[i * dOut + j] += s * t[q] * up[q * dOut + j];
          g[i * dOut + j] += Math.abs(s * t[q] * up[q * dOut + j]) * 2;
        }
    }
  }
  return { h, g };
}

export function isClose(out, ref, dIn, r) {
  const u = 2 ** -24;
  for (let i = 0; i < ref.h.length; i++) {
    const bound = 2 * u * (dIn + r + 2) * ref.g[i] + u * Math.abs(ref.h[i]);
    if (!(Math.abs(out[i] - ref.h[i]) <= bound)) return false;
  }
  return true;
}

export function best(f, reps) {
  f();
  let t = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    t = Math.min(t, performance.now() - t0);
  }
  return t / 1e3;
}

export const results = []; // {shape, system, op, threads, seconds | "WRONG" | "skipped"}
/** Times op only if check() passes; a failing kernel is recorded as WRONG. */
export function record(shape, system, op, threads, check, time, flops) {
  if (!check()) {
    results.push({ shape, system, op, threads, wrong: true });
    return;
  }
  const s = time();
  results.push({ shape, system, op, threads, s, gflops: flops / s / 1e9 });
}

/**
 * The folder of a random-weight model of `preset` (scripts/random-model.mjs) with 8 adapters r = 16, in the
 * temporary directory: written once, by a child process, so that making it does not count in the caller's memory.
 */
export function ensureRandomModel(preset) {
  const dir = join(tmpdir(), `lorakit-bench-${preset}`);
  if (!existsSync(join(dir, "adapter-7", "adapter_model.safetensors"))) {
    const script = fileURLToPath(new URL("../scripts/random-model.mjs", import.meta.url));
    const args = [script, "--preset", preset, "--out", dir, "--adapters", "8", "--rank", "16"];
    const r = spawnSync(process.execPath, args, { stdio: "inherit" });
    if (r.status !== 0) throw new Error("random-model.mjs failed");
  }
  return dir;
}

/** The value after `--name` on the command line (a string), or `fallback` when the flag is absent. */
export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
