// The browser flavour of the kernel thread pool, run in Node: a stand-in for the Web Worker constructor runs the
// browser worker source on worker_threads (with `self.postMessage` / `self.onmessage` wired to the port), so the
// Blob-URL start-up handshake and the caller's spin wait (no Atomics.wait, as on a browser main thread) are tested
// without a browser; test/browser/ runs the real thing in Chromium.

import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { KernelError } from "../../errors.js";
import { ThreadPool, type WebWorkerCtor } from "./pool.js";
import { WasmGemm } from "./runtime.js";
import { WEB_WORKER_SOURCE } from "./worker-source.js";

const PRELUDE = `
const { parentPort } = require("worker_threads");
globalThis.self = globalThis;
self.postMessage = (m) => parentPort.postMessage(m);
parentPort.on("message", (data) => { if (self.onmessage) self.onmessage({ data }); });
`;

/** A Web Worker constructor whose workers run `source` (the Blob URL it is given must be a live blob: URL). */
function fakeWebWorker(source: string, urls: string[] = []): WebWorkerCtor {
  return class {
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onerror: ((event: { message?: string }) => void) | null = null;
    private readonly w: Worker;
    constructor(url: string) {
      urls.push(url);
      this.w = new Worker(PRELUDE + source, { eval: true });
      this.w.on("message", (data) => this.onmessage?.({ data }));
      this.w.on("error", (e) => this.onerror?.({ message: e.message }));
      this.w.unref();
    }
    postMessage(message: unknown): void {
      this.w.postMessage(message);
    }
    terminate(): void {
      void this.w.terminate();
    }
  };
}

async function rejection(p: Promise<unknown>): Promise<KernelError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KernelError) return e;
    throw e;
  }
  throw new Error("expected a KernelError");
}

const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
const memory = () => new WebAssembly.Memory({ initial: 2, maximum: 4, shared: true });

describe("ThreadPool.web", () => {
  it("starts workers from a Blob URL and gives results bit-identical to one thread (caller spins)", async () => {
    const w = WasmGemm.createSync("simd", true);
    const urls: string[] = [];
    await w.startWebPool(2, 10_000, fakeWebWorker(WEB_WORKER_SOURCE, urls));
    expect(urls).toHaveLength(2);
    expect(urls[0]).toMatch(/^blob:/);
    const [m, k, n] = [40, 96, 80];
    const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i) * 3);
    const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7));
    const one = w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0, 1);
    const three = w.gemm(new Float32Array(m * n), a, b, m, k, n, false, false, 1, 0, 3);
    expect(bits(three)).toEqual(bits(one));
    w.close();
  });

  it("keeps a pool that is large enough and replaces a smaller one", async () => {
    const w = WasmGemm.createSync("simd", true);
    const urls: string[] = [];
    const ctor = fakeWebWorker(WEB_WORKER_SOURCE, urls);
    await Promise.all([w.startWebPool(1, 10_000, ctor), w.startWebPool(1, 10_000, ctor)]);
    expect(urls).toHaveLength(1);
    await w.startWebPool(2, 10_000, ctor);
    expect(urls).toHaveLength(3);
    w.close();
  });

  it("reports a worker that fails to instantiate as kernel_failed", async () => {
    const failing = fakeWebWorker('self.onmessage = () => self.postMessage({ error: "no shared memory" });');
    const module = WasmGemm.createSync("simd", true).module;
    const e = await rejection(ThreadPool.web(failing, module, memory(), 8192, 1, 10_000));
    expect(e.code).toBe("kernel_failed");
    expect(e.message).toBe("gemm: kernel thread 0 failed to start: no shared memory");
  });

  it("reports workers that never start as kernel_timeout", async () => {
    const silent = fakeWebWorker("self.onmessage = () => {};");
    const module = WasmGemm.createSync("simd", true).module;
    const e = await rejection(ThreadPool.web(silent, module, memory(), 8192, 2, 100));
    expect(e.code).toBe("kernel_timeout");
    expect(e.message).toBe("gemm: 2 of 2 kernel threads did not start within 100 ms");
  });

  it("bounds the spin wait: a started worker that never serves a job is kernel_timeout", async () => {
    const w = WasmGemm.createSync("simd", true);
    // reports itself serving (control block: state 224 + index = 1) and answers "ready", then never works
    const hangs = `self.onmessage = (event) => {
      const { memory, index, ctrlOffset } = event.data;
      Atomics.store(new Int32Array(memory.buffer, ctrlOffset, 1024), 224 + index, 1);
      self.postMessage({ ready: true });
    };`;
    await w.startWebPool(1, 10_000, fakeWebWorker(hangs));
    w.timeoutMs = 200;
    const a = Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 5) - 2);
    let e: unknown = null;
    try {
      w.gemm(new Float32Array(64 * 64), a, a, 64, 64, 64, false, false, 1, 0, 2);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(KernelError);
    expect((e as KernelError).code).toBe("kernel_timeout");
    expect((e as KernelError).message).toBe(
      "gemm: 1 of 1 kernel threads did not finish within 200 ms; the pool was closed",
    );
    w.close();
  });
});
