// Failure handling of the kernel thread pool: a trapping worker surfaces as KernelError "kernel_failed", a worker
// that never answers as "kernel_timeout" (every wait is bounded), and the instance recovers with a fresh pool. A
// worker that fails to start turns threads off at once (the call finishes on the caller, the reason is kept in
// threadError and warned once), and a product started while the pool starts (async_hooks) runs on the caller.

import { createHook } from "node:async_hooks";
import { describe, expect, it, vi } from "vitest";
import { KernelError } from "../../errors.js";
import { WasmGemm } from "./runtime.js";
import { WORKER_SOURCE } from "./worker-source.js";

// a worker that reports itself serving (control block: state 224 + index = 1, event counter 20) and then never works
const STARTS_THEN_HANGS = `
const { workerData } = process.getBuiltinModule("worker_threads");
const c = new Int32Array(workerData.memory.buffer, workerData.ctrlOffset, 1024);
Atomics.store(c, 224 + workerData.index, 1);
Atomics.add(c, 20, 1);
Atomics.notify(c, 20);
setInterval(() => {}, 1000);
`;

const [M, K, N] = [64, 64, 64];
const A = Float32Array.from({ length: M * K }, (_, i) => (i % 5) - 2);
const B = Float32Array.from({ length: K * N }, (_, i) => (i % 3) - 1.5);
const product = (w: WasmGemm, a: Float32Array, threads: number) =>
  w.gemm(new Float32Array(M * N), a, a, M, K, N, false, false, 1, 0, threads);

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
    const pool = w.poolOf(1)!;
    expect(pool.waitReady(1, 30_000)).toEqual([0]);
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
    w.poolForTest(1, STARTS_THEN_HANGS);
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

  it("chunks: the caller claims what a serving worker never takes, then reports the worker's timeout", () => {
    const w = WasmGemm.createSync("simd", true);
    const pool = w.poolForTest(1, STARTS_THEN_HANGS)!;
    expect(pool.waitReady(1, 30_000)).toEqual([0]);
    const ran: [number, number][] = [];
    const e = thrown(() =>
      pool.run({
        args: [0, 0, 0, 1, 1, 100, 0, 0, 1, 0, 0, 0, 0],
        ranges: [
          [0, 64, 0],
          [64, 100, 0],
        ],
        runOwn: (j0, j1) => ran.push([j0, j1]),
        timeoutMs: 300,
        chunks: { j0: 0, j1: 100, width: 16 },
      }),
    );
    expect(ran).toEqual([
      [0, 16],
      [16, 32],
      [32, 48],
      [48, 64],
      [64, 80],
      [80, 96],
      [96, 100],
    ]);
    expect(e.code).toBe("kernel_timeout");
    w.close();
  });

  it("chunks: every column is computed exactly once, with the bits of one thread", () => {
    const w = WasmGemm.createSync("simd", true);
    const [m, k, n] = [8, 300, 1000]; // 8 chunks of 128 columns over two threads (WasmGemm takes threads as given)
    const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7));
    const one = w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0, 1);
    for (let rep = 0; rep < 5; rep++) {
      const out = new Float32Array(m * n).fill(Number.NaN);
      expect(w.gemm(out, a, b, m, k, n, false, false, 1, 0, 2)).toEqual(one);
    }
    w.close();
  });

  it("a worker that cannot instantiate the module turns threads off at once: the call finishes on the caller", () => {
    const w = WasmGemm.createSync("simd", true);
    const one = product(w, A, 1);
    const warnings: string[] = [];
    const spy = vi.spyOn(process, "emitWarning").mockImplementation((m) => {
      warnings.push(String(m));
    });
    try {
      // a private-memory module cannot be instantiated on the shared memory: the worker reports it in the control
      // block, so the waiting caller sees it without the event loop (no 'error' event can arrive during the call)
      w.poolForTest(1, WORKER_SOURCE, WasmGemm.createSync("simd", false).module);
      expect(product(w, A, 2)).toEqual(one);
      expect(w.threadError).toMatch(/^kernel thread 0 failed to start: .*(shared|memory)/i);
      expect(w.maxThreads()).toBe(1);
      expect(w.poolOf(1)).toBeNull();
      expect(product(w, A, 2)).toEqual(one);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^lorakit: kernel threads are off, products run on the calling thread \(kernel thread 0 failed to start/,
      );
    } finally {
      spy.mockRestore();
      w.close();
    }
  });

  it("a worker that dies at start-up is noticed from its 'error' event; no later call waits for it", async () => {
    const w = WasmGemm.createSync("simd", true);
    const one = product(w, A, 1);
    const spy = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      w.poolForTest(1, 'throw new Error("boom at start-up");');
      await vi.waitFor(() => expect(w.threadError).toBe("kernel thread 0 failed to start: boom at start-up"), {
        timeout: 30_000,
      });
      expect(w.maxThreads()).toBe(1);
      expect(product(w, A, 2)).toEqual(one); // no pool: runs on the caller at once
      expect(w.poolOf(1)).toBeNull();
    } finally {
      spy.mockRestore();
      w.close();
    }
  });

  it("a product started from an async_hooks init hook inside new Worker runs on the caller, not on a second pool", () => {
    const w = WasmGemm.createSync("simd", true);
    const oneA = product(w, A, 1);
    const oneB = product(w, B, 1);
    let nested: Float32Array | null = null;
    let nestedError: unknown = null;
    let inside = false;
    let workers = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === "WORKER") workers++;
        if (inside || nested !== null) return;
        inside = true;
        try {
          nested = product(w, B, 2);
        } catch (e) {
          nestedError = e; // an exception thrown by an async hook would end the process
        }
        inside = false;
      },
    }).enable();
    let outer: Float32Array;
    try {
      outer = product(w, A, 2);
    } finally {
      hook.disable();
    }
    expect(nestedError).toBeNull();
    expect(nested).toEqual(oneB);
    expect(outer).toEqual(oneA);
    expect(workers).toBe(w.poolOf(1)!.size); // one pool's workers, no second pool
    for (let i = 0; i < 3; i++) {
      expect(product(w, A, 2)).toEqual(oneA);
      expect(product(w, B, 2)).toEqual(oneB);
    }
    w.close();
  });
});
