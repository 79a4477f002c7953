// Single-row products (m < 4: decode) with a ggml-quantized b, reading its blocks in place; called by gemm() in
// gemm.ts (block layouts in quant.ts). Measured at 1×4096×4096 + r = 16, one thread: Q4_0 1.8–3.3× and Q8_0
// 2.2–3.3× the float32 GEMV's speed (load-dependent), against 1.3× and 2.0× for the int8 → int16 → int32 widening
// these replace, which they beat by 2.0–2.5× interleaved in one process (bench/quant.bench.mjs, BENCHMARKS.md).
//
// The 32 quants of a block become float32 in two steps per 4 values: i8x16.swizzle puts each quant byte in the top
// byte of an i32 lane (the lane = q·2^24, sign included, no widening chain), then f32x4.convert_i32x4_s (exact).
// Q4_0 nibbles are first made signed bytes with one xor and masks: (nib ^ 8) << 4 = (nib − 8)·16 as int8, so its
// lanes hold (nib − 8)·2^28. The power of two is folded into the block's scale (d·2^-24 or d·2^-28, exact: the
// f16 → f32 conversion multiplies by 2^(112 − s) instead of 2^112), so every product and sum is the unscaled one
// times a power of two and rounds identically, as long as nothing overflows or underflows. That holds when every
// x is 0 or within [2^-64, 2^64] (checked per row, ~1k vector ops): partial sums stay below 2^100 and the scaled
// scales above 2^-116. Any other row of x (huge, tiny, ±Inf, NaN) takes the widening kernels in quant.ts.
// The f16 scales are converted four blocks at a time with SIMD inside the loop over blocks (kept in 64 bytes of
// work and read back splatted), not one at a time: 1.3–1.6× faster than scalar conversion, and than a separate
// pass over a row's scales, which reads b's cache lines while no arithmetic runs.
// The relaxed build (Node 22+) hoists the loops' vector constants (common.ts hoist) and swizzles with
// i8x16.relaxed_swizzle (plain pshufb: the indices are 0..15 or have the top bit set, which relaxed SIMD defines as
// 0): Node 24's V8 rebuilt each constant at every use, which made these loops 1.3–2.0× slower there than on Node 22.
//
// Summation (within the float32 bound of the product on the dequantized weight, and independent of [j0, j1)):
//   "out_in" (qgemvRowT): per column, per block, two f32x4 chains over the 32 products, added, then
//     acc = acc + d·block (relaxed build: one relaxed_madd); the lanes of acc summed at the end, then the k2 terms.
//   "in_out" (qgemvRow): per element, acc = acc + (x[p]·d)·q for increasing p, then the k2 terms.

import { fma, hoist } from "./common";
import { qgemvRowTWide, qgemvRowWide, stripTail } from "./quant";

/** Columns of one accumulator strip of qgemvRow (16 KiB, in L1); 32 bytes of scales follow it in work. */
const QCOLS = 4096;

// Type markers for the generic kernels (specialized at compile time): i8 = Q8_0 (signed bytes), u8 = Q4_0 (nibbles).
@inline export function bb<T>(): usize {
  return isSigned<T>() ? 34 : 18;
}

// swizzle indices: byte g·4 + i of the source into the top byte of i32 lane i (other bytes 0)
@inline function idx(g: i32): v128 {
  const t = g << 26;
  return i32x4(0x00808080 | t, 0x01808080 | t, 0x02808080 | t, 0x03808080 | t);
}
// signed top bytes of lanes 4g .. 4g + 3 of v as float32 (value·2^24), ix = idx(g)
@inline function top(v: v128, ix: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.convert_i32x4_s(i8x16.relaxed_swizzle(v, ix));
  return f32x4.convert_i32x4_s(i8x16.swizzle(v, ix));
}

/** True when every x[0 .. k) is 0 or has 2^-64 <= |x| <= 2^64 (not NaN, not infinite). */
export function xInRange(x: usize, k: i32): bool {
  let bad = i32x4.splat(0);
  const big = f32x4.splat(reinterpret<f32>(0x5f800000)); // 2^64
  const small = f32x4.splat(reinterpret<f32>(0x1f800000)); // 2^-64
  const zero = f32x4.splat(0);
  let p = 0;
  for (; p + 4 <= k; p += 4) {
    const v = f32x4.abs(v128.load(x + (<usize>p << 2)));
    bad = v128.or(bad, v128.not(f32x4.le(v, big)));
    bad = v128.or(bad, v128.and(f32x4.lt(v, small), f32x4.ne(v, zero)));
  }
  let ok = !v128.any_true(bad);
  for (; p < k; p++) {
    const v = abs(load<f32>(x + (<usize>p << 2)));
    if (!(v <= reinterpret<f32>(0x5f800000)) || (v < reinterpret<f32>(0x1f800000) && v != 0)) ok = false;
  }
  return ok;
}

// (f32 of the half at src + i·stride)·2^-s in lane i (i < 4), with c7c00 = i32x4.splat(0x7c00), inf =
// i32x4.splat(0x7f800000), vmul = f32x4.splat(2^(112 − s)): exact for every half (the scaled value stays a normal
// float32), ±Inf and NaN kept
@inline export function half4(src: usize, stride: usize, c7c00: v128, inf: v128, vmul: v128): v128 {
  let h = i32x4.splat(<i32>load<u16>(src));
  h = i32x4.replace_lane(h, 1, <i32>load<u16>(src + stride));
  h = i32x4.replace_lane(h, 2, <i32>load<u16>(src + 2 * stride));
  h = i32x4.replace_lane(h, 3, <i32>load<u16>(src + 3 * stride));
  // (h & 0x7fff) << 13 | (h & 0x8000) << 16, by shifts (no constants)
  const bits = v128.or(i32x4.shr_u(i32x4.shl(h, 17), 4), i32x4.shl(i32x4.shr_u(h, 15), 31));
  const special = i32x4.eq(v128.and(h, c7c00), c7c00);
  return v128.bitselect(v128.or(bits, inf), f32x4.mul(bits, vmul), special);
}
// the same for one half, splatted
@inline export function half1(src: usize, mul: f32, x: f32): v128 {
  const h = <u32>load<u16>(src);
  const e = (h & 0x7fff) << 13;
  const sign = (h & 0x8000) << 16;
  const v = (h & 0x7c00) == 0x7c00 ? reinterpret<f32>(e | sign | 0x7f800000) : reinterpret<f32>(e | sign) * mul;
  return f32x4.splat(x * v);
}

// The 32 quants of the block at blk as two vectors of bytes whose top-of-lane placement gives value·2^s:
// Q8_0: q (s = 24), lo = bytes 0..15, hi = 16..31. Q4_0: ((nib ^ 8) << 4) = (nib − 8)·16 as int8 (s = 28).
// m88 = i8x16.splat(0x88), mf0 = i8x16.splat(0xf0) (hoisted; unused for Q8_0)
@inline function qlo<T>(blk: usize, m88: v128, mf0: v128): v128 {
  if (isSigned<T>()) return v128.load(blk, 2);
  return v128.and(i16x8.shl(v128.xor(v128.load(blk, 2), m88), 4), mf0);
}
@inline function qhi<T>(blk: usize, m88: v128, mf0: v128): v128 {
  if (isSigned<T>()) return v128.load(blk, 18);
  return v128.and(v128.xor(v128.load(blk, 2), m88), mf0);
}
@inline function dmul<T>(): f32 {
  return isSigned<T>() ? reinterpret<f32>(0x6b800000) : reinterpret<f32>(0x69800000); // 2^88, 2^84
}

// Σ over the block of value·x·2^s, x at xp (32 floats), ig = idx(g) hoisted
@inline function blockDot(lo: v128, hi: v128, xp: usize, i0: v128, i1: v128, i2: v128, i3: v128): v128 {
  let s0 = f32x4.mul(top(lo, i0), v128.load(xp));
  let s1 = f32x4.mul(top(lo, i1), v128.load(xp, 16));
  s0 = fma(top(lo, i2), v128.load(xp, 32), s0);
  s1 = fma(top(lo, i3), v128.load(xp, 48), s1);
  s0 = fma(top(hi, i0), v128.load(xp, 64), s0);
  s1 = fma(top(hi, i1), v128.load(xp, 80), s1);
  s0 = fma(top(hi, i2), v128.load(xp, 96), s0);
  s1 = fma(top(hi, i3), v128.load(xp, 112), s1);
  return f32x4.add(s0, s1);
}

@inline function hsum(acc: v128): f32 {
  const l01 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1);
  return l01 + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
}

// out[i, j] = alpha·(Σ_blocks d·(Σ q·x) + Σ_q a2·b2) (+ out with beta = 1) for one column j
@inline export function finish(
  out: usize, acc: v128, a2: usize, b2: usize, k2: i32, n: i32, alpha: f32, beta: i32, i: i32, j: i32,
): void {
  let sum = hsum(acc);
  for (let q = 0; q < k2; q++) {
    sum += load<f32>(a2 + ((<usize>i * k2 + q) << 2)) * load<f32>(b2 + ((<usize>q * n + j) << 2));
  }
  const c = out + ((<usize>i * n + j) << 2);
  store<f32>(c, beta ? load<f32>(c) + alpha * sum : alpha * sum);
}

/**
 * Row i of out over [j0, j1) for b stored [n, k] (blocks along k, t = 1 Q8_0, 2 Q4_0): out[i, j] = alpha·(Σ_blocks
 * d·(Σ q·x) + Σ_q a2[i, q]·b2[q, j]) (+ out[i, j] when beta = 1). Q8_0: four rows of b per pass share the loads
 * of x; Q4_0: one row per pass.
 * work: 64 bytes of scratch for the scales.
 */
export function qgemvRowT(
  out: usize, a: usize, b: usize, k: i32, n: i32, t: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const ai = a + ((<usize>i * k) << 2);
  if (!xInRange(ai, k)) qgemvRowTWide(out, a, b, k, n, t, alpha, beta, a2, b2, k2, j0, j1, i);
  else if (t == 1) rowT<i8>(out, ai, b, k, n, alpha, beta, a2, b2, k2, j0, j1, work, i);
  else rowT<u8>(out, ai, b, k, n, alpha, beta, a2, b2, k2, j0, j1, work, i);
}

function rowT<T>(
  out: usize, ai: usize, b: usize, k: i32, n: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const sc = (work + 63) & ~(<usize>63);
  const bt = bb<T>();
  const rs = <usize>(k >> 5) * bt; // bytes per stored row
  const nb = k >> 5;
  const dm = dmul<T>();
  // the loops' vector constants, hoisted (common.ts)
  const i0 = hoist(idx(0), k);
  const i1 = hoist(idx(1), k);
  const i2 = hoist(idx(2), k);
  const i3 = hoist(idx(3), k);
  const m88 = hoist(i8x16.splat(-120), k);
  const mf0 = hoist(i8x16.splat(-16), k);
  const c7c00 = hoist(i32x4.splat(0x7c00), k);
  const inf = hoist(i32x4.splat(0x7f800000), k);
  const vmul = hoist(f32x4.splat(dm), k);
  let j = j0;
  // Q8_0: four rows of b per pass (2.9× float32, 2.2× one at a time); Q4_0: one (2.3–2.8× float32, against
  // 2.1–2.7× with four and 2.3× with two), measured interleaved in one process
  if (isSigned<T>()) {
    for (; j + 4 <= j1; j += 4) {
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let acc2 = f32x4.splat(0);
      let acc3 = f32x4.splat(0);
      let blk = b + <usize>j * rs;
      let xp = ai;
      let q = 0;
      // four blocks at a time: their scales (four per row) converted together, kept in sc, read back splatted
      for (; q + 4 <= nb; q += 4) {
        v128.store(sc, half4(blk, bt, c7c00, inf, vmul));
        v128.store(sc, half4(blk + rs, bt, c7c00, inf, vmul), 16);
        v128.store(sc, half4(blk + 2 * rs, bt, c7c00, inf, vmul), 32);
        v128.store(sc, half4(blk + 3 * rs, bt, c7c00, inf, vmul), 48);
        for (let u: usize = 0; u < 16; u += 4) {
          const d0 = blockDot(qlo<T>(blk, m88, mf0), qhi<T>(blk, m88, mf0), xp, i0, i1, i2, i3);
          acc0 = fma(v128.load32_splat(sc + u), d0, acc0);
          const r1 = blk + rs;
          const d1 = blockDot(qlo<T>(r1, m88, mf0), qhi<T>(r1, m88, mf0), xp, i0, i1, i2, i3);
          acc1 = fma(v128.load32_splat(sc + u, 16), d1, acc1);
          const r2 = blk + 2 * rs;
          const d2 = blockDot(qlo<T>(r2, m88, mf0), qhi<T>(r2, m88, mf0), xp, i0, i1, i2, i3);
          acc2 = fma(v128.load32_splat(sc + u, 32), d2, acc2);
          const r3 = blk + 3 * rs;
          const d3 = blockDot(qlo<T>(r3, m88, mf0), qhi<T>(r3, m88, mf0), xp, i0, i1, i2, i3);
          acc3 = fma(v128.load32_splat(sc + u, 48), d3, acc3);
          blk += bt;
          xp += 128;
        }
      }
      for (; q < nb; q++) {
        acc0 = fma(half1(blk, dm, 1), blockDot(qlo<T>(blk, m88, mf0), qhi<T>(blk, m88, mf0), xp, i0, i1, i2, i3), acc0);
        const r1 = blk + rs;
        acc1 = fma(half1(r1, dm, 1), blockDot(qlo<T>(r1, m88, mf0), qhi<T>(r1, m88, mf0), xp, i0, i1, i2, i3), acc1);
        const r2 = blk + 2 * rs;
        acc2 = fma(half1(r2, dm, 1), blockDot(qlo<T>(r2, m88, mf0), qhi<T>(r2, m88, mf0), xp, i0, i1, i2, i3), acc2);
        const r3 = blk + 3 * rs;
        acc3 = fma(half1(r3, dm, 1), blockDot(qlo<T>(r3, m88, mf0), qhi<T>(r3, m88, mf0), xp, i0, i1, i2, i3), acc3);
        blk += bt;
        xp += 128;
      }
      finish(out, acc0, a2, b2, k2, n, alpha, beta, i, j);
      finish(out, acc1, a2, b2, k2, n, alpha, beta, i, j + 1);
      finish(out, acc2, a2, b2, k2, n, alpha, beta, i, j + 2);
      finish(out, acc3, a2, b2, k2, n, alpha, beta, i, j + 3);
    }
  }
  for (; j < j1; j++) {
    let acc = f32x4.splat(0);
    let blk = b + <usize>j * rs;
    let xp = ai;
    let q = 0;
    for (; q + 4 <= nb; q += 4) {
      v128.store(sc, half4(blk, bt, c7c00, inf, vmul));
      for (let u: usize = 0; u < 16; u += 4) {
        const d = blockDot(qlo<T>(blk, m88, mf0), qhi<T>(blk, m88, mf0), xp, i0, i1, i2, i3);
        acc = fma(v128.load32_splat(sc + u), d, acc);
        blk += bt;
        xp += 128;
      }
    }
    for (; q < nb; q++) {
      acc = fma(half1(blk, dm, 1), blockDot(qlo<T>(blk, m88, mf0), qhi<T>(blk, m88, mf0), xp, i0, i1, i2, i3), acc);
      blk += bt;
      xp += 128;
    }
    finish(out, acc, a2, b2, k2, n, alpha, beta, i, j);
  }
}

/**
 * Row i of out over [j0, j1) for b stored [k, n] (blocks along n; j0 and j1 multiples of 32): an accumulator strip of
 * up to QCOLS columns takes (x[i, p]·d)·q for every row p of b (one row per pass over the strip: b is read as one
 * sequential stream, measured 1.1–1.3× faster than two rows per pass), then the k2 extension, then
 * out = alpha·acc (+ out when beta = 1). work: 64-byte aligned scratch (strip, then scales).
 */
export function qgemvRow(
  out: usize, a: usize, b: usize, k: i32, n: i32, t: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const ai = a + ((<usize>i * k) << 2);
  if (!xInRange(ai, k)) qgemvRowWide(out, a, b, k, n, t, alpha, beta, a2, b2, k2, j0, j1, work, i);
  else if (t == 1) row<i8>(out, ai, b, k, n, alpha, beta, a2, b2, k2, j0, j1, work, i);
  else row<u8>(out, ai, b, k, n, alpha, beta, a2, b2, k2, j0, j1, work, i);
}

// acc[0 .. 32) += vs·(values of the block at blk); the constants as in rowT
@inline function axpy1<T>(
  acc: usize, vs: v128, blk: usize, m88: v128, mf0: v128, i0: v128, i1: v128, i2: v128, i3: v128,
): void {
  const lo = qlo<T>(blk, m88, mf0);
  const hi = qhi<T>(blk, m88, mf0);
  v128.store(acc, fma(vs, top(lo, i0), v128.load(acc)));
  v128.store(acc, fma(vs, top(lo, i1), v128.load(acc, 16)), 16);
  v128.store(acc, fma(vs, top(lo, i2), v128.load(acc, 32)), 32);
  v128.store(acc, fma(vs, top(lo, i3), v128.load(acc, 48)), 48);
  v128.store(acc, fma(vs, top(hi, i0), v128.load(acc, 64)), 64);
  v128.store(acc, fma(vs, top(hi, i1), v128.load(acc, 80)), 80);
  v128.store(acc, fma(vs, top(hi, i2), v128.load(acc, 96)), 96);
  v128.store(acc, fma(vs, top(hi, i3), v128.load(acc, 112)), 112);
}

function row<T>(
  out: usize, ai: usize, b: usize, k: i32, n: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const acc0 = (work + 63) & ~(<usize>63);
  const sc = acc0 + (<usize>QCOLS << 2);
  const bt = bb<T>();
  const rs = <usize>(n >> 5) * bt; // bytes per stored row
  const dm = dmul<T>();
  const i0 = hoist(idx(0), k);
  const i1 = hoist(idx(1), k);
  const i2 = hoist(idx(2), k);
  const i3 = hoist(idx(3), k);
  const m88 = hoist(i8x16.splat(-120), k);
  const mf0 = hoist(i8x16.splat(-16), k);
  const c7c00 = hoist(i32x4.splat(0x7c00), k);
  const inf = hoist(i32x4.splat(0x7f800000), k);
  const vmul = hoist(f32x4.splat(dm), k);
  for (let jc = j0; jc < j1; jc += QCOLS) {
    const nc = min(QCOLS, j1 - jc);
    memory.fill(acc0, 0, <usize>nc << 2);
    const nbk = nc >> 5;
    for (let p = 0; p < k; p++) {
      const x0 = load<f32>(ai + (<usize>p << 2));
      let blk = b + <usize>p * rs + <usize>(jc >> 5) * bt;
      let acc = acc0;
      let q = 0;
      for (; q + 4 <= nbk; q += 4) {
        v128.store(sc, f32x4.mul(half4(blk, bt, c7c00, inf, vmul), f32x4.splat(x0)));
        for (let u: usize = 0; u < 16; u += 4) {
          axpy1<T>(acc, v128.load32_splat(sc + u), blk, m88, mf0, i0, i1, i2, i3);
          blk += bt;
          acc += 128;
        }
      }
      for (; q < nbk; q++) {
        axpy1<T>(acc, half1(blk, dm, x0), blk, m88, mf0, i0, i1, i2, i3);
        blk += bt;
        acc += 128;
      }
    }
    stripTail(out, acc0, a2, b2, k2, i, n, jc, nc, alpha, beta);
  }
}
