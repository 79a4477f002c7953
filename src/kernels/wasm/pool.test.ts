// Failure handling of the kernel thread pool: a trapping worker surfaces as KernelError "kernel_failed", a worker
// that never answers as "kernel_timeout" (every wait is bounded), and the instance recovers with a fresh pool.

import { describe, expect, it } from "vitest";
import { KernelError } from "../../errors.js";
import { WasmGemm } from "./runtime.js";

function thrown(f: () => void): KernelError {
  try {
    f();
  } catch (e) {
    if (e instanceof KernelError) return e;
    throw e;
  }
  throw new Error("expected a KernelError");
}

describe("ThreadPool", () => {
  it("reports a worker's trap as kernel_failed and recovers", () => {
    const w = WasmGemm.createSync("simd", true);
    const pool = w.poolOf(1);
    const args = [0x7fff0000, 65536, 65536, 4, 4, 32, 0, 0, 1, 0, 0, 0, 0];
    const e = thrown(() =>
      pool.run({
        args,
        ranges: [
          [0, 0, 0],
          [0, 32, 0x7ff00000],
        ],
        runOwn: () => {},
        timeoutMs: 20_000,
      }),
    );
    expect(e.code).toBe("kernel_failed");
    expect(e.message).toMatch(/^gemm: kernel thread 0 failed: .*memory access out of bounds/);
    // the pool stays usable after a failed job
    const a = Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 7) - 3);
    const one = w.gemm(new Float32Array(64 * 64), a, a, 64, 64, 64, false, false, 1, 0, 1);
    expect(w.gemm(new Float32Array(64 * 64), a, a, 64, 64, 64, false, false, 1, 0, 2)).toEqual(one);
    w.close();
  });

  it("reports a worker that never finishes as kernel_timeout and starts a fresh pool next time", () => {
    const w = WasmGemm.createSync("simd", true);
    w.poolForTest(1, "setInterval(() => {}, 1000);");
    w.timeoutMs = 300;
    const a = Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 5) - 2);
    const e = thrown(() => w.gemm(new Float32Array(64 * 64), a, a, 64, 64, 64, false, false, 1, 0, 2));
    expect(e.code).toBe("kernel_timeout");
    expect(e.message).toMatch(/^gemm: 1 of 1 kernel threads did not finish within 300 ms; the pool was closed$/);
    w.timeoutMs = 20_000;
    const one = w.gemm(new Float32Array(64 * 64), a, a, 64, 64, 64, false, false, 1, 0, 1);
    expect(w.gemm(new Float32Array(64 * 64), a, a, 64, 64, 64, false, false, 1, 0, 2)).toEqual(one);
    w.close();
  });
});
