// The float32 WebAssembly GEMM as a JS object: one module instance, its memory and (with shared memory) a thread
// pool. Operands are copied into the memory, the kernel runs over column ranges (split across threads at multiples
// of 16 columns, which never changes a result bit, see assembly/gemm.ts), and out is copied back.
// Memory layout: [0, 64 KiB) module statics and the pool's control block at CTRL_OFFSET, then resident arrays
// (allocResident: operands that live in the memory and are used in place), then per call: per-thread scratch and
// copies of a, b, out, a2, b2 that are not resident, each 64-byte aligned. The memory grows to the largest call
// seen and never shrinks.

import { ArgumentError, KernelError } from "../../errors.js";
import { panelLength } from "../panel.js";
import { decodeBase64 } from "./decode.js";
import { RELAXED, SHARED_MAX_PAGES, SIMD } from "./generated/modules.js";
import { hostCores, hostWorkers, MAX_WORKERS, ThreadPool, webWorkers } from "./pool.js";
import { withSharedMemory } from "./shared-module.js";

/** Which instruction set a build uses: plain SIMD128 or relaxed SIMD (f32x4.relaxed_madd). */
export type WasmBuild = "simd" | "relaxed";

interface GemmExports {
  gemm(
    out: number,
    a: number,
    b: number,
    m: number,
    k: number,
    n: number,
    transA: number,
    transB: number,
    alpha: number,
    beta: number,
    a2: number,
    b2: number,
    k2: number,
    j0: number,
    j1: number,
    work: number,
  ): void;
  workBytes(k2: number): number;
  geluNew(x: number, n: number): void;
  addRowVector(h: number, rows: number, d: number, v: number): void;
  addScaled(out: number, low: number, n: number, s: number): void;
  attend(
    out: number,
    q: number,
    qStride: number,
    K: number,
    V: number,
    W: number,
    past: number,
    t: number,
    numHeads: number,
    numKvHeads: number,
    D: number,
    scale: number,
    scores: number,
  ): void;
}

const PAGE = 65536;
const BASE = 65536;
const CTRL_OFFSET = 8192; // CTRL_OFFSET + CTRL_BYTES stays below BASE
const UNSHARED_MAX_PAGES = 65536;
/** Columns per thread are a multiple of this (keeps every thread's tail identical to the single-thread run). */
const COL_ALIGN = 16;
/**
 * Column chunks per thread of a threaded call, claimed dynamically (pool.ts). The thread that finishes first waits
 * up to one chunk for the other: 8 per thread against 4 made an 8-sequence GPT-2-small step 1–5% faster (three
 * interleaved in-process runs; 1 sequence and 128-row prefill within the noise).
 */
const CHUNKS_PER_THREAD = 8;
/** Timeout of a threaded call: a fixed allowance plus 1 ms per 10 MFLOP (far slower than any kernel here). */
const TIMEOUT_BASE_MS = 20_000;
/** Timeout for a browser pool's workers to start and instantiate the module. */
const WEB_START_TIMEOUT_MS = 10_000;

/** The module bytes of a build: the shipped private-memory module, or its shared-memory variant (threads). */
export function wasmBytes(build: WasmBuild, shared: boolean): Uint8Array<ArrayBuffer> {
  const bytes = decodeBase64(build === "relaxed" ? RELAXED : SIMD);
  return shared ? withSharedMemory(bytes, SHARED_MAX_PAGES) : bytes;
}

/** Whether this engine can compile a build (WebAssembly.validate on the module itself). */
export function canRun(build: WasmBuild, shared: boolean): boolean {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.validate !== "function") return false;
  if (shared && typeof SharedArrayBuffer !== "function") return false;
  try {
    return WebAssembly.validate(wasmBytes(build, shared));
  } catch {
    return false;
  }
}

let warned = false; // the warning of disableThreads is given once per process

const align = (x: number): number => Math.ceil(x / 64) * 64;
// Resident arrays (allocResident) stop this far below the maximum, so that when long-lived arrays (weights, KV
// caches) have taken what they can, the per-call scratch of later products, gelu and attention still fits.
const SCRATCH_HEADROOM = 64 * 2 ** 20;

/** A float32 GEMM backed by one WebAssembly instance. */
export class WasmGemm {
  readonly build: WasmBuild;
  readonly shared: boolean;
  readonly module: WebAssembly.Module;
  private readonly memory: WebAssembly.Memory;
  private readonly fn: GemmExports;
  private heap: Float32Array;
  private pool: ThreadPool | null = null;
  private starting: Promise<number> | null = null; // a browser pool being started
  private spawning = false; // inside poolOf: a product started from there (async_hooks) runs on the caller
  /** Why kernel threads are off (a worker could not start, or the host refused to start one); null while fine. */
  threadError: string | null = null;
  // resident arrays (allocResident) occupy [BASE, top); per-call scratch starts at top
  private top = BASE;
  // byte offset → aligned bytes of each resident array in use, and released blocks by aligned size
  private readonly live = new Map<number, number>();
  private readonly free = new Map<number, number[]>();
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  /** Pool timeout (ms); tests shorten it. */
  timeoutMs = TIMEOUT_BASE_MS;

  constructor(module: WebAssembly.Module, build: WasmBuild, shared: boolean) {
    this.build = build;
    this.shared = shared;
    this.module = module;
    this.memory = shared
      ? new WebAssembly.Memory({ initial: 2, maximum: SHARED_MAX_PAGES, shared: true })
      : new WebAssembly.Memory({ initial: 2, maximum: UNSHARED_MAX_PAGES });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.fn = instance.exports as unknown as GemmExports;
    this.heap = new Float32Array(this.memory.buffer);
    this.buffers.add(this.heap.buffer);
  }

  /**
   * A float32 array of `length` elements inside this instance's memory (shared builds only, whose views survive
   * memory growth; null otherwise). Products read such operands in place and write such an out in place instead
   * of copying. The space is reused only after releaseResident: allocate long-lived arrays (weights) once.
   */
  allocResident(length: number, op = "kernelFloat32Array"): Float32Array | null {
    const ptr = this.take(length, 4, op);
    return ptr < 0 ? null : new Float32Array(this.memory.buffer, ptr, length);
  }

  /** A byte array inside this instance's memory (quantized weights), as allocResident. */
  allocResidentBytes(length: number, op = "kernelBytes"): Uint8Array | null {
    const ptr = this.take(length, 1, op);
    return ptr < 0 ? null : new Uint8Array(this.memory.buffer, ptr, length);
  }

  /**
   * Gives a resident array's space back for a later allocation of the same size (allocResident's free list).
   * Returns false (and does nothing) for anything else: not resident, not from allocResident, or already released.
   * The array must not be used afterwards: its memory may become another array.
   */
  releaseResident(x: Float32Array | Uint8Array): boolean {
    const at = this.resident(x);
    const bytes = at >= 0 ? this.live.get(at) : undefined;
    if (bytes === undefined || bytes !== align(x.byteLength)) return false;
    this.live.delete(at);
    const list = this.free.get(bytes);
    if (list) list.push(at);
    else this.free.set(bytes, [at]);
    return true;
  }

  // Reserves length elements of `size` bytes for resident arrays; returns their byte offset (-1: private memory).
  // A released block of the same aligned size is reused first (zeroed), so arrays allocated and released over and
  // over (a runtime's adapters) do not grow the memory.
  private take(length: number, size: number, op: string): number {
    if (!this.shared) return -1;
    const reuse = this.free.get(align(size * length))?.pop();
    if (reuse !== undefined) {
      new Uint8Array(this.memory.buffer, reuse, size * length).fill(0);
      this.live.set(reuse, align(size * length));
      return reuse;
    }
    const ptr = this.top;
    const bytes = size * length;
    const top = ptr + align(bytes);
    const limit = this.maxBytes() - SCRATCH_HEADROOM;
    if (top > limit) {
      const available = Math.max(0, Math.floor((limit - ptr) / size));
      throw new ArgumentError(
        "too_large",
        `${op}: length ${length} (${bytes} bytes) does not fit in the kernel memory, expected at most ${available} more elements (${this.maxBytes() / 2 ** 30} GiB in all)`,
        { name: "length", value: length, available },
      );
    }
    try {
      this.grow(top);
    } catch (e) {
      // the memory did not grow: nothing was taken, later products still fit as before
      throw new KernelError(
        "out_of_memory",
        `${op}: length ${length} (${bytes} bytes): the kernel memory could not grow to ${top} bytes (${e instanceof Error ? e.message : String(e)})`,
        { name: "length", value: length },
      );
    }
    this.top = top;
    this.live.set(ptr, align(bytes));
    return ptr;
  }

  // byte offset of an operand already in this memory, or -1
  private resident(x: Float32Array | Uint8Array | null): number {
    return x && this.buffers.has(x.buffer) ? x.byteOffset : -1;
  }

  /** Compiles a build synchronously (fine in Node and in workers; browsers limit it on the main thread). */
  static createSync(build: WasmBuild, shared: boolean): WasmGemm {
    return new WasmGemm(new WebAssembly.Module(wasmBytes(build, shared)), build, shared);
  }

  /** Compiles a build asynchronously. */
  static async create(build: WasmBuild, shared: boolean): Promise<WasmGemm> {
    return new WasmGemm(await WebAssembly.compile(wasmBytes(build, shared)), build, shared);
  }

  /**
   * Most threads a call can use: 1 without shared memory or a worker host. In Node the pool starts on demand; in a
   * browser only the workers startWebPool() has already started count (none before it resolves or after a failure).
   */
  maxThreads(): number {
    if (!this.shared || this.threadError !== null) return 1;
    if (hostWorkers() !== null) return MAX_WORKERS + 1;
    return this.pool && !this.pool.isBroken ? this.pool.size + 1 : 1;
  }

  /**
   * Starts a browser pool of `workers` Web Workers (cross-origin isolated pages; no-op elsewhere). A running pool
   * with at least that many workers is kept, a smaller or broken one replaced. Resolves to the threads calls may
   * now use; never rejects (a pool that fails to start leaves calls single-threaded).
   */
  async startWebPool(
    workers: number,
    timeoutMs = WEB_START_TIMEOUT_MS,
    Worker = webWorkers(), // tests pass a stand-in
  ): Promise<number> {
    if (!this.shared || !Worker || workers < 1) return this.maxThreads();
    while (this.starting) await this.starting;
    const size = Math.min(MAX_WORKERS, workers);
    if (this.pool && !this.pool.isBroken && this.pool.size >= size) return this.maxThreads();
    this.pool?.close();
    this.pool = null;
    this.starting = (async () => {
      try {
        this.pool = await ThreadPool.web(Worker, this.module, this.memory, CTRL_OFFSET, size, timeoutMs);
      } catch {
        this.pool = null;
      }
      this.starting = null;
      return this.maxThreads();
    })();
    return this.starting;
  }

  /** Bytes a call needs, to check against maxBytes() before calling. */
  bytesFor(m: number, k: number, n: number, k2: number, threads: number): number {
    const work = align(this.fn.workBytes(k2));
    return (
      this.top +
      threads * work +
      align(4 * m * k) +
      align(4 * k * n) +
      align(4 * m * n) +
      align(4 * m * k2) +
      align(4 * k2 * n)
    );
  }

  /** Whether `bytes` of per-call scratch (gelu, attention) fit above the resident arrays. */
  scratchFits(bytes: number): boolean {
    return this.top + bytes <= this.maxBytes();
  }

  /** Largest memory this instance can have. */
  maxBytes(): number {
    return (this.shared ? SHARED_MAX_PAGES : UNSHARED_MAX_PAGES) * PAGE;
  }

  /**
   * out = beta·out + alpha·[op(a) | a2]·[op(b) ; b2] (see assembly/gemm.ts); a2 [m, k2] and b2 [k2, n] row-major.
   * threads > 1 splits the columns over the pool (results identical to threads = 1). Returns out.
   */
  gemm(
    out: Float32Array,
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
    alpha: number,
    beta: 0 | 1,
    threads = 1,
    a2: Float32Array | null = null,
    b2: Float32Array | null = null,
    k2 = 0,
  ): Float32Array {
    const flags = transB ? 1 : 0;
    return this.run(out, a, b, 4 * k * n, m, k, n, transA, flags, alpha, beta, threads, a2, b2, k2, COL_ALIGN);
  }

  /**
   * out = beta·out + alpha·[a | a2]·[b ; b2] with b pre-packed in panels (kernels/panel.ts: op(b) [k, n] as
   * ⌈n/16⌉ 16-column panels); a [m, k] row-major. Bits equal gemm() on b unpacked. Returns out.
   */
  panelGemm(
    out: Float32Array,
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    alpha: number,
    beta: 0 | 1,
    threads = 1,
    a2: Float32Array | null = null,
    b2: Float32Array | null = null,
    k2 = 0,
  ): Float32Array {
    return this.run(out, a, b, 4 * panelLength(k, n), m, k, n, false, 8, alpha, beta, threads, a2, b2, k2, COL_ALIGN);
  }

  /**
   * out = x·op(bq) + a2·b2 with bq quantized (type 1 = Q8_0, 2 = Q4_0, see assembly/quant.ts): bq stored [k, n]
   * with blocks along n, or with transB [n, k] with blocks along k. Column ranges of
   * threads start at multiples of 32 (block boundaries). q8Activations: m < 4 rows with transB use llama.cpp's
   * arithmetic (x quantized to Q8_0, integer dot products; assembly/quant-dot.ts). Returns out.
   */
  qgemm(
    out: Float32Array,
    x: Float32Array,
    bq: Uint8Array,
    type: 1 | 2,
    m: number,
    k: number,
    n: number,
    transB: boolean,
    threads = 1,
    a2: Float32Array | null = null,
    b2: Float32Array | null = null,
    k2 = 0,
    q8Activations = false,
  ): Float32Array {
    const flags = (type << 1) | (transB ? 1 : 0) | (q8Activations ? 16 : 0);
    // decode over blocks along n (m < 4, not transB) stays on one thread: split by columns, every thread reads a
    // short segment of each of the k rows (544 bytes per row at 512 Q8_0 columns), a strided pattern that streamed
    // 1.5–2.3× slower on two threads than one thread reading whole rows in order (bench/quant.bench.mjs)
    const t = m < 4 && !transB ? 1 : threads;
    return this.run(out, x, bq, bq.byteLength, m, k, n, false, flags, 1, 0, t, a2, b2, k2, 2 * COL_ALIGN);
  }

  private run(
    out: Float32Array,
    a: Float32Array,
    b: Float32Array | Uint8Array,
    bBytes: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    bFlags: number,
    alpha: number,
    beta: 0 | 1,
    threads: number,
    a2: Float32Array | null,
    b2: Float32Array | null,
    k2: number,
    colAlign: number,
  ): Float32Array {
    if (m === 0 || n === 0) return out;
    let t = Math.max(1, Math.min(threads, this.maxThreads(), Math.floor(n / colAlign)));
    // the pool first: starting it may run other products (an async_hooks init hook fires inside new Worker),
    // which use the scratch space this call is about to fill
    const pool = t > 1 ? this.poolOf(t - 1) : null;
    if (!pool) t = 1;
    const work = align(this.fn.workBytes(k2));
    const scratch = this.top;
    const place = this.placer(scratch + t * work);
    const offA = place.at(a, 4 * m * k);
    const offB = place.at(b, bBytes);
    const offOut = place.at(out, 4 * m * n);
    const offA2 = place.at(a2, 4 * m * k2);
    const offB2 = place.at(b2, 4 * k2 * n);
    this.reserve(place.end(), "gemm");
    const h = this.heap;
    if (this.resident(a) < 0) h.set(a.subarray(0, m * k), offA / 4);
    if (this.resident(b) < 0) {
      if (b instanceof Float32Array) h.set(b.subarray(0, bBytes / 4), offB / 4);
      else new Uint8Array(this.memory.buffer, offB, bBytes).set(b.subarray(0, bBytes));
    }
    const outInPlace = this.resident(out) >= 0;
    if (beta === 1 && !outInPlace) h.set(out.subarray(0, m * n), offOut / 4);
    if (k2 > 0 && a2 && b2) {
      if (this.resident(a2) < 0) h.set(a2.subarray(0, m * k2), offA2 / 4);
      if (this.resident(b2) < 0) h.set(b2.subarray(0, k2 * n), offB2 / 4);
    }
    const args = [offOut, offA, offB, m, k, n, transA ? 1 : 0, bFlags, alpha, beta, offA2, offB2, k2] as const;
    if (!pool) {
      this.fn.gemm(...args, 0, n, scratch);
    } else {
      const chunk = Math.ceil(n / t / colAlign) * colAlign;
      const ranges: [number, number, number][] = [];
      for (let i = 0; i < t && i * chunk < n; i++)
        ranges.push([i * chunk, Math.min(n, (i + 1) * chunk), scratch + i * work]);
      const flops = 2 * m * n * (k + k2);
      // CHUNKS_PER_THREAD column chunks per thread, claimed dynamically: a thread that wakes late or shares its
      // core does fewer (same bits: chunks start at multiples of colAlign, like the ranges)
      const width = Math.max(colAlign, Math.ceil(n / (t * CHUNKS_PER_THREAD) / colAlign) * colAlign);
      pool.run({
        args,
        ranges,
        runOwn: (j0, j1, w) => this.fn.gemm(...args, j0, j1, w),
        timeoutMs: Math.round(this.timeoutMs + flops / 1e7),
        chunks: ranges.length > 1 ? { j0: 0, j1: n, width } : undefined,
      });
    }
    if (!outInPlace) out.set(this.heap.subarray(offOut / 4, offOut / 4 + m * n));
    return out;
  }

  /**
   * The pool, started (or restarted after a failure) with at least `workers` workers; null where threads are off
   * (threadError), where the host refuses to start a worker (which turns them off), or while a pool is being
   * started (a product started from inside the start-up runs on the calling thread instead of starting another).
   */
  poolOf(workers: number): ThreadPool | null {
    if (this.pool && !this.pool.isBroken && this.pool.size >= workers) return this.pool;
    if (this.threadError !== null || this.spawning) return null;
    const Worker = hostWorkers();
    if (!Worker) return null; // a browser pool that broke: maxThreads() is 1 until startWebPool again
    const size = Math.max(workers, Math.min(MAX_WORKERS, hostCores() - 1));
    return this.startPool(Worker, size);
  }

  /** Replaces the pool with one of `workers` workers running `source` (and `module`): tests of failure handling. */
  poolForTest(workers: number, source: string, module = this.module): ThreadPool | null {
    const Worker = hostWorkers();
    if (!Worker) throw new Error("no worker host");
    return this.startPool(Worker, workers, source, module);
  }

  private startPool(
    Worker: NonNullable<ReturnType<typeof hostWorkers>>,
    size: number,
    source?: string,
    module = this.module,
  ): ThreadPool | null {
    this.pool?.close();
    this.pool = null;
    this.spawning = true;
    try {
      const onFail = (reason: string) => this.disableThreads(reason);
      this.pool = ThreadPool.node(Worker, module, this.memory, CTRL_OFFSET, size, source, onFail);
    } catch (e) {
      // e.g. ERR_ACCESS_DENIED under Node's permission model without --allow-worker
      this.disableThreads(`a kernel thread could not be started: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.spawning = false;
    }
    return this.pool;
  }

  /** Turns kernel threads off for this instance (products run on the calling thread) and reports why, once. */
  private disableThreads(reason: string): void {
    if (this.threadError !== null) return;
    this.threadError = reason;
    this.pool?.close();
    this.pool = null;
    if (warned) return;
    warned = true;
    const proc = (globalThis as { process?: { emitWarning?: (m: string, o: { code: string }) => void } }).process;
    proc?.emitWarning?.(`lorakit: kernel threads are off, products run on the calling thread (${reason})`, {
      code: "LORAKIT_KERNEL_THREADS",
    });
  }

  /** Lets threads be tried again after a start-up failure (initKernels). */
  retryThreads(): void {
    this.threadError = null;
  }

  /**
   * h [rows, d] += v [d] on every row, in place (assembly/rows.ts), on the caller's thread: one float32 add per
   * element, the bits of the TypeScript loop. Returns h.
   */
  addRowVector(h: Float32Array, rows: number, d: number, v: Float32Array): Float32Array {
    const len = rows * d;
    if (len === 0) return h;
    const [offH, offV] = this.scratch("addRowVector", h, len, v, d);
    this.fn.addRowVector(offH, rows, d, offV);
    if (this.resident(h) < 0) h.set(this.heap.subarray(offH / 4, offH / 4 + len));
    return h;
  }

  /**
   * out[i] += s·low[i] for i < n where s·low[i] ≠ 0, with JavaScript's float64 product and sum rounded to float32
   * once (assembly/rows.ts), on the caller's thread. Returns out.
   */
  addScaled(out: Float32Array, low: Float32Array, n: number, s: number): Float32Array {
    if (n === 0) return out;
    const [offOut, offLow] = this.scratch("addScaled", out, n, low, n);
    this.fn.addScaled(offOut, offLow, n, s);
    if (this.resident(out) < 0) out.set(this.heap.subarray(offOut / 4, offOut / 4 + n));
    return out;
  }

  // Byte offsets of the first la floats of a and lb of b: in place when resident, else copied into scratch above
  // the resident arrays (the caller checks scratchFits first).
  private scratch(op: string, a: Float32Array, la: number, b: Float32Array, lb: number): [number, number] {
    const place = this.placer(this.top);
    const offA = place.at(a, 4 * la);
    const offB = place.at(b, 4 * lb);
    this.reserve(place.end(), op);
    if (this.resident(a) < 0) this.heap.set(a.subarray(0, la), offA / 4);
    if (this.resident(b) < 0) this.heap.set(b.subarray(0, lb), offB / 4);
    return [offA, offB];
  }

  // Where a call's operands go: a resident array (or null) at its own offset, the others one after another from
  // `start`, each 64-byte aligned; end() is the first byte after them (what the call must reserve).
  private placer(start: number) {
    let end = start;
    return {
      at: (x: Float32Array | Uint8Array | null, bytes: number): number => {
        const at = this.resident(x);
        if (at >= 0) return at;
        const off = end;
        end += align(bytes);
        return off;
      },
      end: () => end,
    };
  }

  /** GPT-2's gelu_new in place over x (assembly/gelu.ts), on the caller's thread. Returns x. */
  gelu(x: Float32Array): Float32Array {
    if (x.length === 0) return x;
    const at = this.resident(x);
    if (at >= 0) {
      this.fn.geluNew(at, x.length);
      return x;
    }
    const off = this.top;
    this.reserve(off + align(4 * x.length), "gelu");
    this.heap.set(x, off / 4);
    this.fn.geluNew(off, x.length);
    x.set(this.heap.subarray(off / 4, off / 4 + x.length));
    return x;
  }

  /**
   * Attention of t new rows over a KV cache (assembly/attention.ts; arguments as kernels/attention.ts), on the
   * caller's thread. K and V must be resident (allocResident): returns false, doing nothing, when they are not.
   */
  attend(
    out: Float32Array,
    q: Float32Array,
    qStride: number,
    K: Float32Array,
    V: Float32Array,
    W: number,
    past: number,
    t: number,
    numHeads: number,
    numKvHeads: number,
    D: number,
    scale: number,
  ): boolean {
    const offK = this.resident(K);
    const offV = this.resident(V);
    if (offK < 0 || offV < 0) return false;
    if (t === 0) return true;
    const width = numHeads * D; // q's heads and out's row
    const offQ = this.top;
    const offOut = offQ + align(4 * t * width);
    const offScores = offOut + align(4 * t * width);
    const end = offScores + align(4 * (past + t));
    if (!this.scratchFits(end - offQ)) return false; // no room for the scratch: the TypeScript kernel instead
    this.reserve(end, "attention");
    const h = this.heap;
    for (let i = 0; i < t; i++) h.set(q.subarray(i * qStride, i * qStride + width), offQ / 4 + i * width);
    this.fn.attend(offOut, offQ, width, offK, offV, W, past, t, numHeads, numKvHeads, D, scale, offScores);
    out.set(h.subarray(offOut / 4, offOut / 4 + t * width));
    return true;
  }

  /** Stops the pool's workers (in Node they are unref'd, so this is optional; a browser page needs startWebPool again). */
  close(): void {
    this.pool?.close();
    this.pool = null;
  }

  // Grows the memory to at least `bytes`. A memory that cannot grow (the host refuses the pages) is KernelError
  // out_of_memory, not the engine's RangeError; nothing was written yet.
  private reserve(bytes: number, op: string): void {
    const have = this.memory.buffer.byteLength;
    try {
      this.grow(bytes);
    } catch (e) {
      throw new KernelError(
        "out_of_memory",
        `${op}: the kernel memory could not grow from ${have} to ${bytes} bytes (${e instanceof Error ? e.message : String(e)})`,
        { bytes, have },
      );
    }
  }

  // Grows the memory to at least `bytes` (the engine's RangeError when it cannot) and refreshes the heap view.
  private grow(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / PAGE));
    if (this.heap.buffer.byteLength !== this.memory.buffer.byteLength || this.heap.length === 0) {
      this.heap = new Float32Array(this.memory.buffer);
      this.buffers.add(this.heap.buffer);
    }
  }
}
