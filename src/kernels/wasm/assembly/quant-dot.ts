// Opt-in decode with llama.cpp's arithmetic (configureKernels({ decodeActivations: "q8_0" })), for b stored [n, k]
// with blocks along k (GGUF / PEFT "out_in"), Q8_0 or Q4_0: each row of x is quantized per 32-block exactly as
// ggml's quantize_row_q8_0_ref does (d = amax/127 rounded to f16, q = roundf(x/d)), then every output is
// Σ_blocks sumi·d_w·d_x with sumi the exact integer dot product of the block's quants (Q4_0: nibble − 8) with the
// row's int8 quants — ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0. The integer sums are exact (i32x4.dot_i16x8_s on
// quants widened to int16, the four lanes of four blocks reduced into [sumi_q .. sumi_q+3]); the float part is
// sumi·(d_w·d_x) summed over blocks in four lanes, then the lanes, so the result equals ggml's within float32
// rounding of Σ|sumi·d_w·d_x| — not the float32 product on the dequantized weight: quantizing x moves each
// weight's term by up to half a quant step of x (1/254 of its block's largest |x|).
// Not used: i32x4.relaxed_dot_i8x16_i7x16_add_s (pmaddubsw), 1.2× faster in a prototype, returns 2·dot and drops
// the addend in Node 20's V8 on this x64 CPU (checked in isolation), so it cannot be relied on.
// Rows of x the exact kernels would not take fast (see quant-gemv.ts: huge, tiny, ±Inf, NaN), and k above K_MAX,
// use the exact kernel instead.

import { fma, hoist } from "./common";
import { bb, finish, half1, half4, qgemvRowT, xInRange } from "./quant-gemv";

/** Largest k: the quantized row (2.125 bytes per value) must fit in work (over 2 MiB). */
const K_MAX = 1 << 19;

// f32 value of the f16 nearest to d ≥ 0 (ties to even; ≥ 65520 → +Inf), as GGML_FP32_TO_FP16 then back
@inline function roundToHalf(d: f32): f32 {
  if (d >= 65520) return Infinity;
  if (d < reinterpret<f32>(0x38800000)) return nearest(d * reinterpret<f32>(0x4b800000)) * reinterpret<f32>(0x33800000);
  const u = reinterpret<u32>(d);
  return reinterpret<f32>((u + 0xfff + ((u >> 13) & 1)) & ~(<u32>0x1fff));
}

// roundf of each lane (to nearest, halves away from zero; |v| < 2^23), as int32
@inline function roundAway(v: v128): v128 {
  const t = f32x4.trunc(v);
  const half = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const one = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.splat(1));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(t, v128.and(half, one)));
}

// x[0 .. k) as Q8_0 (quantize_row_q8_0_ref): quants as int16 at xq (32 per block), d (f16-rounded) at dx
function quantizeRow(x: usize, k: i32, xq: usize, dx: usize): void {
  for (let q = 0; q < k >> 5; q++) {
    const xp = x + (<usize>q << 7);
    let m = f32x4.abs(v128.load(xp));
    for (let u: usize = 16; u < 128; u += 16) m = f32x4.max(m, f32x4.abs(v128.load(xp + u)));
    const m01 = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
    const amax = max(m01, max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    store<f32>(dx + (<usize>q << 2), roundToHalf(d));
    const o = xq + (<usize>q << 6);
    for (let u: usize = 0; u < 4; u++) {
      const r0 = roundAway(f32x4.mul(v128.load(xp + (u << 5)), id));
      const r1 = roundAway(f32x4.mul(v128.load(xp + (u << 5), 16), id));
      v128.store(o + (u << 4), i16x8.narrow_i32x4_s(r0, r1));
    }
  }
}

// exact integer dot product of the block at blk with the row's 32 quants (int16 at xp), in four int32 lanes;
// m0f = i8x16.splat(15), m08 = i8x16.splat(8), hoisted (unused for Q8_0)
@inline function idot<T>(blk: usize, xp: usize, m0f: v128, m08: v128): v128 {
  let lo: v128;
  let hi: v128;
  if (isSigned<T>()) {
    lo = v128.load(blk, 2);
    hi = v128.load(blk, 18);
  } else {
    const raw = v128.load(blk, 2);
    lo = i8x16.sub(v128.and(raw, m0f), m08);
    hi = i8x16.sub(v128.and(i16x8.shr_u(raw, 4), m0f), m08);
  }
  let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), v128.load(xp));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), v128.load(xp, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), v128.load(xp, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), v128.load(xp, 48)));
}
// [Σ a, Σ b, Σ c, Σ d] of four int32x4 (exact)
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const u0 = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const u1 = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(u0, u1, 0, 1, 4, 5), v128.shuffle<i32>(u0, u1, 2, 3, 6, 7));
}
// Σ over blocks q .. q + 3 of one row of b: acc + [sumi_q .. sumi_q+3]·[d_w·d_x] (the exact block sums in the lanes,
// so the result does not depend on how the integer dot product groups its lanes); the hoisted constants of idot and
// half4 (vmul = 2^112: the plain f16 value)
@inline function chunk<T>(
  acc: v128, blk: usize, bt: usize, xp: usize, vx: v128, m0f: v128, m08: v128, c7c00: v128, inf: v128, vmul: v128,
): v128 {
  const s0 = idot<T>(blk, xp, m0f, m08);
  const s1 = idot<T>(blk + bt, xp + 64, m0f, m08);
  const s = reduce4(s0, s1, idot<T>(blk + 2 * bt, xp + 128, m0f, m08), idot<T>(blk + 3 * bt, xp + 192, m0f, m08));
  const d = f32x4.mul(half4(blk, bt, c7c00, inf, vmul), vx);
  return fma(f32x4.convert_i32x4_s(s), d, acc);
}

/** qgemvRowT's arguments; row i of out over [j0, j1) with llama.cpp's arithmetic (above). work: scratch. */
export function qdotRowT(
  out: usize, a: usize, b: usize, k: i32, n: i32, t: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const ai = a + ((<usize>i * k) << 2);
  if (k > K_MAX || !xInRange(ai, k)) qgemvRowT(out, a, b, k, n, t, alpha, beta, a2, b2, k2, j0, j1, work, i);
  else if (t == 1) rowDot<i8>(out, ai, b, k, n, alpha, beta, a2, b2, k2, j0, j1, work, i);
  else rowDot<u8>(out, ai, b, k, n, alpha, beta, a2, b2, k2, j0, j1, work, i);
}

function rowDot<T>(
  out: usize, ai: usize, b: usize, k: i32, n: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const nb = k >> 5;
  const dx = (work + 63) & ~(<usize>63);
  const xq = (dx + (<usize>nb << 2) + 63) & ~(<usize>63); // 64 bytes per block
  quantizeRow(ai, k, xq, dx);
  const bt = bb<T>();
  const rs = <usize>nb * bt;
  const M = reinterpret<f32>(0x77800000); // 2^112: the plain f16 value
  // the loops' vector constants, hoisted (common.ts)
  const m0f = hoist(i8x16.splat(15), k);
  const m08 = hoist(i8x16.splat(8), k);
  const c7c00 = hoist(i32x4.splat(0x7c00), k);
  const inf = hoist(i32x4.splat(0x7f800000), k);
  const vmul = hoist(f32x4.splat(M), k);
  let j = j0;
  // Q8_0: four rows of b per pass share the loads of x's quants; Q4_0: one (1.25× faster, measured interleaved)
  if (isSigned<T>()) {
    for (; j + 4 <= j1; j += 4) {
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let acc2 = f32x4.splat(0);
      let acc3 = f32x4.splat(0);
      let blk = b + <usize>j * rs;
      let q = 0;
      for (; q + 4 <= nb; q += 4) {
        const vx = v128.load(dx + (<usize>q << 2));
        const xp = xq + (<usize>q << 6);
        acc0 = chunk<T>(acc0, blk, bt, xp, vx, m0f, m08, c7c00, inf, vmul);
        acc1 = chunk<T>(acc1, blk + rs, bt, xp, vx, m0f, m08, c7c00, inf, vmul);
        acc2 = chunk<T>(acc2, blk + 2 * rs, bt, xp, vx, m0f, m08, c7c00, inf, vmul);
        acc3 = chunk<T>(acc3, blk + 3 * rs, bt, xp, vx, m0f, m08, c7c00, inf, vmul);
        blk += 4 * bt;
      }
      for (; q < nb; q++) {
        const d = load<f32>(dx + (<usize>q << 2));
        const xp = xq + (<usize>q << 6);
        acc0 = fma(half1(blk, M, d), f32x4.convert_i32x4_s(idot<T>(blk, xp, m0f, m08)), acc0);
        acc1 = fma(half1(blk + rs, M, d), f32x4.convert_i32x4_s(idot<T>(blk + rs, xp, m0f, m08)), acc1);
        acc2 = fma(half1(blk + 2 * rs, M, d), f32x4.convert_i32x4_s(idot<T>(blk + 2 * rs, xp, m0f, m08)), acc2);
        acc3 = fma(half1(blk + 3 * rs, M, d), f32x4.convert_i32x4_s(idot<T>(blk + 3 * rs, xp, m0f, m08)), acc3);
        blk += bt;
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
    let q = 0;
    for (; q + 4 <= nb; q += 4) {
      const vx = v128.load(dx + (<usize>q << 2));
      acc = chunk<T>(acc, blk, bt, xq + (<usize>q << 6), vx, m0f, m08, c7c00, inf, vmul);
      blk += 4 * bt;
    }
    for (; q < nb; q++) {
      const d = load<f32>(dx + (<usize>q << 2));
      acc = fma(half1(blk, M, d), f32x4.convert_i32x4_s(idot<T>(blk, xq + (<usize>q << 6), m0f, m08)), acc);
      blk += bt;
    }
    finish(out, acc, a2, b2, k2, n, alpha, beta, i, j);
  }
}
