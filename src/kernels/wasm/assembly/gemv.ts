// Row-at-a-time products for m < 4 (single-token decode), without packing; called by gemm() in gemm.ts with the
// same arguments. Each output element is summed in exactly the packed path's order: per KC block from +0 in
// increasing p, the k2 extension after the last block's k values, then out = alpha·acc (first block, beta = 0) or
// out = out + alpha·acc. So a row comes out with the same bits whatever m is.

import { fma, KC } from "./common";

/** Columns per accumulator strip of gemvRow (up to 64 KiB of scratch; 16 KiB at dOut = 4096, in L1), so that one
 * thread's strip is whole rows of W up to dOut = 16384 (1×4096×11008: 10 GFLOP/s, 7–9 with 4096-column strips). */
export const GEMV_COLS = 16384;
/** Bytes past the strip that gemvRow may shift it by (see ACC_PHASE); counted in gemm.ts's workBytes. */
export const GEMV_SLACK = 4096;
// The strip starts 2 KiB (mod 4 KiB) away from the first row of b it is added to. When rows are a multiple of
// 4 KiB long (n a multiple of 1024) its stores and the loads of b then never share their low 12 address bits, which
// the CPU can mistake for a dependence ("4K aliasing"). Measured at 1×4096×4096: ~13 GFLOP/s at the same phase,
// ~14.5 at 0.5–3 KiB away.
const ACC_PHASE: usize = 2048;

// One row i of out over [j0, j1) without packing (op(b) = b [k, n]): per KC block, an accumulator strip
// acc[j] = +0, then acc[j] = acc[j] + a[i, p]·b[p, j] for increasing p, then combined into out. When the strip is
// whole rows of b (one thread, n <= GEMV_COLS), one row of b per pass reads b as a single sequential stream: measured
// 1.2x faster at 1×4096×4096 than four rows per pass, though that cuts the accumulator traffic by four. When it is
// part of each row (several threads split the columns, or n > GEMV_COLS), b is read in pieces anyway and four rows
// per pass measured 1.4–1.6x faster (1×4096×4096 on 2 threads, 1×4096×11008 with 4096-column strips).
export function gemvRow(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const base = (work + 63) & ~(<usize>63);
  const sp: usize = transA ? <usize>m << 2 : 4; // stride of op(a)[i, p] in p
  const ai = a + (transA ? <usize>i << 2 : (<usize>i * k) << 2);
  const ci = out + ((<usize>i * n) << 2);
  for (let jc = j0; jc < j1; jc += GEMV_COLS) {
    const nc = min(GEMV_COLS, j1 - jc);
    const acc = base + ((b + (<usize>jc << 2) + ACC_PHASE - base) & 4032);
    let pc = 0;
    let first = true;
    while (true) {
      const pe = min(k, pc + KC);
      const last = pe >= k;
      memory.fill(acc, 0, <usize>nc << 2);
      let p = pc;
      if (nc < n) {
        // the strip is part of each row of b: four rows per pass over acc (the same per-column order as one row
        // at a time, a quarter of the acc traffic)
        for (; p + 4 <= pe; p += 4) {
          const row = b + ((<usize>p * n + jc) << 2);
          const pa = ai + <usize>p * sp;
          axpy4(acc, load<f32>(pa), load<f32>(pa + sp), load<f32>(pa + 2 * sp), load<f32>(pa + 3 * sp), row, <usize>n << 2, nc);
        }
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
        // the same two roundings (multiply, then add) as the vector lanes above
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

// acc[0 .. nc) = acc + s·row[0 .. nc), four columns per f32x4 (the last 1–3 too, as a partial vector).
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
  if (j < nc) {
    // the last 1–3 columns as one vector (missing lanes of row read as 0; acc is scratch with room past nc), so
    // every column gets the same fma as in the vector loop — fused in the relaxed build, like the packed path
    const d = acc + (<usize>j << 2);
    v128.store(d, fma(vs, loadN(row + (<usize>j << 2), nc - j), v128.load(d)));
  }
}

// acc = (((acc + s0·r0) + s1·r1) + s2·r2) + s3·r3 per column, rows r0 = row, r1 = row + ld, ...; tail alike.
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
  if (j < nc) {
    const o: usize = <usize>j << 2;
    const t = nc - j; // 1–3 columns, as one vector (see axpy)
    let d = v128.load(acc + o);
    d = fma(v0, loadN(row + o, t), d);
    d = fma(v1, loadN(r1 + o, t), d);
    d = fma(v2, loadN(r2 + o, t), d);
    d = fma(v3, loadN(r3 + o, t), d);
    v128.store(acc + o, d);
  }
}

// One row i of out over [j0, j1) with op(b) = bᵀ (b stored [n, k], the PyTorch/PEFT [dOut, dIn] layout): column j
// of op(b) is row j of b, contiguous in p. Eight output columns at a time in two f32x4 accumulators (two independent
// chains); each step reads four p-values from each of those eight rows and transposes them in registers, so lane c
// of an accumulator still sums a[i, p]·b[j + c, p] one p at a time. Remaining columns (< 8) run the same sums in
// partial vectors. Every product goes through fma(), never scalar code: relaxed builds fuse it (one rounding), and
// the packed path fuses every product too. (The packed path would transpose all of b for one row: ~5x slower at 4096×4096.)
export function gemvRowT(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, i: i32,
): void {
  const sp: usize = transA ? <usize>m << 2 : 4; // stride of op(a)[i, p] in p
  const ai = a + (transA ? <usize>i << 2 : (<usize>i * k) << 2);
  const ci = out + ((<usize>i * n) << 2);
  const ld: usize = <usize>k << 2; // bytes per row of b
  const va = f32x4.splat(alpha);
  let j = j0;
  for (; j + 8 <= j1; j += 8) {
    const r0 = b + <usize>j * ld;
    const c = ci + (<usize>j << 2);
    let pc = 0;
    let first = true;
    while (true) {
      const pe = min(k, pc + KC);
      const last = pe >= k;
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let p = pc;
      for (; p + 4 <= pe; p += 4) {
        const pa = ai + <usize>p * sp;
        const s0 = v128.load32_splat(pa);
        const s1 = v128.load32_splat(pa + sp);
        const s2 = v128.load32_splat(pa + 2 * sp);
        const s3 = v128.load32_splat(pa + 3 * sp);
        const q = r0 + (<usize>p << 2);
        acc0 = step4(q, ld, s0, s1, s2, s3, acc0);
        acc1 = step4(q + 4 * ld, ld, s0, s1, s2, s3, acc1);
      }
      for (; p < pe; p++) {
        const q = r0 + (<usize>p << 2);
        const s = v128.load32_splat(ai + <usize>p * sp);
        acc0 = fma(s, gather4(q, ld), acc0);
        acc1 = fma(s, gather4(q + 4 * ld, ld), acc1);
      }
      if (last) {
        for (let q = 0; q < k2; q++) {
          const s = v128.load32_splat(a2 + ((<usize>i * k2 + q) << 2));
          const bq = b2 + ((<usize>q * n + j) << 2);
          acc0 = fma(s, v128.load(bq), acc0);
          acc1 = fma(s, v128.load(bq, 16), acc1);
        }
      }
      const x0 = f32x4.mul(va, acc0);
      const x1 = f32x4.mul(va, acc1);
      if (first && beta == 0) {
        v128.store(c, x0);
        v128.store(c, x1, 16);
      } else {
        v128.store(c, f32x4.add(v128.load(c), x0));
        v128.store(c, f32x4.add(v128.load(c, 16), x1), 16);
      }
      first = false;
      if (last) break;
      pc = pe;
    }
  }
  // the last 1–7 columns, up to four per accumulator (missing lanes read as 0), with the same fma per product
  for (; j < j1; j += 4) {
    const cnt = min(4, j1 - j);
    const r0 = b + <usize>j * ld;
    const c = ci + (<usize>j << 2);
    let pc = 0;
    let first = true;
    while (true) {
      const pe = min(k, pc + KC);
      const last = pe >= k;
      let acc = f32x4.splat(0);
      for (let p = pc; p < pe; p++) {
        acc = fma(v128.load32_splat(ai + <usize>p * sp), gatherN(r0 + (<usize>p << 2), ld, cnt), acc);
      }
      if (last) {
        for (let q = 0; q < k2; q++) {
          const s = v128.load32_splat(a2 + ((<usize>i * k2 + q) << 2));
          acc = fma(s, loadN(b2 + ((<usize>q * n + j) << 2), cnt), acc);
        }
      }
      const x = f32x4.mul(va, acc);
      const overwrite = first && beta == 0;
      for (let l = 0; l < cnt; l++) {
        const cl = c + (<usize>l << 2);
        const xl = lane(x, l);
        store<f32>(cl, overwrite ? xl : load<f32>(cl) + xl);
      }
      first = false;
      if (last) break;
      pc = pe;
    }
  }
}

// acc + s0·b[·, p] + s1·b[·, p+1] + s2·b[·, p+2] + s3·b[·, p+3] over the four rows q, q+ld, q+2·ld, q+3·ld of b
// (lane c = row c), in that order: four p-values loaded per row, then a 4×4 transpose in registers.
@inline function step4(q: usize, ld: usize, s0: v128, s1: v128, s2: v128, s3: v128, acc: v128): v128 {
  const v0 = v128.load(q);
  const v1 = v128.load(q + ld);
  const v2 = v128.load(q + 2 * ld);
  const v3 = v128.load(q + 3 * ld);
  const l01 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5); // v0[0] v1[0] v0[1] v1[1]
  const l23 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const h01 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7); // v0[2] v1[2] v0[3] v1[3]
  const h23 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  acc = fma(s0, v128.shuffle<f32>(l01, l23, 0, 1, 4, 5), acc);
  acc = fma(s1, v128.shuffle<f32>(l01, l23, 2, 3, 6, 7), acc);
  acc = fma(s2, v128.shuffle<f32>(h01, h23, 0, 1, 4, 5), acc);
  return fma(s3, v128.shuffle<f32>(h01, h23, 2, 3, 6, 7), acc);
}

// (b[q], b[q + ld], b[q + 2·ld], b[q + 3·ld]): one p-value from each of four rows.
@inline function gather4(q: usize, ld: usize): v128 {
  let t = f32x4.splat(load<f32>(q));
  t = f32x4.replace_lane(t, 1, load<f32>(q + ld));
  t = f32x4.replace_lane(t, 2, load<f32>(q + 2 * ld));
  return f32x4.replace_lane(t, 3, load<f32>(q + 3 * ld));
}

// cnt (1–4) consecutive floats from p, the other lanes 0; never reads past p + 4·cnt.
@inline function loadN(p: usize, cnt: i32): v128 {
  if (cnt >= 4) return v128.load(p);
  let t = f32x4.splat(0);
  t = f32x4.replace_lane(t, 0, load<f32>(p));
  if (cnt > 1) t = f32x4.replace_lane(t, 1, load<f32>(p, 4));
  if (cnt > 2) t = f32x4.replace_lane(t, 2, load<f32>(p, 8));
  return t;
}

// Like gather4 for the first cnt (1–4) rows, the other lanes 0.
@inline function gatherN(q: usize, ld: usize, cnt: i32): v128 {
  if (cnt >= 4) return gather4(q, ld);
  let t = f32x4.splat(0);
  t = f32x4.replace_lane(t, 0, load<f32>(q));
  if (cnt > 1) t = f32x4.replace_lane(t, 1, load<f32>(q + ld));
  if (cnt > 2) t = f32x4.replace_lane(t, 2, load<f32>(q + 2 * ld));
  return t;
}

// Lane l (0–3) of x.
@inline function lane(x: v128, l: i32): f32 {
  if (l == 0) return f32x4.extract_lane(x, 0);
  if (l == 1) return f32x4.extract_lane(x, 1);
  if (l == 2) return f32x4.extract_lane(x, 2);
  return f32x4.extract_lane(x, 3);
}
