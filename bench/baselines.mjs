// The baselines kernels.bench.mjs runs beside lorakit: naive JS loops, TensorFlow.js (cpu and wasm backends) and
// numpy via python3 (bench/numpy_bench.py). Each is checked against the float64 reference before it is timed.

import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { best, isClose, record, results } from "./common.mjs";

const here = dirname(fileURLToPath(import.meta.url));
/** MACs above which the JS loops and tfjs-cpu are skipped (they would take minutes). */
export const SLOW_LIMIT = 2 ** 27;

// naive loops: nested arrays and a Float32Array i-k-j loop
export function nestedMatmul(xa, wa) {
  return xa.map((row) => {
    const o = new Array(wa[0].length).fill(0);
    for (let p = 0; p < row.length; p++) for (let j = 0; j < o.length; j++) o[j] += row[p] * wa[p][j];
    return o;
  });
}
export function loopMatmul(out, x, w, n, dIn, dOut) {
  out.fill(0);
  for (let i = 0; i < n; i++)
    for (let p = 0; p < dIn; p++) {
      const xv = x[i * dIn + p];
      const o = i * dOut;
      const wo = p * dOut;
      for (let j = 0; j < dOut; j++) out[o + j] += xv * w[wo + j];
    }
  return out;
}

export async function tfjsRun(backend, shapes) {
  await tf.setBackend(backend);
  for (const sh of shapes) {
    const [n, dIn, dOut, r, reps] = sh.shape;
    if (backend === "cpu" && n * dIn * dOut > SLOW_LIMIT) continue;
    const { x, w, down, up, s, ref0, refL, rows, flops, flopsL } = sh;
    const X = tf.tensor2d(x, [n, dIn]);
    const W = tf.tensor2d(w, [dIn, dOut]);
    const D = tf.tensor2d(down, [dIn, r]);
    const U = tf.tensor2d(up, [r, dOut]);
    const mm = () => tf.tidy(() => tf.matMul(X, W)).dataSync();
    const lora = () => tf.tidy(() => tf.add(tf.matMul(X, W), tf.mul(s, tf.matMul(tf.matMul(X, D), U)))).dataSync();
    const reps2 = backend === "cpu" ? 1 : reps;
    const name = `tfjs-${backend}`;
    record(
      sh.shape,
      name,
      "matmul",
      1,
      () => isClose(mm().subarray(0, rows * dOut), ref0, dIn, r),
      () => best(mm, reps2),
      flops,
    );
    record(
      sh.shape,
      name,
      "lora",
      1,
      () => isClose(lora().subarray(0, rows * dOut), refL, dIn, r),
      () => best(lora, reps2),
      flopsL,
    );
    tf.dispose([X, W, D, U]);
  }
}

export function numpyRun(shapes, threads) {
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const arg = JSON.stringify(shapes.map((s) => s.shape));
  const p = spawnSync("python3", [`${here}/numpy_bench.py`, arg], { env, encoding: "utf8", maxBuffer: 1 << 24 });
  if (p.status !== 0) return null;
  const out = JSON.parse(p.stdout);
  for (const res of out.shapes) {
    const sh = shapes.find((s) => s.shape.slice(0, 4).join() === res.shape.join());
    for (const op of ["matmul", "lora", "merged", "merge"]) {
      if (!res.ok) results.push({ shape: sh.shape, system: "numpy", op, threads, wrong: true });
      else
        results.push({
          shape: sh.shape,
          system: "numpy",
          op,
          threads,
          s: res[op],
          gflops: sh.flopsOf[op] / res[op] / 1e9,
        });
    }
    if (res.lora_call_us !== undefined)
      results.push({ shape: sh.shape, system: "numpy", op: "call µs", threads, us: res.lora_call_us });
  }
  return out.corename;
}
