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
// work: scratch for one caller (packed A block, packed B panel, one edge tile); see workBytes().

const MR = 4; // rows of the register tile
const NR = 8; // columns of the register tile (two f32x4)
const KC = 256; // depth of a packed block: the B micro-panel (KC·NR·4 = 8 KiB) stays in L1
const MC = 128; // rows of a packed A block (MC·KC·4 = 128 KiB, in L2)
const NC = 2048; // columns of a packed B panel
const GEMV_ROWS = 4; // m below this (and op(b) not transposed) streams b without packing
const GEMV_COLS = 4096; // columns per GEMV accumulator strip (16 KiB of scratch, in L1): W is read in long contiguous runs

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Scratch bytes needed by one gemm caller for k2 extension columns. */
export function workBytes(k2: i32): i32 {
  const kcMax = KC + k2;
  return (MC * kcMax + NC * kcMax + MR * NR + GEMV_COLS + 64) * 4;
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
  if (m < GEMV_ROWS && transB == 0) {
    for (let i = 0; i < m; i++) gemvRow(out, a, b, m, k, n, transA, alpha, beta, a2, b2, k2, j0, j1, work, i);
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

// One row i of out over [j0, j1) without packing (op(b) = b [k, n]): per KC block, an accumulator strip
// acc[j] = +0, then acc[j] = acc[j] + a[i, p]·b[p, j] for increasing p, then combined into out.
function gemvRow(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const acc = (work + 63) & ~(<usize>63);
  const sp: usize = transA ? <usize>m << 2 : 4; // stride of op(a)[i, p] in p
  const ai = a + (transA ? <usize>i << 2 : (<usize>i * k) << 2);
  const ci = out + ((<usize>i * n) << 2);
  for (let jc = j0; jc < j1; jc += GEMV_COLS) {
    const nc = min(GEMV_COLS, j1 - jc);
    let pc = 0;
    let first = true;
    while (true) {
      const pe = min(k, pc + KC);
      const last = pe >= k;
      memory.fill(acc, 0, <usize>nc << 2);
      let p = pc;
      // four rows of b per pass over acc: the same per-column order as one row at a time, a quarter of the acc traffic
      for (; p + 4 <= pe; p += 4) {
        const row = b + ((<usize>p * n + jc) << 2);
        const pa = ai + <usize>p * sp;
        axpy4(acc, load<f32>(pa), load<f32>(pa + sp), load<f32>(pa + 2 * sp), load<f32>(pa + 3 * sp), row, <usize>n << 2, nc);
      }
      for (; p < pe; p++) axpy(acc, load<f32>(ai + <usize>p * sp), b + ((<usize>p * n + jc) << 2), nc);
      if (last) for (let q = 0; q < k2; q++) axpy(acc, load<f32>(a2 + ((<usize>i * k2 + q) << 2)), b2 + ((<usize>q * n + jc) << 2), nc);
      const overwrite = first && beta == 0;
      const c = ci + (<usize>jc << 2);
      const va = f32x4.splat(alpha);
      let j = 0;
      for (; j + 4 <= nc; j += 4) {
        const x = f32x4.mul(va, v128.load(acc + (<usize>j << 2)));
        const cj = c + (<usize>j << 2);
        v128.store(cj, overwrite ? x : f32x4.add(v128.load(cj), x));
      }
      for (; j < nc; j++) {
        const x = alpha * load<f32>(acc + (<usize>j << 2));
        const cj = c + (<usize>j << 2);
        store<f32>(cj, overwrite ? x : load<f32>(cj) + x);
      }
      first = false;
      if (last) break;
      pc = pe;
    }
  }
}

// acc[0 .. nc) = acc + s·row[0 .. nc), four columns per f32x4, with the scalar tail rounded the same way.
@inline function axpy(acc: usize, s: f32, row: usize, nc: i32): void {
  const vs = f32x4.splat(s);
  let j = 0;
  for (; j + 16 <= nc; j += 16) {
    const d = acc + (<usize>j << 2);
    const r = row + (<usize>j << 2);
    v128.store(d, fma(vs, v128.load(r), v128.load(d)));
    v128.store(d, fma(vs, v128.load(r, 16), v128.load(d, 16)), 16);
    v128.store(d, fma(vs, v128.load(r, 32), v128.load(d, 32)), 32);
    v128.store(d, fma(vs, v128.load(r, 48), v128.load(d, 48)), 48);
  }
  for (; j + 4 <= nc; j += 4) {
    const d = acc + (<usize>j << 2);
    v128.store(d, fma(vs, v128.load(row + (<usize>j << 2)), v128.load(d)));
  }
  for (; j < nc; j++) {
    const d = acc + (<usize>j << 2);
    store<f32>(d, load<f32>(d) + s * load<f32>(row + (<usize>j << 2)));
  }
}

// acc = (((acc + s0·r0) + s1·r1) + s2·r2) + s3·r3 per column, rows r0 = row, r1 = row + ld, ...; scalar tail alike.
@inline function axpy4(acc: usize, s0: f32, s1: f32, s2: f32, s3: f32, row: usize, ld: usize, nc: i32): void {
  const v0 = f32x4.splat(s0), v1 = f32x4.splat(s1), v2 = f32x4.splat(s2), v3 = f32x4.splat(s3);
  const r1 = row + ld, r2 = row + 2 * ld, r3 = row + 3 * ld;
  let j = 0;
  for (; j + 8 <= nc; j += 8) {
    const o: usize = <usize>j << 2;
    let d0 = v128.load(acc + o);
    let d1 = v128.load(acc + o, 16);
    d0 = fma(v0, v128.load(row + o), d0);
    d1 = fma(v0, v128.load(row + o, 16), d1);
    d0 = fma(v1, v128.load(r1 + o), d0);
    d1 = fma(v1, v128.load(r1 + o, 16), d1);
    d0 = fma(v2, v128.load(r2 + o), d0);
    d1 = fma(v2, v128.load(r2 + o, 16), d1);
    d0 = fma(v3, v128.load(r3 + o), d0);
    d1 = fma(v3, v128.load(r3 + o, 16), d1);
    v128.store(acc + o, d0);
    v128.store(acc + o, d1, 16);
  }
  for (; j + 4 <= nc; j += 4) {
    const o: usize = <usize>j << 2;
    let d = v128.load(acc + o);
    d = fma(v0, v128.load(row + o), d);
    d = fma(v1, v128.load(r1 + o), d);
    d = fma(v2, v128.load(r2 + o), d);
    d = fma(v3, v128.load(r3 + o), d);
    v128.store(acc + o, d);
  }
  for (; j < nc; j++) {
    const o: usize = <usize>j << 2;
    let d = load<f32>(acc + o);
    d = d + s0 * load<f32>(row + o);
    d = d + s1 * load<f32>(r1 + o);
    d = d + s2 * load<f32>(r2 + o);
    d = d + s3 * load<f32>(r3 + o);
    store<f32>(acc + o, d);
  }
}
