// The relaxed-SIMD build (f32x4.relaxed_madd) against the float64 reference. Node 20 needs
// --experimental-wasm-relaxed-simd, so the check runs in a child process started with that flag on the built
// kernels in dist/ (npm test builds first); where this engine already validates relaxed SIMD, the child runs without
// the flag.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { canRun } from "./runtime.js";

const child = fileURLToPath(new URL("../../../test/kernels/relaxed-child.mjs", import.meta.url));

it("relaxed SIMD kernels match the float64 reference, are thread-count invariant, and m < 4 rows keep the packed bits", () => {
  const flags = canRun("relaxed", true) ? [] : ["--experimental-wasm-relaxed-simd"];
  const r = spawnSync(process.execPath, [...flags, child], { encoding: "utf8", timeout: 60_000 });
  expect(r.stderr).toBe("");
  const result = JSON.parse(r.stdout.trim()) as {
    build: string;
    cases: number;
    worst: number;
    identical: boolean;
    rowsIdentical: boolean;
  };
  expect(result.build).toBe("relaxed");
  expect(result.cases).toBe(32);
  expect(result.worst).toBeLessThanOrEqual(1);
  expect(result.identical).toBe(true);
  expect(result.rowsIdentical).toBe(true);
});
