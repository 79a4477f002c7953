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
// Bits 1–2 of transB name a quantized b (1 = Q8_0, 2 = Q4_0, see quant.ts); bit 0 is the transpose flag; bit 4
// (16) asks for llama.cpp's arithmetic in the quantized decode GEMV (quant-dot.ts, opt-in). Bit 3 says
// b is pre-packed in panels (panel.ts): op(b) [k, n] as ⌈n/16⌉ panels of NR = 16 columns, panel s = k rows of the
// 16 floats op(b)[p, 16s .. 16s + 15] (zero past n), back to back — the layout the register tiles read, so products
// stream b once, in order, and never pack it. The pool passes the same arguments to every thread, so no other entry
// point is needed.

import { fma, KC, MR, NR, transpose4 } from "./common";
import { GEMV_COLS, GEMV_SLACK, gemvRow, gemvRowT } from "./gemv";
import { gemvPanelRow, packBPanel, panelRows } from "./panel";
import { PACKQ_BYTES, packBQ } from "./quant";
import { qdotRowT } from "./quant-dot";
import { qgemvRow, qgemvRowT } from "./quant-gemv";

const MC = 128; // rows of a packed A block (MC·KC·4 = 128 KiB, in L2)
const NC = 2048; // columns of a packed B panel
const GEMV_ROWS = 4; // m below this streams b without packing (gemv.ts)
// m up to this (and at least GEMV_ROWS) packs b one NR-column strip at a time (gemmSmall): see there.
const SMALL_ROWS = 16;
const SMALL_NC = 16; // columns of b packed at a time by gemmSmall (a multiple of NR, at most NC)

/** Scratch bytes needed by one gemm caller for k2 extension columns. */
export function workBytes(k2: i32): i32 {
  const kcMax = KC + k2;
  return (MC * kcMax + NC * kcMax + MR * NR + GEMV_COLS + 64) * 4 + GEMV_SLACK + PACKQ_BYTES;
}

export function gemm(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, transBits: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize,
): void {
  if (m <= 0 || j1 <= j0) return;
  const transB = transBits & 1;
  const bType = (transBits >> 1) & 3; // 0: float32 b; 1, 2: quantized (transA is 0 then)
  const panel = transBits & 8; // b pre-packed in NR-column panels (transB and bType are 0 then)
  const kt = k + k2;
  if (kt == 0) {
    if (beta == 0) for (let i = 0; i < m; i++) memory.fill(out + ((<usize>i * n + j0) << 2), 0, <usize>(j1 - j0) << 2);
    return;
  }
  if (m == 1 && panel) {
    // one row streams the panels; 2 and 3 rows take gemmSmall's tiles below, which read each panel once for all rows
    gemvPanelRow(out, a, b, m, k, n, transA, alpha, beta, a2, b2, k2, j0, j1, work, 0);
    return;
  }
  if (panel && m <= SMALL_ROWS) {
    gemmSmall(out, a, b, m, k, n, transA, transB, bType, panel, alpha, beta, a2, b2, k2, j0, j1, work);
    return;
  }
  if (m < GEMV_ROWS && bType) {
    if (transB && transBits & 16) {
      for (let i = 0; i < m; i++) qdotRowT(out, a, b, k, n, bType, alpha, beta, a2, b2, k2, j0, j1, work, i);
    } else if (transB) {
      for (let i = 0; i < m; i++) qgemvRowT(out, a, b, k, n, bType, alpha, beta, a2, b2, k2, j0, j1, work, i);
    } else for (let i = 0; i < m; i++) qgemvRow(out, a, b, k, n, bType, alpha, beta, a2, b2, k2, j0, j1, work, i);
    return;
  }
  if (m < GEMV_ROWS) {
    if (transB) for (let i = 0; i < m; i++) gemvRowT(out, a, b, m, k, n, transA, alpha, beta, a2, b2, k2, j0, j1, i);
    else for (let i = 0; i < m; i++) gemvRow(out, a, b, m, k, n, transA, alpha, beta, a2, b2, k2, j0, j1, work, i);
    return;
  }
  if (m <= SMALL_ROWS) {
    gemmSmall(out, a, b, m, k, n, transA, transB, bType, panel, alpha, beta, a2, b2, k2, j0, j1, work);
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
      // pre-packed panels without the k2 extension are already the strips the tiles read: read in place, not copied
      const direct = panel && ext == 0;
      if (!direct) {
        if (panel) packBPanel(bufB, b, b2, k, n, pc, pe, ext, jc, nc);
        else if (bType) packBQ(bufB, b, b2, k, n, transB, pc, pe, ext, jc, nc, bType, tile + ((<usize>MR * NR) << 2));
        else packB(bufB, b, b2, k, n, transB, pc, pe, ext, jc, nc);
      }
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        packA(bufA, a, a2, m, k, k2, transA, pc, pe, ext, ic, mc);
        const c = out + ((<usize>ic * n + jc) << 2);
        if (!direct) tiles(bufA, bufB, kc, mc, nc, c, n, alpha, first && beta == 0, tile);
        else
          for (let jr = 0; jr < nc; jr += NR) {
            const strip = b + ((<usize>((jc + jr) >> 4) * k + pc) << 6);
            tiles(bufA, strip, kc, mc, min(NR, nc - jr), c + (<usize>jr << 2), n, alpha, first && beta == 0, tile);
          }
      }
      first = false;
      if (last) break;
      pc = pe;
    }
  }
}

// Few rows (batched decode, GEMV_ROWS <= m <= SMALL_ROWS; 2 <= m with a packed b): the same packing, register tiles and summation order as
// gemm() above, in another loop order. gemm() packs a 2048-column panel of b (up to 2 MiB at KC = 256, out of L1 and
// often of L2), then reads it back once per MC row block; with few rows that write and re-read costs about as much
// as the arithmetic. Here, per KC block, all m rows of a are packed once (m·kc floats), and b is packed one NR-column
// strip at a time (NR·kc floats, 16 KiB at kc = 256: in L1) right before the m/MR register tiles that use it, so b is
// read from memory once per call and its packed copy never leaves L1. Every element gets the same per-block sums
// and combines as in gemm(), so its bits equal the packed path's (and gemvRow's) for the same element. Quantized b
// (bType 1, 2) is dequantized strip by strip with packBQ, as gemm() does panel by panel.
function gemmSmall(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, transB: i32, bType: i32, panel: i32, alpha: f32,
  beta: i32, a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize,
): void {
  const bufA = (work + 63) & ~(<usize>63); // MC·(KC + k2) floats, m <= SMALL_ROWS <= MC
  const bufB = bufA + ((<usize>MC * (KC + k2)) << 2); // one NR-column strip: NR·(KC + k2) floats
  const tile = bufB + ((<usize>NC * (KC + k2)) << 2);
  const mp = (m + MR - 1) & ~(MR - 1); // rows of a packed A block, padded to the tile
  if (panel && k2 == 0 && <usize>mp * k <= <usize>MC * KC) {
    // Pre-packed b: every KC block of a is packed first (all of a fits in bufA), then one panel at a time runs all
    // its blocks, so b streams from memory in order, panel after panel (block by block over all panels jumped
    // k·64 bytes after each 16 KiB and streamed 1.3–1.9× slower). Same per-element sums and combines as below.
    for (let pc = 0; pc < k; pc += KC) packA(bufA + ((<usize>mp * pc) << 2), a, a2, m, k, 0, transA, pc, min(k, pc + KC), 0, 0, m);
    panelRows(bufA, b, k, m, mp, n, j0, j1, out, alpha, beta, bufB);
    return;
  }
  let pc = 0;
  let first = true;
  while (true) {
    const pe = min(k, pc + KC);
    const last = pe >= k;
    const ext = last ? k2 : 0;
    const kc = pe - pc + ext;
    packA(bufA, a, a2, m, k, k2, transA, pc, pe, ext, 0, m);
    const overwrite = first && beta == 0;
    for (let jc = j0; jc < j1; jc += SMALL_NC) {
      const nc = min(SMALL_NC, j1 - jc);
      if (panel && ext == 0) {
        // each pre-packed panel's block is already the strip the register tiles read (jc is a multiple of NR); a
        // software prefetch of the next panel (one load per line) measured 10–15% slower than none
        for (let jr = 0; jr < nc; jr += NR) {
          const strip = b + ((<usize>((jc + jr) >> 4) * k + pc) << 6);
          tiles(bufA, strip, kc, m, min(NR, nc - jr), out + (<usize>(jc + jr) << 2), n, alpha, overwrite, tile);
        }
        continue;
      }
      if (panel) packBPanel(bufB, b, b2, k, n, pc, pe, ext, jc, nc);
      else if (bType) packBQ(bufB, b, b2, k, n, transB, pc, pe, ext, jc, nc, bType, tile + ((<usize>MR * NR) << 2));
      else packB(bufB, b, b2, k, n, transB, pc, pe, ext, jc, nc);
      tiles(bufA, bufB, kc, m, nc, out + (<usize>jc << 2), n, alpha, overwrite, tile);
    }
    first = false;
    if (last) break;
    pc = pe;
  }
}

// The register tiles over a packed A block (mc rows) and a packed B panel (nc columns), kc deep: c is out at the
// block's first row and the panel's first column. Shared by gemm() and gemmSmall() (one copy of the inlined tiles).
function tiles(bufA: usize, bufB: usize, kc: i32, mc: i32, nc: i32, c0: usize, n: i32, alpha: f32, overwrite: bool, tile: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const pb = bufB + ((<usize>jr * kc) << 2);
    for (let ir = 0; ir < mc; ir += MR) {
      const mr = min(MR, mc - ir);
      const pa = bufA + ((<usize>ir * kc) << 2);
      const c = c0 + ((<usize>ir * n + jr) << 2);
      if (mr == MR && nr == NR) micro(pa, pb, kc, c, <usize>n << 2, alpha, overwrite);
      else if (mr == MR && nr == 8) micro8(pa, pb, kc, c, <usize>n << 2, alpha, overwrite);
      else edge(pa, pb, kc, c, n, mr, nr, alpha, overwrite, tile);
    }
  }
}

// 2×16 register tile: 8 f32x4 accumulators + 4 b vectors + 1 a splat (+1 product temporary in the plain build) of
// the 15 SIMD registers V8 allocates on x64. Per k step: 4 loads and 2 splat loads for 16 multiply-adds; the 4×8
// tile it replaced needed 4 splats for the same work and measured ~5% slower
// (47.5 vs 50 GFLOP/s at 512×2048×2048 and 2048×4096×4096 on one thread). Bigger tiles spill: TurboFan schedules
// every load of an iteration before its arithmetic, so all loaded vectors are live at once.
@inline function micro(pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, alpha: f32, overwrite: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    const b2 = v128.load(pb, 32);
    const b3 = v128.load(pb, 48);
    let av = v128.load32_splat(pa);
    c00 = fma(av, b0, c00);
    c01 = fma(av, b1, c01);
    c02 = fma(av, b2, c02);
    c03 = fma(av, b3, c03);
    av = v128.load32_splat(pa, 4);
    c10 = fma(av, b0, c10);
    c11 = fma(av, b1, c11);
    c12 = fma(av, b2, c12);
    c13 = fma(av, b3, c13);
    pa += 8;
    pb += 64;
  }
  const va = f32x4.splat(alpha);
  storeRow(c, c00, c01, va, overwrite);
  storeRow(c + 32, c02, c03, va, overwrite);
  storeRow(c + ldc, c10, c11, va, overwrite);
  storeRow(c + ldc + 32, c12, c13, va, overwrite);
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

// The left half of the register tile, for a strip of exactly 8 columns (x·down with LoRA's common r = 8, and
// n ≡ 8 mod 16): half the multiply-adds of running the full tile on a scratch copy, and no copies.
@inline function micro8(pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, alpha: f32, overwrite: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let av = v128.load32_splat(pa);
    c00 = fma(av, b0, c00);
    c01 = fma(av, b1, c01);
    av = v128.load32_splat(pa, 4);
    c10 = fma(av, b0, c10);
    c11 = fma(av, b1, c11);
    pa += 8;
    pb += NR << 2;
  }
  const va = f32x4.splat(alpha);
  storeRow(c, c00, c01, va, overwrite);
  storeRow(c + ldc, c10, c11, va, overwrite);
}

// A partial tile (mr < 2 or nr < 16): the same register tile run on a 2×16 scratch copy, valid part copied back.
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
    if (!transA && ir + MR <= mc && ic + ir + MR <= m) {
      // both rows present: four p-values of each row per load, interleaved in registers (r0 p, r1 p, r0 p+1, ...)
      const s0 = a + ((<usize>(ic + ir) * k + pc) << 2);
      const s1 = s0 + (<usize>k << 2);
      let d = strip;
      let p = pc;
      for (; p + 4 <= pe; p += 4) {
        const o: usize = <usize>(p - pc) << 2;
        const v0 = v128.load(s0 + o);
        const v1 = v128.load(s1 + o);
        v128.store(d, v128.shuffle<f32>(v0, v1, 0, 4, 1, 5));
        v128.store(d, v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), 16);
        d += 32;
      }
      for (; p < pe; p++) {
        const o: usize = <usize>(p - pc) << 2;
        store<f32>(d, load<f32>(s0 + o));
        store<f32>(d, load<f32>(s1 + o), 4);
        d += 8;
      }
      const t0 = a2 + ((<usize>(ic + ir) * k2) << 2);
      const t1 = t0 + (<usize>k2 << 2);
      for (let q = 0; q < ext; q++) {
        store<f32>(d, load<f32>(t0 + (<usize>q << 2)));
        store<f32>(d, load<f32>(t1 + (<usize>q << 2)), 4);
        d += 8;
      }
      continue;
    }
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
        v128.store(d, v128.load(s, 32), 32);
        v128.store(d, v128.load(s, 48), 48);
        d += NR << 2;
        s += <usize>n << 2;
      }
    } else if (nr == NR) {
      // transB: column col + j of op(b) is row col + j of b, contiguous in p. Four p-values from each of four rows
      // per load, transposed in registers (4×4), four rows at a time across the 16 columns.
      const ld: usize = <usize>k << 2;
      const r0 = b + <usize>col * ld;
      let p = pc;
      for (; p + 4 <= pe; p += 4) {
        for (let g = 0; g < NR; g += 4) transpose4(d + (<usize>g << 2), r0 + <usize>g * ld + (<usize>p << 2), ld);
        d += (NR << 2) * 4;
      }
      for (; p < pe; p++) {
        for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), load<f32>(r0 + <usize>j * ld + (<usize>p << 2)));
        d += NR << 2;
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

export { geluNew } from "./gelu";
export { attend } from "./attention";
export { addRowVector, addScaled } from "./rows";
export { quantDot8 } from "./quant-dot";
