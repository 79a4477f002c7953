// Plain TypeScript kernels for Float32Array and Float64Array (see contract.ts for layout and aliasing rules).
// Float32 results are rounded to float32 at every accumulation step (each out[...] += a·b stores into the
// Float32Array), so the error stays within the float32 bound; float64 is exact IEEE double arithmetic.
// Blocking: 4 output rows share each loaded row of b; k is cut into KC-deep panels and n into NC-wide strips
// so the slice of b being reused (KC × NC) stays in L2.

import type { KernelArray } from "./contract.js";

const KC = 128;
const NC = 2048;

/** out = beta·out + alpha·op(a)·op(b). See contract.ts. */
export function gemmScalar<T extends KernelArray>(
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
): T {
  if (beta === 0) out.fill(0, 0, m * n);
  if (m === 0 || n === 0 || k === 0 || alpha === 0) return out;
  // element (i, p) of op(a) is a[i·sI + p·sP]
  const sI = transA ? 1 : k;
  const sP = transA ? m : 1;
  if (transB) gemmDot(out, a, b, m, k, n, sI, sP, alpha);
  else gemmRows(out, a, b, m, k, n, sI, sP, alpha);
  return out;
}

// op(b) = b [k, n]: i-p-j order, rows of b streamed, 4 rows of out updated per loaded b element.
function gemmRows(
  out: KernelArray,
  a: KernelArray,
  b: KernelArray,
  m: number,
  k: number,
  n: number,
  sI: number,
  sP: number,
  alpha: number,
): void {
  for (let jc = 0; jc < n; jc += NC) {
    const jEnd = Math.min(n, jc + NC);
    for (let pc = 0; pc < k; pc += KC) {
      const pEnd = Math.min(k, pc + KC);
      let i = 0;
      for (; i + 4 <= m; i += 4) {
        const o0 = i * n;
        const o1 = o0 + n;
        const o2 = o1 + n;
        const o3 = o2 + n;
        for (let p = pc; p < pEnd; p++) {
          const ai = i * sI + p * sP;
          const a0 = alpha * a[ai]!;
          const a1 = alpha * a[ai + sI]!;
          const a2 = alpha * a[ai + 2 * sI]!;
          const a3 = alpha * a[ai + 3 * sI]!;
          const bo = p * n;
          for (let j = jc; j < jEnd; j++) {
            const bv = b[bo + j]!;
            out[o0 + j] = out[o0 + j]! + a0 * bv;
            out[o1 + j] = out[o1 + j]! + a1 * bv;
            out[o2 + j] = out[o2 + j]! + a2 * bv;
            out[o3 + j] = out[o3 + j]! + a3 * bv;
          }
        }
      }
      for (; i < m; i++) {
        const o0 = i * n;
        for (let p = pc; p < pEnd; p++) {
          const a0 = alpha * a[i * sI + p * sP]!;
          const bo = p * n;
          for (let j = jc; j < jEnd; j++) out[o0 + j] = out[o0 + j]! + a0 * b[bo + j]!;
        }
      }
    }
  }
}

// op(b) = bᵀ with b stored [n, k]: each out element is a dot product of a row of op(a) and a row of b.
function gemmDot(
  out: KernelArray,
  a: KernelArray,
  b: KernelArray,
  m: number,
  k: number,
  n: number,
  sI: number,
  sP: number,
  alpha: number,
): void {
  for (let i = 0; i < m; i++) {
    const ai = i * sI;
    for (let j = 0; j < n; j++) {
      const bo = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ai + p * sP]! * b[bo + p]!;
      out[i * n + j] = out[i * n + j]! + alpha * s;
    }
  }
}

/** Whether the first `length` elements of a are all ±0: an up that makes the low-rank term exactly zero. */
export function isZeroArray(a: KernelArray, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * out[i, j] += s · Σ_q t[i, q]·up[q, j], skipping exact-zero addends; nothing at all when s = 0 or up is all zero,
 * even where t is not finite. See contract.ts.
 */
export function addLowRankScalar<T extends KernelArray>(
  out: T,
  t: T,
  up: T,
  n: number,
  r: number,
  dOut: number,
  s: number,
): T {
  if (s === 0 || r === 0 || isZeroArray(up, r * dOut)) return out;
  for (let i = 0; i < n; i++) {
    const ti = i * r;
    const oi = i * dOut;
    for (let j = 0; j < dOut; j++) {
      let acc = 0;
      for (let q = 0; q < r; q++) acc += t[ti + q]! * up[q * dOut + j]!;
      const d = s * acc;
      if (d !== 0) out[oi + j] = out[oi + j]! + d;
    }
  }
  return out;
}

/** out = x·w + s·t·up: the GEMM, then the low-rank epilogue as a second pass. See contract.ts (LoraGemmKernel). */
export function loraGemmScalar<T extends KernelArray>(
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
  transW = false,
): T {
  gemmScalar(out, x, w, n, dIn, dOut, false, transW, 1, 0); // x: [n, dIn] · w: [dIn, dOut] → [n, dOut]
  return addLowRankScalar(out, t, up, n, r, dOut, s); // out += s · t: [n, r] · up: [r, dOut]
}
