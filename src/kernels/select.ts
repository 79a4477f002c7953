// Chooses the kernel for a call. Float32 products large enough to repay the copy into WebAssembly memory go to the
// WebAssembly SIMD GEMM (relaxed SIMD where the engine validates it, else plain SIMD128), split over kernel
// threads when they are big enough; everything else (float64, tiny shapes, no WebAssembly) runs the TypeScript
// kernels in scalar.ts. Results never depend on the thread count. In Node the WebAssembly module compiles on first
// use; browsers call initKernels() once (main threads may not compile it synchronously) and use the TypeScript
// kernels until it resolves.

import { ArgumentError, KernelError } from "../errors.js";
import { attentionScalar } from "./attention.js";
import type { AddLowRankKernel, GemmKernel, KernelArray, LoraGemmKernel, QuantLoraGemmKernel } from "./contract.js";
import { PANEL, unpackPanels } from "./panel.js";
import { dequantizeBlocks } from "./quant-scalar.js";
import { addLowRankScalar, gemmScalar, isZeroArray, loraGemmScalar } from "./scalar.js";
import { hostCores, hostWorkers, webWorkers } from "./wasm/pool.js";
import { canRun, type WasmBuild, WasmGemm } from "./wasm/runtime.js";

export { isZeroArray } from "./scalar.js";

/** Products with fewer multiply-adds (m·k·n) than this stay in TypeScript: the copy in and out costs more. */
export const WASM_MIN_MACS = 4096;
/** Products with fewer multiply-adds than this never go to the thread pool (waking workers costs ~50 µs). */
export const THREAD_MIN_MACS = 1 << 22;

/** Which kernels run float32 products, and how many threads they may use. */
export interface KernelInfo {
  backend: "wasm-relaxed-simd" | "wasm-simd" | "typescript";
  /** Threads a large float32 product uses by default. */
  threads: number;
  /** Most threads a call may ask for (1 without shared memory and a worker host). */
  maxThreads: number;
  /**
   * Why kernel threads are off, when a worker could not start (for instance a host that loads no workers, or Node's
   * permission model without --allow-worker); products then run on the calling thread. Absent while threads work.
   */
  threadError?: string;
}

/** Settings of configureKernels. */
export interface KernelOptions {
  /** Default threads for large float32 products (clamped to maxThreads); default: the host's available cores. */
  threads?: number;
  /** "auto" (default) uses WebAssembly when available; "typescript" forces the plain kernels. */
  backend?: "auto" | "typescript";
  /**
   * Single-row products (n < 4) over a Q8_0/Q4_0 weight stored "out_in": "float32" (default) keeps x float32 (the
   * float32 error bound of the dequantized product); "q8_0" quantizes each row of x to Q8_0 and uses integer dot
   * products, llama.cpp's arithmetic (docs/quant.md), WebAssembly kernels only.
   */
  decodeActivations?: "float32" | "q8_0";
}

let runtime: WasmGemm | null | undefined; // undefined: not loaded yet
let pending: Promise<WasmGemm | null> | null = null;
let threadsSetting: number | undefined;
let backendSetting: "auto" | "typescript" = "auto";
let decodeActivationsSetting: "float32" | "q8_0" = "float32";

function pickBuild(shared: boolean): WasmBuild | null {
  if (canRun("relaxed", shared)) return "relaxed";
  if (canRun("simd", shared)) return "simd";
  return null;
}

// Shared memory only where kernel threads exist (Node's worker_threads, or Web Workers on a cross-origin isolated
// page); elsewhere a private memory.
function wantShared(): boolean {
  return (hostWorkers() !== null || webWorkers() !== null) && canRun("simd", true);
}

// Node, Deno, Bun and workers may compile synchronously; a browser main thread waits for initKernels().
function syncCompileAllowed(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } }; document?: unknown };
  return g.process?.versions?.node !== undefined || g.document === undefined;
}

function wasm(): WasmGemm | null {
  if (backendSetting === "typescript") return null;
  if (runtime !== undefined) return runtime;
  if (!syncCompileAllowed()) return null;
  const shared = wantShared();
  const build = pickBuild(shared);
  try {
    runtime = build ? WasmGemm.createSync(build, shared) : null;
  } catch {
    runtime = null;
  }
  return runtime;
}

/**
 * Loads the WebAssembly kernels asynchronously (call once in browsers before heavy work; optional in Node).
 * On a cross-origin isolated page it also starts the Web Workers of the thread pool (navigator.hardwareConcurrency
 * − 1 of them, or threads − 1 after configureKernels({ threads })); elsewhere in browsers nothing is threaded.
 * Calling it again restarts a pool that failed. Resolves to the kernels now in use; never rejects (falls back to
 * TypeScript, or to one thread).
 * @example await initKernels(); // then matmul / loraForward use WebAssembly SIMD (and threads where isolated)
 */
export async function initKernels(): Promise<KernelInfo> {
  if (runtime === undefined) {
    pending ??= (async () => {
      const shared = wantShared();
      const build = pickBuild(shared);
      try {
        return build ? await WasmGemm.create(build, shared) : null;
      } catch {
        return null;
      }
    })();
    const loaded = await pending;
    if (runtime === undefined) runtime = loaded;
  }
  runtime?.retryThreads();
  if (runtime && backendSetting === "auto" && webWorkers() !== null) {
    await runtime.startWebPool(Math.floor(threadsSetting ?? hostCores()) - 1);
  }
  return kernelInfo();
}

/** The kernels float32 products use now and their thread counts. */
export function kernelInfo(): KernelInfo {
  const w = wasm();
  if (!w) return { backend: "typescript", threads: 1, maxThreads: 1 };
  const info: KernelInfo = {
    backend: w.build === "relaxed" ? "wasm-relaxed-simd" : "wasm-simd",
    threads: defaultThreads(w),
    maxThreads: w.maxThreads(),
  };
  if (w.threadError !== null) info.threadError = w.threadError;
  return info;
}

/**
 * Sets the default thread count and backend for every later call (process-wide, like OMP_NUM_THREADS).
 * Omitted fields return to their defaults. Returns the resulting kernelInfo().
 */
export function configureKernels(options: KernelOptions = {}): KernelInfo {
  const op = "configureKernels";
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ArgumentError("invalid_argument", `${op}: options is ${describe(options)}, expected an object`, {
      name: "options",
    });
  }
  const { threads, backend, decodeActivations } = options as {
    threads?: unknown;
    backend?: unknown;
    decodeActivations?: unknown;
  };
  if (threads !== undefined && !(typeof threads === "number" && Number.isInteger(threads) && threads >= 1)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.threads is ${describe(threads)}, expected an integer ≥ 1 (or undefined for the host's cores)`,
      { name: "threads", value: threads },
    );
  }
  if (backend !== undefined && backend !== "auto" && backend !== "typescript") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.backend is ${describe(backend)}, expected "auto" or "typescript"`,
      { name: "backend", value: backend },
    );
  }
  if (decodeActivations !== undefined && decodeActivations !== "float32" && decodeActivations !== "q8_0") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.decodeActivations is ${describe(decodeActivations)}, expected "float32" or "q8_0"`,
      { name: "decodeActivations", value: decodeActivations },
    );
  }
  threadsSetting = threads;
  backendSetting = backend ?? "auto";
  decodeActivationsSetting = decodeActivations ?? "float32";
  return kernelInfo();
}

function describe(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  return Array.isArray(v) ? "an array" : `a ${typeof v}`;
}

function defaultThreads(w: WasmGemm): number {
  const want = threadsSetting ?? hostCores();
  return Math.max(1, Math.min(Math.floor(want), w.maxThreads()));
}

function threadsFor(w: WasmGemm, macs: number, threads: number | undefined): number {
  if (macs < THREAD_MIN_MACS) return 1;
  return Math.max(1, Math.min(Math.floor(threads ?? defaultThreads(w)), w.maxThreads()));
}

function wasmFor(out: KernelArray, m: number, k: number, n: number, k2: number): WasmGemm | null {
  if (!(out instanceof Float32Array) || m * k * n < WASM_MIN_MACS) return null;
  const w = wasm();
  if (!w || w.bytesFor(m, k, n, k2, w.maxThreads()) > w.maxBytes()) return null;
  return w;
}

/**
 * A Float32Array of `length` zeros for operands used many times (weights): where the WebAssembly kernels run with
 * shared memory (Node), it lives inside their memory, so large products read it in place instead of copying it on
 * every call (this is what makes single-token decode fast). Elsewhere it is a plain Float32Array. The memory of such
 * arrays is kept until releaseKernelArray gives it back; allocate them once.
 * @example const w = kernelFloat32Array(dIn * dOut); w.set(weights);
 */
export function kernelFloat32Array(length: number): Float32Array {
  const op = "kernelFloat32Array";
  if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
    throw new ArgumentError("invalid_argument", `${op}: length is ${describe(length)}, expected an integer ≥ 0`, {
      name: "length",
      value: length,
    });
  }
  const w = wasm();
  const resident = w?.allocResident(length, op);
  if (resident) return resident;
  try {
    return new Float32Array(length);
  } catch (e) {
    throw new KernelError(
      "out_of_memory",
      `${op}: length ${length} (${4 * length} bytes) could not be allocated: ${e instanceof Error ? e.message : String(e)}`,
      { name: "length", value: length },
    );
  }
}

/** The GEMM used by the ops (see contract.ts). */
export const gemm: GemmKernel = (out, a, b, m, k, n, transA, transB, alpha, beta, threads) => {
  const w = wasmFor(out, m, k, n, 0);
  if (!w) return gemmScalar(out, a, b, m, k, n, transA, transB, alpha, beta);
  const f = out as Float32Array;
  w.gemm(
    f,
    a as Float32Array,
    b as Float32Array,
    m,
    k,
    n,
    transA,
    transB,
    alpha,
    beta,
    threadsFor(w, m * k * n, threads),
  );
  return out;
};

/**
 * The LoRA epilogue used by the ops (contract.ts): out += s·t·up. Large float32 problems form t·up with the
 * WebAssembly GEMM into a temporary and add s·(t·up) element by element, skipping exactly-zero addends like the
 * scalar kernel; up = 0 or s = 0 skips the term, so out stays bit-for-bit unchanged even where t overflowed.
 */
export const addLowRank: AddLowRankKernel = (out, t, up, n, r, dOut, s) => {
  if (s === 0 || r === 0 || isZeroArray(up, r * dOut)) return out; // the exactly-zero term: skipped (contract.ts)
  const w = wasmFor(out, n, r, dOut, 0);
  if (!w) return addLowRankScalar(out, t, up, n, r, dOut, s);
  const low = new Float32Array(n * dOut) as unknown as typeof out; // out is a Float32Array here (wasmFor)
  gemm(low, t, up, n, r, dOut, false, false, 1, 0); // t·up: [n, dOut]
  // the loop below in WebAssembly, with the same float64 arithmetic (rows.ts addScaled): the same bits
  if (w.scratchFits(8 * low.length + 128)) {
    w.addScaled(out as Float32Array, low as Float32Array, low.length, s);
    return out;
  }
  for (let i = 0; i < low.length; i++) {
    const d = s * low[i]!;
    if (d !== 0) out[i] = out[i]! + d;
  }
  return out;
};

/**
 * h [rows, d] += v [d] on every row (a bias), in place: one float32 add per element (computed in float64 and
 * rounded, which for a sum of two float32 values is the float32 sum), in WebAssembly (four lanes) where the kernels
 * run there and the scratch fits, else in TypeScript; both give the same bits. Returns h.
 */
export function addRowVector(h: Float32Array, rows: number, d: number, v: Float32Array): Float32Array {
  const w = rows * d >= ROW_VECTOR_MIN ? wasm() : null;
  if (w?.scratchFits(4 * (rows * d + d) + 128)) return w.addRowVector(h, rows, d, v);
  for (let i = 0; i < rows; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) h[o + j] = h[o + j]! + v[j]!;
  }
  return h;
}

// Below this many elements the copies into and out of the kernel memory cost more than the TypeScript loop saves.
const ROW_VECTOR_MIN = 256;

/**
 * out = x·w + s·t·up (contract.ts, LoraGemmKernel). In WebAssembly the low-rank term is fused into the GEMM: s·t
 * and up extend the last k-block of x and w, so each output tile takes s·t·up while it is in registers and h is
 * written once. s = 0 or an all-zero up runs the plain GEMM (so h = x·w bit for bit even where t is ±Infinity);
 * an exactly-zero t adds only ±0 products, which leave every accumulator (never −0, it starts at +0) and so h
 * bit-identical to x·w.
 */
export const loraGemm: LoraGemmKernel = (out, x, w, t, up, n, dIn, dOut, r, s, threads, transW = false) => {
  if (s === 0 || r === 0 || isZeroArray(up, r * dOut))
    return gemm(out, x, w, n, dIn, dOut, false, transW, 1, 0, threads);
  const k = wasmFor(out, n, dIn, dOut, r);
  if (!k) return loraGemmScalar(out, x, w, t, up, n, dIn, dOut, r, s, transW);
  const st = new Float32Array(n * r); // s·t: [n, r]
  for (let i = 0; i < st.length; i++) st[i] = s * t[i]!;
  const macs = n * (dIn + r) * dOut;
  k.gemm(
    out as Float32Array,
    x as Float32Array,
    w as Float32Array,
    n,
    dIn,
    dOut,
    false,
    transW,
    1,
    0,
    threadsFor(k, macs, threads),
    st,
    up as Float32Array,
    r,
  );
  return out;
};

/**
 * Gives the memory of an array from kernelFloat32Array or kernelBytes back, for a later allocation of the same size
 * (in Node; elsewhere those are plain arrays and this does nothing). Returns whether it did; false for any other
 * array or a second release. Do not use the array afterwards: its memory may become another array.
 */
export function releaseKernelArray(a: Float32Array | Uint8Array): boolean {
  return wasm()?.releaseResident(a) ?? false;
}

/**
 * A Uint8Array of `length` zero bytes for quantized weights used many times: inside the WebAssembly kernels' memory
 * where they run with shared memory (Node), so products read the blocks in place; elsewhere a plain Uint8Array.
 * Kept until releaseKernelArray, like kernelFloat32Array.
 * @example const bytes = kernelBytes(q.bytes.length); bytes.set(q.bytes); const w = { ...q, bytes };
 */
export function kernelBytes(length: number): Uint8Array {
  const op = "kernelBytes";
  if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
    throw new ArgumentError("invalid_argument", `${op}: length is ${describe(length)}, expected an integer ≥ 0`, {
      name: "length",
      value: length,
    });
  }
  return wasm()?.allocResidentBytes(length, op) ?? new Uint8Array(length);
}

/**
 * out = x·op(wq) + s·t·up with a quantized weight (contract.ts, QuantLoraGemmKernel). WebAssembly reads the blocks
 * directly (m < 4: a GEMV per row; larger: the packed GEMM on blocks dequantized while packing, with the low-rank
 * term fused as in loraGemm). Elsewhere: dequantize, then the float32 TypeScript kernels.
 */
export const quantLoraGemm: QuantLoraGemmKernel = (out, x, wq, type, t, up, n, dIn, dOut, r, s, transW, threads) => {
  const lowRank = s !== 0 && r > 0 && t !== null && up !== null;
  const w = n === 0 || dOut === 0 ? null : wasm();
  if (w && w.bytesFor(n, dIn, dOut, r, w.maxThreads()) <= w.maxBytes()) {
    const macs = n * (dIn + r) * dOut;
    const st = lowRank ? new Float32Array(n * r) : null; // s·t: [n, r]
    if (st) for (let i = 0; i < st.length; i++) st[i] = s * t![i]!;
    const q8 = decodeActivationsSetting === "q8_0";
    return w.qgemm(out, x, wq, type, n, dIn, dOut, transW, threadsFor(w, macs, threads), st, up, lowRank ? r : 0, q8);
  }
  const wf = dequantizeBlocks(new Float32Array(dIn * dOut), wq, type, (dIn * dOut) / 32);
  if (!lowRank) return gemmScalar(out, x, wf, n, dIn, dOut, false, transW, 1, 0);
  return loraGemmScalar(out, x, wf, t!, up!, n, dIn, dOut, r, s, transW);
};

/**
 * out = x·op(b) + s·t·up (beta = 0) or out + x·op(b) (beta = 1, no low-rank term) with b pre-packed in panels
 * (panel.ts): op(b) [k, n], x [m, k], t [m, r], up [r, n]. WebAssembly reads the panels in place, with the low-rank
 * term fused as in loraGemm, and its bits equal gemm()/loraGemm() on b unpacked; elsewhere (tiny products, no
 * WebAssembly) b is unpacked and the TypeScript kernels run. s = 0, r = 0 or an all-zero up: no term.
 */
export function panelGemm(
  out: Float32Array,
  x: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  beta: 0 | 1 = 0,
  t: Float32Array | null = null,
  up: Float32Array | null = null,
  r = 0,
  s = 0,
  threads?: number,
): Float32Array {
  const lowRank = beta === 0 && t !== null && up !== null && s !== 0 && r > 0 && !isZeroArray(up, r * n);
  const k2 = lowRank ? r : 0;
  const w = wasmFor(out, m, k, Math.ceil(n / PANEL) * PANEL, k2);
  if (!w) {
    const wf = unpackPanels(b, k, n);
    if (!lowRank) return gemmScalar(out, x, wf, m, k, n, false, false, 1, beta);
    return loraGemmScalar(out, x, wf, t!, up!, m, k, n, r, s, false);
  }
  let st: Float32Array | null = null; // s·t: [m, r]
  if (lowRank) {
    st = new Float32Array(m * r);
    for (let i = 0; i < st.length; i++) st[i] = s * t![i]!;
  }
  const macs = m * (k + k2) * n;
  return w.panelGemm(out, x, b, m, k, n, 1, beta, threadsFor(w, macs, threads), st, lowRank ? up : null, k2);
}

/**
 * GPT-2's "gelu_new" in place, x ← 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed as x / (1 + e^(−2u)):
 * in WebAssembly (float32, four lanes, within a few ulps) wherever the kernels run there, whatever x's length, so
 * every row of a batch gets the same bits; elsewhere in float64, rounded once. Returns x.
 */
export function geluNew(x: Float32Array): Float32Array {
  const w = wasm();
  if (w && 4 * x.length <= w.maxBytes() / 4 && w.scratchFits(4 * x.length + 64)) return w.gelu(x);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    x[i] = v / (1 + Math.exp(-2 * GELU_C * (v + 0.044715 * v * v * v)));
  }
  return x;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * Causal attention of a sequence's t new rows over its KV cache (arguments: kernels/attention.ts). Float32
 * WebAssembly where K and V live in kernel memory (kernelFloat32Array: the model runtime's caches under Node), else
 * the float64 TypeScript kernel; the choice depends only on where the cache lives, never on t or the batch.
 */
export function attention(
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
): void {
  const w = backendSetting === "typescript" ? null : (runtime ?? null);
  if (w?.attend(out, q, qStride, K, V, W, past, t, numHeads, numKvHeads, D, scale)) return;
  attentionScalar(out, q, qStride, K, V, W, past, t, numHeads, numKvHeads, D, scale);
}
