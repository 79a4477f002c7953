// AssemblyScript source of the float32 WebAssembly GEMM (compiled by scripts/build-wasm.mjs, not by tsc).
// All pointers are byte offsets into the imported memory; matrices are row-major float32.
//   out [m, n] (row stride n) = beta·out + alpha·A'·B' over the columns [j0, j1)
//   A' = [op(a) | a2]: op(a) [m, k] (a, or a stored [k, m] with transA), a2 [m, k2] row-major
//   B' = [op(b) ; b2]: op(b) [k, n] (b, or b stored [n, k] with transB), b2 [k2, n] row-major
// The k2 columns are the fused LoRA term: a2 = s·(x·down), b2 = up.
// Summation order, identical for every element whatever the column range and code path: k is cut into KC-deep
// blocks from 0 (the last block also takes the k2 extension); each block is summed from +0 in increasing p with
// one multiply and one add per product (relaxed build: relaxed_madd), then combined as out = alpha·acc (first
// block with beta = 0) or out = out + alpha·acc. Splitting columns across threads therefore never changes a bit.
// work: scratch for one caller (packed A block, packed B panel, one edge tile, GEMV strip); see workBytes().

import { fma, KC } from "./common";
import { GEMV_COLS, GEMV_SLACK, gemvRow, gemvRowT } from "./gemv";

const MR = 4; // rows of the register tile
const NR = 8; // columns of the register tile (two f32x4)
const MC = 128; // rows of a packed A block (MC·KC·4 = 128 KiB, in L2)
const NC = 2048; // columns of a packed B panel
const GEMV_ROWS = 4; // m below this streams b without packing (gemv.ts)

/** Scratch bytes needed by one gemm caller for k2 extension columns. */
export function workBytes(k2: i32): i32 {
  const kcMax = KC + k2;
  return (MC * kcMax + NC * kcMax + MR * NR + GEMV_COLS + 64) * 4 + GEMV_SLACK;
}

export function gemm(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, transB: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize,
): void {
  if (m <= 0 || j1 <= j0) return;
  const kt = k + k2;
  if (kt == 0) {
    if (beta == 0) for (let i = 0; i < m; i++) memory.fill(out + ((<usize>i * n + j0) << 2), 0, <usize>(j1 - j0) << 2);
    return;
  }
  if (m < GEMV_ROWS) {
    if (transB) for (let i = 0; i < m; i++) gemvRowT(out, a, b, m, k, n, transA, alpha, beta, a2, b2, k2, j0, j1, i);
    else for (let i = 0; i < m; i++) gemvRow(out, a, b, m, k, n, transA, alpha, beta, a2, b2, k2, j0, j1, work, i);
    return;
  }
  const bufA = (work + 63) & ~(<usize>63);
  const bufB = bufA + ((<usize>MC * (KC + k2)) << 2);
  const tile = bufB + ((<usize>NC * (KC + k2)) << 2);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    let pc = 0;
    let first = true;
    while (true) {
      // block [pc, pe) of op(a)/op(b), plus the k2 extension when it is the last block
      let pe = min(k, pc + KC);
      const last = pe >= k;
      const ext = last ? k2 : 0;
      const kc = pe - pc + ext;
      packB(bufB, b, b2, k, n, transB, pc, pe, ext, jc, nc);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        packA(bufA, a, a2, m, k, k2, transA, pc, pe, ext, ic, mc);
        const overwrite = first && beta == 0;
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const pb = bufB + ((<usize>jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const pa = bufA + ((<usize>ir * kc) << 2);
            const c = out + ((<usize>(ic + ir) * n + jc + jr) << 2);
            if (mr == MR && nr == NR) micro(pa, pb, kc, c, <usize>n << 2, alpha, overwrite);
            else edge(pa, pb, kc, c, n, mr, nr, alpha, overwrite, tile);
          }
        }
      }
      first = false;
      if (last) break;
      pc = pe;
    }
  }
}

// 4×8 register tile: 8 accumulators + 2 b vectors + 1 a splat = 11 of V8's 16 SIMD registers.
@inline function micro(pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, alpha: f32, overwrite: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let av = v128.load32_splat(pa);
    c00 = fma(av, b0, c00);
    c01 = fma(av, b1, c01);
    av = v128.load32_splat(pa, 4);
    c10 = fma(av, b0, c10);
    c11 = fma(av, b1, c11);
    av = v128.load32_splat(pa, 8);
    c20 = fma(av, b0, c20);
    c21 = fma(av, b1, c21);
    av = v128.load32_splat(pa, 12);
    c30 = fma(av, b0, c30);
    c31 = fma(av, b1, c31);
    pa += 16;
    pb += 32;
  }
  const va = f32x4.splat(alpha);
  storeRow(c, c00, c01, va, overwrite);
  storeRow(c + ldc, c10, c11, va, overwrite);
  storeRow(c + 2 * ldc, c20, c21, va, overwrite);
  storeRow(c + 3 * ldc, c30, c31, va, overwrite);
}

@inline function storeRow(c: usize, x0: v128, x1: v128, va: v128, overwrite: bool): void {
  if (overwrite) {
    v128.store(c, f32x4.mul(va, x0));
    v128.store(c, f32x4.mul(va, x1), 16);
  } else {
    v128.store(c, f32x4.add(v128.load(c), f32x4.mul(va, x0)));
    v128.store(c, f32x4.add(v128.load(c, 16), f32x4.mul(va, x1)), 16);
  }
}

// A partial tile (mr < 4 or nr < 8): the same register tile run on a 4×8 scratch copy, valid part copied back.
function edge(pa: usize, pb: usize, kc: i32, c: usize, n: i32, mr: i32, nr: i32, alpha: f32, overwrite: bool, tile: usize): void {
  if (!overwrite) {
    for (let i = 0; i < mr; i++) memory.copy(tile + ((<usize>i * NR) << 2), c + ((<usize>i * n) << 2), <usize>nr << 2);
  }
  micro(pa, pb, kc, tile, NR << 2, alpha, overwrite);
  for (let i = 0; i < mr; i++) memory.copy(c + ((<usize>i * n) << 2), tile + ((<usize>i * NR) << 2), <usize>nr << 2);
}

// Packs op(a)[ic .. ic+mc, pc .. pe) followed by a2[ic .. ic+mc, 0 .. ext) as strips of MR rows:
// strip s holds, for each p of the kc-deep block, the MR values of rows ic + s·MR .. (zero past m).
function packA(dst: usize, a: usize, a2: usize, m: i32, k: i32, k2: i32, transA: i32, pc: i32, pe: i32, ext: i32, ic: i32, mc: i32): void {
  const kc = pe - pc + ext;
  for (let ir = 0; ir < mc; ir += MR) {
    const strip = dst + ((<usize>ir * kc) << 2);
    for (let i = 0; i < MR; i++) {
      const row = ic + ir + i;
      let d = strip + (<usize>i << 2);
      if (row >= m || ir + i >= mc) {
        for (let p = 0; p < kc; p++) { store<f32>(d, 0); d += MR << 2; }
        continue;
      }
      if (transA) {
        let s = a + ((<usize>pc * m + row) << 2);
        for (let p = pc; p < pe; p++) { store<f32>(d, load<f32>(s)); d += MR << 2; s += <usize>m << 2; }
      } else {
        let s = a + ((<usize>row * k + pc) << 2);
        for (let p = pc; p < pe; p++) { store<f32>(d, load<f32>(s)); d += MR << 2; s += 4; }
      }
      let s2 = a2 + ((<usize>row * k2) << 2);
      for (let q = 0; q < ext; q++) { store<f32>(d, load<f32>(s2)); d += MR << 2; s2 += 4; }
    }
  }
}

// Packs op(b)[pc .. pe, jc .. jc+nc) followed by b2[0 .. ext, jc .. jc+nc) as strips of NR columns:
// strip s holds, for each p of the block, the NR values of columns jc + s·NR .. (zero past nc).
function packB(dst: usize, b: usize, b2: usize, k: i32, n: i32, transB: i32, pc: i32, pe: i32, ext: i32, jc: i32, nc: i32): void {
  const kc = pe - pc + ext;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    let d = dst + ((<usize>jr * kc) << 2);
    const col = jc + jr;
    if (nr == NR && !transB) {
      let s = b + ((<usize>pc * n + col) << 2);
      for (let p = pc; p < pe; p++) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        d += NR << 2;
        s += <usize>n << 2;
      }
    } else {
      for (let p = pc; p < pe; p++) {
        for (let j = 0; j < NR; j++) {
          let v: f32 = 0;
          if (j < nr) v = transB ? load<f32>(b + ((<usize>(col + j) * k + p) << 2)) : load<f32>(b + ((<usize>p * n + col + j) << 2));
          store<f32>(d + (<usize>j << 2), v);
        }
        d += NR << 2;
      }
    }
    for (let q = 0; q < ext; q++) {
      const s = b2 + ((<usize>q * n + col) << 2);
      for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), j < nr ? load<f32>(s + (<usize>j << 2)) : 0);
      d += NR << 2;
    }
  }
}
