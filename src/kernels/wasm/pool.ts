// A pool of kernel threads sharing one WebAssembly.Memory with the calling thread. The caller writes a job into the
// control block, bumps the generation, runs its own column range, then waits (in slices, with an overall timeout)
// until every worker has counted `pending` down. Workers are started once and reused; they are unref'd so they never
// keep a process alive. Node only for now: workers come from worker_threads, fetched with process.getBuiltinModule
// so that browser bundles contain no Node import; elsewhere hostWorkers() is null and calls stay single-threaded.
// Control block (int32 indices from ctrlOffset): 0 generation, 1 pending, 2 failed worker + 1, 3 shutdown,
// 4..19 the 16 gemm arguments (12 is alpha as float32), 32 + 4w .. 35 + 4w worker w's j0, j1, work, active flag,
// 256.. an error message as char codes.

import { KernelError } from "../../errors.js";
import { WORKER_SOURCE } from "./worker-source.js";

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

/** Worker constructor of the host, or null where kernel threads are not available. */
export function hostWorkers(): NodeWorkerCtor | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.("worker_threads") as
    | { Worker?: NodeWorkerCtor; isMainThread?: boolean }
    | undefined;
  return mod?.Worker ?? null;
}

/** Cores the host reports (1 when unknown). */
export function hostCores(): number {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.("os") as
    | { availableParallelism?: () => number; cpus?: () => unknown[] }
    | undefined;
  const n = os?.availableParallelism?.() ?? os?.cpus?.().length ?? 1;
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
  private readonly workers: NodeWorker[] = [];
  private startupError: unknown = null;
  isBroken = false;

  constructor(
    Worker: NodeWorkerCtor,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctrlOffset: number,
    size: number,
    source = WORKER_SOURCE,
  ) {
    this.size = size;
    this.ctrl = new Int32Array(memory.buffer, ctrlOffset, CTRL_BYTES / 4);
    this.fctl = new Float32Array(memory.buffer, ctrlOffset, CTRL_BYTES / 4);
    this.ctrl.fill(0);
    for (let index = 0; index < size; index++) {
      const w = new Worker(source, { eval: true, workerData: { module, memory, index, ctrlOffset } });
      w.on("error", (e) => {
        this.startupError = e;
        this.isBroken = true;
      });
      w.unref();
      this.workers.push(w);
    }
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
      Atomics.wait(c, 1, pending, Math.min(left, 100));
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
