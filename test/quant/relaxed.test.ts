// The relaxed-SIMD build's quantized kernels (relaxed_madd in the GEMV and the packed tile) against the float64
// reference, in a child process with relaxed SIMD enabled (Node 20 needs the flag; dist/ is built by npm test).

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { canRun } from "../../src/kernels/wasm/runtime.js";

const child = fileURLToPath(new URL("../kernels/relaxed-quant-child.mjs", import.meta.url));

it("relaxed SIMD quantized products match the float64 reference and the float32 GEMM bits (n ≥ 4)", () => {
  const flags = canRun("relaxed", true) ? [] : ["--experimental-wasm-relaxed-simd"];
  const r = spawnSync(process.execPath, [...flags, child], { encoding: "utf8", timeout: 60_000 });
  expect(r.stderr).toBe("");
  const result = JSON.parse(r.stdout.trim()) as { backend: string; cases: number; worst: number; identical: boolean };
  expect(result.backend).toBe("wasm-relaxed-simd");
  expect(result.cases).toBe(16);
  expect(result.worst).toBeLessThanOrEqual(1);
  expect(result.identical).toBe(true);
});
