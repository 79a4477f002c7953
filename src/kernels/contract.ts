// Kernel contracts. Row-major flat typed arrays, output first, explicit dims, no allocation, no checks.
// op(a) is [m, k]: a itself ([m, k]) or, with transA, a stored as [k, m]. op(b) is [k, n]: b ([k, n]) or, with
// transB, b stored as [n, k]. out is [m, n] and must not alias a or b.

/** The float typed arrays kernels work on. */
export type KernelArray = Float32Array | Float64Array;

/**
 * General matrix product: out = beta·out + alpha·op(a)·op(b). beta is 0 (out is overwritten, its old contents,
 * even NaN, are ignored) or 1 (accumulate). threads: how many threads a fast kernel may use (default: the
 * configured default); results are bit-identical for every thread count. Returns out.
 */
export type GemmKernel = <T extends KernelArray>(
  out: T,
  a: T,
  b: T,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: 0 | 1,
  threads?: number,
) => T;

/**
 * LoRA epilogue: out[i, j] += s · Σ_q t[i, q]·up[q, j] for t [n, r] and up [r, dOut]. An addend that is exactly
 * zero is skipped, so a zero low-rank term (s = 0, t = 0 or up = 0) leaves out bit-for-bit unchanged; with s = 0
 * or up all zero the term is not computed at all, so this holds even where t is ±Infinity (x·down overflowed).
 * Returns out.
 */
export type AddLowRankKernel = <T extends KernelArray>(
  out: T,
  t: T,
  up: T,
  n: number,
  r: number,
  dOut: number,
  s: number,
) => T;

/**
 * LoRA forward into out: out = x·w + s·t·up for x [n, dIn], w [dIn, dOut] (or stored [dOut, dIn] with transW),
 * t = x·down [n, r], up [r, dOut]. A low-rank term that is exactly zero (s = 0, t = 0 or up = 0) leaves out
 * bit-for-bit equal to the GEMM x·w of the same kernel family; with s = 0 or up all zero the term is skipped, so
 * this holds even where t is ±Infinity. Returns out.
 */
export type LoraGemmKernel = <T extends KernelArray>(
  out: T,
  x: T,
  w: T,
  t: T,
  up: T,
  n: number,
  dIn: number,
  dOut: number,
  r: number,
  s: number,
  threads?: number,
  transW?: boolean,
) => T;

/**
 * LoRA forward over a quantized weight: out = x·op(wq) + s·t·up (the low-rank term skipped when t or up is null,
 * s = 0 or r = 0). x [n, dIn] float32; wq holds ggml blocks (type 1 = Q8_0, 2 = Q4_0) of W stored [dIn, dOut]
 * with blocks along dOut, or with transW [dOut, dIn] with blocks along dIn (the block axis a multiple of 32);
 * t = x·down [n, r], up [r, dOut]. Returns out [n, dOut].
 */
export type QuantLoraGemmKernel = (
  out: Float32Array,
  x: Float32Array,
  wq: Uint8Array,
  type: 1 | 2,
  t: Float32Array | null,
  up: Float32Array | null,
  n: number,
  dIn: number,
  dOut: number,
  r: number,
  s: number,
  transW: boolean,
  threads?: number,
) => Float32Array;
