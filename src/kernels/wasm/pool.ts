// A pool of kernel threads sharing one WebAssembly.Memory with the calling thread. The caller writes a job into the
// control block, bumps the generation, runs its own column range, then waits (in slices, with an overall timeout)
// until every worker has counted `pending` down. Workers are started once and reused. Two hosts:
// - Node: worker_threads workers, fetched with process.getBuiltinModule so that browser bundles contain no Node
//   import; they are unref'd so they never keep a process alive, and the caller waits with Atomics.wait.
// - Browsers (cross-origin isolated pages only): Web Workers from a Blob URL of the same source, started
//   asynchronously by startWebPool (a worker cannot start while the main thread is busy); a browser main thread
//   may not call Atomics.wait, so the caller spins on Atomics.load after finishing its own equal share.
// Elsewhere there are no workers and calls stay single-threaded.
// Control block (int32 indices from ctrlOffset): 0 generation, 1 pending, 2 failed worker + 1, 3 shutdown,
// 4..19 the 16 gemm arguments (12 is alpha as float32), 32 + 4w .. 35 + 4w worker w's j0, j1, work, active flag,
// 256.. an error message as char codes.

import { KernelError } from "../../errors.js";
import { WEB_WORKER_SOURCE, WORKER_SOURCE } from "./worker-source.js";

/** Bytes of the control block. */
export const CTRL_BYTES = 4096;
/** Most workers one pool holds (the control block has room for 48). */
export const MAX_WORKERS = 31;
const MSG = 256;

interface NodeWorker {
  unref(): void;
  terminate(): Promise<number>;
  on(event: "error", cb: (e: unknown) => void): void;
}
type NodeWorkerCtor = new (source: string, options: { eval: true; workerData: unknown }) => NodeWorker;

interface WebWorker {
  terminate(): void;
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string }) => void) | null;
}
export type WebWorkerCtor = new (url: string) => WebWorker;

/** Starts worker `index` (which serves the control block) and routes its errors to onError; returns its stopper. */
type Spawn = (index: number, onError: (e: unknown) => void) => { terminate(): unknown };

/** Worker constructor of the host, or null where kernel threads are not available. */
export function hostWorkers(): NodeWorkerCtor | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.("worker_threads") as
    | { Worker?: NodeWorkerCtor; isMainThread?: boolean }
    | undefined;
  return mod?.Worker ?? null;
}

/** A browser's Web Worker constructor where kernel threads may use it: cross-origin isolated, not Node; else null. */
export function webWorkers(): WebWorkerCtor | null {
  const g = globalThis as {
    crossOriginIsolated?: boolean;
    Worker?: WebWorkerCtor;
    process?: unknown;
    URL?: { createObjectURL?: unknown };
    Blob?: unknown;
  };
  if (g.process !== undefined || g.crossOriginIsolated !== true) return null;
  if (typeof SharedArrayBuffer !== "function" || typeof g.Worker !== "function") return null;
  if (typeof g.Blob !== "function" || typeof g.URL?.createObjectURL !== "function") return null;
  return g.Worker;
}

/** Cores the host reports (1 when unknown): os.availableParallelism() in Node, navigator.hardwareConcurrency else. */
export function hostCores(): number {
  const g = globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
    navigator?: { hardwareConcurrency?: number };
  };
  const os = g.process?.getBuiltinModule?.("os") as
    | { availableParallelism?: () => number; cpus?: () => unknown[] }
    | undefined;
  const n = os?.availableParallelism?.() ?? os?.cpus?.().length ?? g.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.floor(n));
}

/** One job for the pool: the 16 gemm arguments minus the per-thread (j0, j1, work) triple. */
export interface PoolJob {
  /** out, a, b, m, k, n, transA, transB, alpha, beta, a2, b2, k2 in the order of the wasm gemm export. */
  args: readonly number[];
  /** [j0, j1, work] for the caller (index 0) and each worker (1..). */
  ranges: readonly (readonly [number, number, number])[];
  /** Runs the caller's own range. */
  runOwn: (j0: number, j1: number, work: number) => void;
  /** Milliseconds before a missing worker counts as failed. */
  timeoutMs: number;
}

/** Kernel threads bound to one module and shared memory. */
export class ThreadPool {
  readonly size: number;
  private readonly ctrl: Int32Array;
  private readonly fctl: Float32Array;
  private readonly workers: { terminate(): unknown }[] = [];
  private startupError: unknown = null;
  /** Whether the caller may block in Atomics.wait (not on a browser main thread: it spins instead). */
  private readonly canBlock: boolean;
  isBroken = false;

  /** A pool of Node worker_threads workers running `source`. */
  static node(
    Worker: NodeWorkerCtor,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctrlOffset: number,
    size: number,
    source = WORKER_SOURCE,
  ): ThreadPool {
    return new ThreadPool(memory, ctrlOffset, size, true, (index, onError) => {
      const w = new Worker(source, { eval: true, workerData: { module, memory, index, ctrlOffset } });
      w.on("error", onError);
      w.unref();
      return w;
    });
  }

  private constructor(memory: WebAssembly.Memory, ctrlOffset: number, size: number, canBlock: boolean, spawn: Spawn) {
    this.size = size;
    this.canBlock = canBlock;
    this.ctrl = new Int32Array(memory.buffer, ctrlOffset, CTRL_BYTES / 4);
    this.fctl = new Float32Array(memory.buffer, ctrlOffset, CTRL_BYTES / 4);
    this.ctrl.fill(0);
    for (let index = 0; index < size; index++) {
      this.workers.push(
        spawn(index, (e) => {
          this.startupError = e;
          this.isBroken = true;
        }),
      );
    }
  }

  /**
   * A pool of browser Web Workers running `source` from a Blob URL; resolves once every worker has instantiated the
   * module on the shared memory (they cannot start while the main thread is blocked, so a synchronous call could not
   * wait for them). Rejects with KernelError kernel_failed (a worker failed to start) or kernel_timeout.
   */
  static async web(
    Worker: WebWorkerCtor,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctrlOffset: number,
    size: number,
    timeoutMs: number,
    source = WEB_WORKER_SOURCE,
  ): Promise<ThreadPool> {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    let left = size;
    let settle: (error: KernelError | null) => void = () => {};
    const started = new Promise<KernelError | null>((resolve) => {
      settle = resolve;
    });
    const pool = new ThreadPool(memory, ctrlOffset, size, false, (index, onError) => {
      const w = new Worker(url);
      w.onmessage = (event) => {
        const data = event.data as { ready?: boolean; error?: string };
        if (data.ready && --left === 0) settle(null);
        if (data.error !== undefined) {
          onError(data.error);
          settle(new KernelError("kernel_failed", `gemm: kernel thread ${index} failed to start: ${data.error}`, {}));
        }
      };
      w.onerror = (event) => {
        const text = event.message ?? "worker error";
        onError(text);
        settle(new KernelError("kernel_failed", `gemm: kernel thread ${index} failed to start: ${text}`, {}));
      };
      w.postMessage({ module, memory, index, ctrlOffset });
      return w;
    });
    const timer = setTimeout(
      () =>
        settle(
          new KernelError(
            "kernel_timeout",
            `gemm: ${left} of ${size} kernel threads did not start within ${timeoutMs} ms`,
            { pending: left, timeoutMs },
          ),
        ),
      timeoutMs,
    );
    const error = await started;
    clearTimeout(timer);
    URL.revokeObjectURL(url);
    if (error) {
      pool.close();
      throw error;
    }
    return pool;
  }

  /** Runs a job on the caller and the first ranges.length − 1 workers; throws KernelError on failure or timeout. */
  run(job: PoolJob): void {
    const c = this.ctrl;
    for (let i = 0; i < job.args.length; i++) c[4 + i] = job.args[i]!;
    this.fctl[12] = job.args[8]!;
    for (let w = 0; w < this.size; w++) {
      const r = job.ranges[w + 1];
      const s = 32 + 4 * w;
      c[s] = r ? r[0] : 0;
      c[s + 1] = r ? r[1] : 0;
      c[s + 2] = r ? r[2] : 0;
      c[s + 3] = r ? 1 : 0;
    }
    Atomics.store(c, 2, 0);
    Atomics.store(c, 1, this.size);
    Atomics.add(c, 0, 1);
    Atomics.notify(c, 0);
    const own = job.ranges[0];
    let ownError: unknown = null;
    try {
      if (own) job.runOwn(own[0], own[1], own[2]);
    } catch (e) {
      ownError = e;
    }
    this.await(job.timeoutMs);
    if (ownError !== null) throw ownError;
  }

  private await(timeoutMs: number): void {
    const c = this.ctrl;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pending = Atomics.load(c, 1);
      if (pending === 0) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.close();
        throw new KernelError(
          "kernel_timeout",
          `gemm: ${pending} of ${this.size} kernel threads did not finish within ${timeoutMs} ms${this.startupError ? ` (worker error: ${describe(this.startupError)})` : ""}; the pool was closed`,
          { pending, timeoutMs },
        );
      }
      if (this.canBlock) Atomics.wait(c, 1, pending, Math.min(left, 100));
      // else spin: the caller has finished its own share of equal size, so only the workers' lag is left
    }
    const failed = Atomics.load(c, 2);
    if (failed !== 0) {
      let text = "";
      for (let i = MSG; i < c.length && c[i] !== 0; i++) text += String.fromCharCode(c[i]!);
      throw new KernelError("kernel_failed", `gemm: kernel thread ${failed - 1} failed: ${text}`, {
        thread: failed - 1,
        message: text,
      });
    }
  }

  /** Stops the workers; the pool cannot be used afterwards. */
  close(): void {
    this.isBroken = true;
    Atomics.store(this.ctrl, 3, 1);
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    for (const w of this.workers) void w.terminate();
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
