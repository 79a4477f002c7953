// The opt-in decode with llama.cpp's arithmetic (configureKernels({ decodeActivations: "q8_0" })): for n < 4 rows
// over an "out_in" Q8_0/Q4_0 weight, x is quantized per 32-block as ggml's quantize_row_q8_0_ref (taken here from
// quantizeMatrix, bit-exact to it) and each output is Σ_blocks sumi·d_w·d_x. Checked against a float64 model of that
// arithmetic within float32 rounding of Σ|q_w·q_x·d_w·d_x|; the default, other layouts, n ≥ 4, and rows the fast
// kernels do not take keep the exact path's bits; the setting is validated.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { decodeF16 } from "../../src/dtype/f16.js";
import { ArgumentError, configureKernels, loraForward, matmul, quantizeMatrix } from "../../src/index.js";
import { canRun } from "../../src/kernels/wasm/runtime.js";
import { expectClose } from "../helpers/close.js";
import { caught } from "../helpers/errors.js";
import { fill } from "../helpers/random.js";
import { ggmlDotModel } from "../kernels/ggml-dot-model.mjs";

afterEach(() => {
  configureKernels();
});

const TYPES = ["q8_0", "q4_0"] as const;
const deps = { quantizeMatrix, decodeF16 };
const child = fileURLToPath(new URL("../kernels/ggml-dot-child.mjs", import.meta.url));
const dot8Child = fileURLToPath(new URL("../kernels/quant-dot8-child.mjs", import.meta.url));

// float64 model of ggml_vec_dot_{q8_0,q4_0}_q8_0 (test/kernels/ggml-dot-model.mjs)
function model(
  x: Float32Array,
  w: { bytes: Uint8Array; type: "q8_0" | "q4_0" },
  n: number,
  dIn: number,
  dOut: number,
  lr?: { down: Float32Array; up: Float32Array; r: number; s: number },
) {
  return ggmlDotModel(x, w, n, dIn, dOut, lr, deps);
}

function weight(type: "q8_0" | "q4_0", layout: "out_in" | "in_out", dIn: number, dOut: number, seed: number) {
  const [rows, cols] = layout === "out_in" ? [dOut, dIn] : [dIn, dOut];
  return quantizeMatrix({ data: fill(new Float32Array(rows * cols), seed), rows, cols }, type, { layout });
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

describe('decodeActivations: "q8_0" (llama.cpp\'s arithmetic, opt-in)', () => {
  it.each(TYPES)("%s out_in: matmul and loraForward match the float64 model of ggml's dot products", (type) => {
    configureKernels({ decodeActivations: "q8_0" });
    let differs = 0;
    for (const dIn of [32, 96, 160, 288])
      for (const dOut of [1, 3, 5, 17])
        for (const n of [1, 2, 3]) {
          const w = weight(type, "out_in", dIn, dOut, dIn + dOut);
          const x = fill(new Float32Array(n * dIn), n + dIn);
          const ref = model(x, w, n, dIn, dOut);
          const c = matmul({ data: x, rows: n, cols: dIn }, w).data;
          expectClose(c, ref.h, { bound: ref.bound, shape: [n, dOut] });
          const r = 1 + (n % 3);
          const down = fill(new Float32Array(dIn * r), 5);
          const up = fill(new Float32Array(r * dOut), 6);
          const h = loraForward(
            { data: x, rows: n, cols: dIn },
            w,
            { data: down, rows: dIn, cols: r },
            { data: up, rows: r, cols: dOut },
            2 * r,
          ).data;
          const refL = model(x, w, n, dIn, dOut, { down, up, r, s: 2 });
          expectClose(h, refL.h, { bound: refL.bound, shape: [n, dOut] });
          configureKernels();
          if (!same(c, matmul({ data: x, rows: n, cols: dIn }, w).data)) differs++;
          configureKernels({ decodeActivations: "q8_0" });
        }
    expect(differs).toBeGreaterThan(20); // it really is another arithmetic than the default
  });

  it.each(TYPES)("%s: x quantized as ggml does at the rounding ties (roundf halves away, d rounded to f16)", (type) => {
    configureKernels({ decodeActivations: "q8_0" });
    const dIn = 96;
    const x = new Float32Array(dIn);
    // block 0: amax 127 → d = 1: x·id = ±2.5, ±0.5, ±1.5 are ties; block 1: d = 1 + 2^-11, an f16 tie (→ 1);
    // block 2: all zero (d = 0)
    const ties = [127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5, -3.5, 4.5];
    ties.forEach((v, j) => {
      x[j] = v;
    });
    x[32] = 127 * (1 + 2 ** -11);
    for (let j = 33; j < 64; j++) x[j] = (j - 48) * 3.25;
    const w = weight(type, "out_in", dIn, 9, 4);
    const ref = model(x, w, 1, dIn, 9);
    expectClose(matmul({ data: x, rows: 1, cols: dIn }, w).data, ref.h, { bound: ref.bound });
  });

  it.each(TYPES)("%s: threads never change a bit", (type) => {
    configureKernels({ decodeActivations: "q8_0" });
    const [dIn, dOut] = [4096, 1056];
    const w = weight(type, "out_in", dIn, dOut, 21);
    const x = fill(new Float32Array(dIn), 22);
    const one = matmul({ data: x, rows: 1, cols: dIn }, w, { threads: 1 }).data;
    const two = matmul({ data: x, rows: 1, cols: dIn }, w, { threads: 2 }).data;
    expect(same(one, two)).toBe(true);
    const ref = model(x, w, 1, dIn, dOut);
    expectClose(one, ref.h, { bound: ref.bound });
  });

  it.each(TYPES)("%s: in_out weights, n ≥ 4 rows and rows of x outside [2^-64, 2^64] keep the exact path", (type) => {
    const cases: [Float32Array, number, number, "out_in" | "in_out", number][] = [];
    const big = fill(new Float32Array(64), 3).map((v) => v * 2 ** 70);
    const inf = fill(new Float32Array(64), 3);
    inf[3] = Infinity;
    cases.push([fill(new Float32Array(64), 1), 1, 64, "in_out", 32]);
    cases.push([fill(new Float32Array(5 * 64), 2), 5, 64, "out_in", 7]);
    cases.push([big, 1, 64, "out_in", 7]);
    cases.push([inf, 1, 64, "out_in", 7]);
    for (const [x, n, dIn, layout, dOut] of cases) {
      const w = weight(type, layout, dIn, dOut, 8);
      const exact = matmul({ data: x, rows: n, cols: dIn }, w).data;
      configureKernels({ decodeActivations: "q8_0" });
      const opt = matmul({ data: x, rows: n, cols: dIn }, w).data;
      configureKernels();
      expect(Array.from(opt)).toEqual(Array.from(exact));
    }
  });

  it("the relaxed-SIMD build matches the model too (child process; dist/ is built by npm test)", () => {
    const flags = canRun("relaxed", true) ? [] : ["--experimental-wasm-relaxed-simd"];
    const r = spawnSync(process.execPath, [...flags, child], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    const result = JSON.parse(r.stdout.trim()) as { backend: string; cases: number; worst: number };
    expect(result.backend).toBe("wasm-relaxed-simd");
    expect(result.cases).toBe(6);
    expect(result.worst).toBeLessThanOrEqual(1);
  });

  it("Q4_0 in the relaxed build: the 8-bit dot product, where the engine picks it, gives the 16-bit path's bits (child process)", () => {
    const flags = canRun("relaxed", true) ? [] : ["--experimental-wasm-relaxed-simd"];
    const r = spawnSync(process.execPath, [...flags, dot8Child], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    const result = JSON.parse(r.stdout.trim()) as { dot8: number; cases: number; identical: boolean };
    expect(result.cases).toBe(5);
    expect(result.identical).toBe(true);
    // Node 22 and 24's V8 compute relaxed_dot_i8x16_i7x16_add_s as specified on x64, so the probe must pick it there
    // (Node 20's, behind its flag, returned 2·dot without the addend: the probe keeps the 16-bit path)
    const major = Number(process.versions.node.split(".")[0]);
    if (process.arch === "x64") expect(result.dot8).toBe(major >= 22 ? 1 : 0);
  });

  it("refuses an unknown decodeActivations value, naming it", () => {
    const e = caught(() => configureKernels({ decodeActivations: "q4_0" as never }));
    expect(e).toBeInstanceOf(ArgumentError);
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toBe('configureKernels: options.decodeActivations is "q4_0", expected "float32" or "q8_0"');
  });
});
