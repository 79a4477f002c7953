// A pool of kernel threads sharing one WebAssembly.Memory with the calling thread. The caller writes a job into the
// control block, bumps the generation, runs its own column range, then waits (in slices, with an overall timeout)
// until every worker given a range has counted `pending` down. Workers are started once and reused. Two hosts:
// - Node: worker_threads workers, fetched with process.getBuiltinModule so that browser bundles contain no Node
//   import; they are unref'd so they never keep a process alive, and the caller waits with Atomics.wait.
// - Browsers (cross-origin isolated pages only): Web Workers from a Blob URL of the same source, started
//   asynchronously by startWebPool (a worker cannot start while the main thread is busy); a browser main thread
//   may not call Atomics.wait, so the caller spins on Atomics.load after finishing its own equal share.
// Elsewhere there are no workers and calls stay single-threaded.
// Control block (int32 indices from ctrlOffset): 0 generation, 1 pending, 2 failed worker + 1, 3 shutdown,
// 4..16 the 13 job arguments (12 is alpha as float32), 20 a counter bumped on every start-up state change, 21 the
// first worker that failed to start + 1, 22 the next chunk to claim, 23 chunks, 24 their first column, 25 their
// width, 26 their end, 32 + 4w .. 35 + 4w worker w's j0, j1, work, mode (0 idle, 1 its range, 2 claim chunks:
// every thread, the caller included, takes the next chunk until none is left, so a thread that starts late or
// runs slower, on a busy core, does less instead of holding the others up), 224 + w worker
// w's start-up state (0 starting, 1 serving, −1 failed), 256.. a job error message, 512.. a start-up error message
// (char codes). A job goes only to workers in state 1; ranges meant for workers not serving yet (still starting
// after a short wait, or failed) are run by the caller itself, so no call waits for a worker that never started.
// A worker that fails to start (its own report in the control block, or its 'error'/'exit' event) closes the pool
// and is reported once through onStartFailure; the owner then stops using threads (runtime.ts).

import { KernelError } from "../../errors.js";
import { WEB_WORKER_SOURCE, WORKER_SOURCE } from "./worker-source.js";

/** Bytes of the control block. */
export const CTRL_BYTES = 4096;
/** Most workers one pool holds (the start-up states at 224 + w have room for 32). */
export const MAX_WORKERS = 31;
const MSG = 256;
const EVENTS = 20;
const START_FAILED = 21;
const STATE = 224;
const START_MSG = 512;
const NEXT = 22;
const CHUNKS = 23;
/** How long the caller polls for the workers to finish before it sleeps in Atomics.wait (ms). */
const AWAIT_SPIN_MS = 0.5;
const CHUNK_J0 = 24;
const CHUNK_WIDTH = 25;
const CHUNK_J1 = 26;
/** Longest a call waits for a fresh pool's workers to start before running their share itself. */
export const START_WAIT_MS = 2000;

interface NodeWorker {
  unref(): void;
  terminate(): Promise<number>;
  on(event: "error" | "exit", cb: (e: unknown) => void): void;
}
type NodeWorkerCtor = new (
  source: string,
  options: { eval: true; workerData: unknown; execArgv: string[] },
) => NodeWorker;

interface WebWorker {
  terminate(): void;
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string }) => void) | null;
}
export type WebWorkerCtor = new (url: string) => WebWorker;

/**
 * Starts worker `index` (which serves the control block) and routes its errors and its exit to onError; returns
 * its stopper. May throw (e.g. ERR_ACCESS_DENIED under Node's permission model without --allow-worker).
 */
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
  /** Longest wait for workers still starting (default START_WAIT_MS); their ranges then run on the caller. */
  startWaitMs?: number;
  /**
   * Columns [j0, j1) cut into chunks of `width` (the last one shorter): every thread claims chunks until none is left,
   * each with the work scratch of its range (ranges then only give the scratch). Absent: one range per thread.
   */
  chunks?: { j0: number; j1: number; width: number };
}

/** Kernel threads bound to one module and shared memory. */
export class ThreadPool {
  readonly size: number;
  private readonly ctrl: Int32Array;
  private readonly fctl: Float32Array;
  private readonly workers: { terminate(): unknown }[] = [];
  private lastError: unknown = null;
  private closed = false;
  /** Whether the caller may block in Atomics.wait (not on a browser main thread: it spins instead). */
  private readonly canBlock: boolean;
  isBroken = false;
  /** Why a worker of this pool could not start (null while none failed). */
  startFailure: string | null = null;
  /** Called once, with the reason, when a worker fails to start. */
  onStartFailure: (reason: string) => void = () => {};

  /** A pool of Node worker_threads workers running `source`; throws what `new Worker` throws (nothing started). */
  static node(
    Worker: NodeWorkerCtor,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctrlOffset: number,
    size: number,
    source = WORKER_SOURCE,
    onStartFailure?: (reason: string) => void,
  ): ThreadPool {
    return new ThreadPool(
      memory,
      ctrlOffset,
      size,
      true,
      (index, onError) => {
        // execArgv: [] so that the parent's flags (--input-type=module, -e, --require ...) do not apply to the
        // worker source; it runs as a CommonJS script or an ES module alike (worker-source.ts)
        const w = new Worker(source, { eval: true, workerData: { module, memory, index, ctrlOffset }, execArgv: [] });
        w.on("error", onError);
        w.on("exit", (code) => onError(`exited with code ${String(code)}`));
        w.unref();
        return w;
      },
      onStartFailure,
    );
  }

  private constructor(
    memory: WebAssembly.Memory,
    ctrlOffset: number,
    size: number,
    canBlock: boolean,
    spawn: Spawn,
    onStartFailure?: (reason: string) => void,
  ) {
    this.size = size;
    this.canBlock = canBlock;
    if (onStartFailure) this.onStartFailure = onStartFailure;
    this.ctrl = new Int32Array(memory.buffer, ctrlOffset, CTRL_BYTES / 4);
    this.fctl = new Float32Array(memory.buffer, ctrlOffset, CTRL_BYTES / 4);
    this.ctrl.fill(0);
    try {
      for (let index = 0; index < size; index++) this.workers.push(spawn(index, (e) => this.workerError(index, e)));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  // 'error' / 'exit' of worker `index` (delivered between calls): before it served, a start-up failure; after, the
  // pool is broken and the next call starts a fresh one
  private workerError(index: number, e: unknown): void {
    if (this.closed) return;
    this.lastError = e;
    this.isBroken = true;
    if (Atomics.load(this.ctrl, STATE + index) !== 1)
      this.failStart(`kernel thread ${index} failed to start: ${describe(e)}`);
  }

  private failStart(reason: string): void {
    if (this.startFailure !== null) return;
    this.startFailure = reason;
    this.close();
    this.onStartFailure(reason);
  }

  /** Workers serving jobs now. */
  readyCount(): number {
    let ready = 0;
    for (let w = 0; w < this.size; w++) if (Atomics.load(this.ctrl, STATE + w) === 1) ready++;
    return ready;
  }

  /**
   * Waits (at most waitMs, only where the caller may block) until `want` workers serve jobs or one failed to start;
   * returns the indices of the serving workers (at most `want`; none once a start-up failure closed the pool).
   */
  waitReady(want: number, waitMs = START_WAIT_MS): number[] {
    const c = this.ctrl;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const events = Atomics.load(c, EVENTS);
      const failed = Atomics.load(c, START_FAILED);
      if (failed !== 0 && this.startFailure === null) {
        this.failStart(`kernel thread ${failed - 1} failed to start: ${readText(c, START_MSG)}`);
      }
      if (this.startFailure !== null || this.closed) return [];
      const ready: number[] = [];
      for (let w = 0; w < this.size && ready.length < want; w++) if (Atomics.load(c, STATE + w) === 1) ready.push(w);
      const left = deadline - Date.now();
      if (ready.length >= want || left <= 0 || !this.canBlock) return ready;
      Atomics.wait(c, EVENTS, events, Math.min(left, 50));
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

  /**
   * Runs a job: range 0 on the caller, the others on serving workers; ranges left without a serving worker (workers
   * still starting after START_WAIT_MS, or a start-up failure) run on the caller too, so the result is the same.
   * With job.chunks every thread claims chunks instead (the caller runs whatever is left).
   * Throws KernelError on a failed job or a timeout.
   */
  run(job: PoolJob): void {
    const c = this.ctrl;
    const helpers = this.waitReady(job.ranges.length - 1, job.startWaitMs);
    for (let i = 0; i < job.args.length; i++) c[4 + i] = job.args[i]!;
    this.fctl[12] = job.args[8]!;
    for (let w = 0; w < this.size; w++) c[32 + 4 * w + 3] = 0;
    const ch = job.chunks;
    if (ch) {
      c[NEXT] = 0;
      c[CHUNKS] = Math.ceil((ch.j1 - ch.j0) / ch.width);
      c[CHUNK_J0] = ch.j0;
      c[CHUNK_WIDTH] = ch.width;
      c[CHUNK_J1] = ch.j1;
    }
    helpers.forEach((w, i) => {
      const r = job.ranges[i + 1]!;
      const s = 32 + 4 * w;
      c[s] = r[0];
      c[s + 1] = r[1];
      c[s + 2] = r[2];
      c[s + 3] = ch ? 2 : 1;
    });
    Atomics.store(c, 2, 0);
    Atomics.store(c, 1, helpers.length);
    if (helpers.length > 0) {
      Atomics.add(c, 0, 1);
      Atomics.notify(c, 0);
    }
    let ownError: unknown = null;
    try {
      if (ch) {
        // claim chunks with the caller's scratch until none is left (workers that never woke leave theirs to us)
        const work = job.ranges[0]![2];
        for (let i = Atomics.add(c, NEXT, 1); i < c[CHUNKS]!; i = Atomics.add(c, NEXT, 1)) {
          const j0 = ch.j0 + i * ch.width;
          job.runOwn(j0, Math.min(ch.j1, j0 + ch.width), work);
        }
      } else {
        // the caller's range, then every range no worker took
        for (const i of [0, ...rangeIndices(job.ranges.length, helpers.length)]) {
          const r = job.ranges[i];
          if (r) job.runOwn(r[0], r[1], r[2]);
        }
      }
    } catch (e) {
      ownError = e;
    }
    if (helpers.length > 0) this.await(job.timeoutMs);
    if (ownError !== null) throw ownError;
  }

  private await(timeoutMs: number): void {
    const c = this.ctrl;
    const deadline = Date.now() + timeoutMs;
    // the workers' last chunks end within a chunk's time: poll briefly before sleeping (a wake-up costs more)
    const spinUntil = performance.now() + AWAIT_SPIN_MS;
    while (Atomics.load(c, 1) !== 0 && performance.now() < spinUntil);
    for (;;) {
      const pending = Atomics.load(c, 1);
      if (pending === 0) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.close();
        throw new KernelError(
          "kernel_timeout",
          `gemm: ${pending} of ${this.size} kernel threads did not finish within ${timeoutMs} ms${this.lastError ? ` (worker error: ${describe(this.lastError)})` : ""}; the pool was closed`,
          { pending, timeoutMs },
        );
      }
      if (this.canBlock) Atomics.wait(c, 1, pending, Math.min(left, 100));
      // else spin: the caller has finished its own share of equal size, so only the workers' lag is left
    }
    const failed = Atomics.load(c, 2);
    if (failed !== 0) {
      const text = readText(c, MSG);
      throw new KernelError("kernel_failed", `gemm: kernel thread ${failed - 1} failed: ${text}`, {
        thread: failed - 1,
        message: text,
      });
    }
  }

  /** Stops the workers; the pool cannot be used afterwards. */
  close(): void {
    this.closed = true;
    this.isBroken = true;
    Atomics.store(this.ctrl, 3, 1);
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    for (const w of this.workers) void w.terminate();
  }
}

// indices of the ranges after the caller's and the `taken` workers' ones
function rangeIndices(count: number, taken: number): number[] {
  const out: number[] = [];
  for (let i = 1 + taken; i < count; i++) out.push(i);
  return out;
}

function readText(c: Int32Array, at: number): string {
  let text = "";
  for (let i = at; i < at + 256 && c[i] !== 0; i++) text += String.fromCharCode(c[i]!);
  return text;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
