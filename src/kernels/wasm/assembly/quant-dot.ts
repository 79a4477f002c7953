// Opt-in decode with llama.cpp's arithmetic (configureKernels({ decodeActivations: "q8_0" })), for b stored [n, k]
// with blocks along k (GGUF / PEFT "out_in"), Q8_0 or Q4_0: each row of x is quantized per 32-block exactly as
// ggml's quantize_row_q8_0_ref does (d = amax/127 rounded to f16, q = roundf(x/d)), then every output is
// Σ_blocks sumi·d_w·d_x with sumi the exact integer dot product of the block's quants (Q4_0: nibble − 8) with the
// row's int8 quants — ggml_vec_dot_q8_0_q8_0 / _q4_0_q8_0. The integer sums are exact (i32x4.dot_i16x8_s on
// quants widened to int16, the four lanes of four blocks reduced into [sumi_q .. sumi_q+3]); the float part is
// sumi·(d_w·d_x) summed over blocks in four lanes, then the lanes, so the result equals ggml's within float32
// rounding of Σ|sumi·d_w·d_x| — not the float32 product on the dequantized weight: quantizing x moves each
// weight's term by up to half a quant step of x (1/254 of its block's largest |x|).
// Q4_0 takes the nibbles as they are (0..15) and subtracts 8·Σ x-quants per block (exact in int32), so no nibble is
// made signed or widened: in 16-bit lanes the four nibbles of a lane are two weights of the block's first half and
// two of its second, so x's quants are stored permuted to match (quantizeRow). In the relaxed build the block's dot
// product is two i32x4.relaxed_dot_i8x16_i7x16_add_s (pmaddubsw + pmaddwd on x64) with the nibbles as the 7-bit
// operand, where the engine computes it as specified: Node 20's V8 (behind its flag) returned 2·dot and dropped the
// addend on this x64 CPU, so each instance checks it once on operands like the kernel's (probeDot8) and otherwise
// keeps the 16-bit path. Every path gives the same integers, hence the same bits.
// Rows of x the exact kernels would not take fast (see quant-gemv.ts: huge, tiny, ±Inf, NaN), and k above K_MAX,
// use the exact kernel instead.

import { fma, hoist } from "./common";
import { bb, finish, half1, half4, qgemvRowT, xInRange } from "./quant-gemv";

/** Largest k: the quantized row (2.25 bytes per value) must fit in work (over 2 MiB). */
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

// How x's quants are laid out for the block dot products (64 bytes per block at xq)
const XQ_I16 = 0; // Q8_0: int16 in order
const XQ_I16_NIBBLES = 1; // Q4_0: int16 as [0, 2, …, 14], [16, 18, …, 30], [1, 3, …, 15], [17, 19, …, 31]
const XQ_I8 = 2; // Q4_0 with the 8-bit dot product: int8 in order (32 bytes)

// x[0 .. k) as Q8_0 (quantize_row_q8_0_ref): d (f16-rounded) at dx, the quants at xq in the given layout, and for
// the Q4_0 layouts Σ of the block's quants (int32) at sx
function quantizeRow(x: usize, k: i32, xq: usize, dx: usize, sx: usize, layout: i32): void {
  for (let q = 0; q < k >> 5; q++) {
    const xp = x + (<usize>q << 7);
    let m = f32x4.abs(v128.load(xp));
    for (let u: usize = 16; u < 128; u += 16) m = f32x4.max(m, f32x4.abs(v128.load(xp + u)));
    const m01 = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
    const amax = max(m01, max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    store<f32>(dx + (<usize>q << 2), roundToHalf(d));
    // the 32 quants (|q| <= 127) in order, eight per int16 vector
    const r0 = roundAway(f32x4.mul(v128.load(xp), id));
    const r1 = roundAway(f32x4.mul(v128.load(xp, 16), id));
    const r2 = roundAway(f32x4.mul(v128.load(xp, 32), id));
    const r3 = roundAway(f32x4.mul(v128.load(xp, 48), id));
    const r4 = roundAway(f32x4.mul(v128.load(xp, 64), id));
    const r5 = roundAway(f32x4.mul(v128.load(xp, 80), id));
    const r6 = roundAway(f32x4.mul(v128.load(xp, 96), id));
    const r7 = roundAway(f32x4.mul(v128.load(xp, 112), id));
    const n0 = i16x8.narrow_i32x4_s(r0, r1);
    const n1 = i16x8.narrow_i32x4_s(r2, r3);
    const n2 = i16x8.narrow_i32x4_s(r4, r5);
    const n3 = i16x8.narrow_i32x4_s(r6, r7);
    const o = xq + (<usize>q << 6);
    if (layout == XQ_I16) {
      v128.store(o, n0);
      v128.store(o, n1, 16);
      v128.store(o, n2, 32);
      v128.store(o, n3, 48);
      continue;
    }
    if (layout == XQ_I16_NIBBLES) {
      v128.store(o, v128.shuffle<i16>(n0, n1, 0, 2, 4, 6, 8, 10, 12, 14));
      v128.store(o, v128.shuffle<i16>(n2, n3, 0, 2, 4, 6, 8, 10, 12, 14), 16);
      v128.store(o, v128.shuffle<i16>(n0, n1, 1, 3, 5, 7, 9, 11, 13, 15), 32);
      v128.store(o, v128.shuffle<i16>(n2, n3, 1, 3, 5, 7, 9, 11, 13, 15), 48);
    } else {
      v128.store(o, i8x16.narrow_i16x8_s(n0, n1));
      v128.store(o, i8x16.narrow_i16x8_s(n2, n3), 16);
    }
    const t = i32x4.add(i32x4.add(i32x4.add(r0, r1), i32x4.add(r2, r3)), i32x4.add(i32x4.add(r4, r5), i32x4.add(r6, r7)));
    const s01 = i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1);
    store<i32>(sx + (<usize>q << 2), s01 + (i32x4.extract_lane(t, 2) + i32x4.extract_lane(t, 3)));
  }
}

// 1: relaxed_dot_i8x16_i7x16_add_s computes Σ a·b + c as specified here; 0: it does not (or a plain build); −1: not
// yet checked by this instance
let dot8: i32 = -1;

// relaxed_dot_i8x16_i7x16_add_s on operands like the kernel's — a in [−127, 127] (the extremes included), b in
// [0, 15], an addend — against scalar arithmetic; scratch: 32 bytes, seed: any runtime value (nothing is folded)
function probeDot8(scratch: usize, seed: i32): bool {
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 16; i++) {
      let a = ((i * 53 + round * 29 + seed) & 255) - 127;
      if (a > 127) a = 127;
      if (round == 3) a = i & 1 ? 127 : -127;
      store<i8>(scratch + i, <i8>a);
      store<u8>(scratch + 16 + i, <u8>(round == 3 ? 15 : (i * 7 + round + seed) & 15));
    }
    const c = i32x4(1, -1, 65536, -65536);
    const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(scratch), v128.load(scratch, 16), c);
    for (let l = 0; l < 4; l++) {
      let want = l == 0 ? 1 : l == 1 ? -1 : l == 2 ? 65536 : -65536;
      for (let i = 4 * l; i < 4 * l + 4; i++)
        want += <i32>load<i8>(scratch + i) * <i32>load<u8>(scratch + 16 + i);
      let got = i32x4.extract_lane(r, 0);
      if (l == 1) got = i32x4.extract_lane(r, 1);
      else if (l == 2) got = i32x4.extract_lane(r, 2);
      else if (l == 3) got = i32x4.extract_lane(r, 3);
      if (got != want) return false;
    }
  }
  return true;
}

// whether Q4_0 takes the 8-bit dot product (relaxed build, and the engine computes it as specified)
function useDot8(scratch: usize, seed: i32): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  if (dot8 < 0) dot8 = probeDot8(scratch, seed) ? 1 : 0;
  return dot8 == 1;
}

/**
 * For tests and benchmarks: 1 when this instance's opt-in Q4_0 decode takes the 8-bit dot product, else 0 (probed
 * on first use; scratch: 32 bytes). off = 1 makes it keep the 16-bit path from now on (the same integers).
 */
export function quantDot8(scratch: usize, off: i32): i32 {
  if (off) dot8 = 0;
  return useDot8(scratch, 1) ? 1 : 0;
}

// integer dot product of the block at blk with the row's 32 quants at xp, in four int32 lanes: Q8_0 exact (int16
// quants in order); Q4_0 Σ nibble·q, without the −8·Σ q (blockSums subtracts it), over the layout of quantizeRow
// (8-bit dot product when dot, else int16 permuted); m0f = i8x16.splat(15), m000f = i16x8.splat(15), hoisted
@inline function idot<T>(blk: usize, xp: usize, m0f: v128, m000f: v128, dot: bool): v128 {
  if (isSigned<T>()) {
    const lo = v128.load(blk, 2);
    const hi = v128.load(blk, 18);
    let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), v128.load(xp));
    s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), v128.load(xp, 16)));
    s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), v128.load(xp, 32)));
    return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), v128.load(xp, 48)));
  }
  const raw = v128.load(blk, 2); // byte j: weight j in its low nibble, weight j + 16 in its high one
  if (ASC_FEATURE_RELAXED_SIMD && dot) {
    const lo = v128.and(raw, m0f); // weights 0..15
    const hi = v128.and(i16x8.shr_u(raw, 4), m0f); // weights 16..31
    const s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp), lo, i32x4.splat(0));
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xp, 16), hi, s);
  }
  // 16-bit lane l holds the nibbles of weights 2l, 2l + 16, 2l + 1, 2l + 17 from its low bits up
  let s = i32x4.dot_i16x8_s(v128.and(raw, m000f), v128.load(xp));
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(raw, 4), m000f), v128.load(xp, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(raw, 8), m000f), v128.load(xp, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_u(raw, 12), v128.load(xp, 48)));
}
// [Σ a, Σ b, Σ c, Σ d] of four int32x4 (exact)
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const u0 = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const u1 = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(u0, u1, 0, 1, 4, 5), v128.shuffle<i32>(u0, u1, 2, 3, 6, 7));
}
// the exact sums of the block at blk with the row's quants at xp: Q8_0 as idot's four lanes; Q4_0 in lane 0
// (Σ nibble·q − 8·Σ q, with Σ q at sq), the other lanes 0, so the result does not depend on the dot product's lanes
@inline function blockSum<T>(blk: usize, xp: usize, sq: usize, m0f: v128, m000f: v128, dot: bool): v128 {
  const s = idot<T>(blk, xp, m0f, m000f, dot);
  if (isSigned<T>()) return s;
  const s01 = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
  const sum = s01 + (i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3)) - (load<i32>(sq) << 3);
  return i32x4.replace_lane(i32x4.splat(0), 0, sum);
}
// Σ over blocks q .. q + 3 of one row of b: acc + [sumi_q .. sumi_q+3]·[d_w·d_x] (the exact block sums in the lanes,
// so the result does not depend on how the integer dot product groups its lanes; Q4_0 subtracts 8·Σ q of each block,
// at sq); the hoisted constants of idot and half4 (vmul = 2^112: the plain f16 value)
@inline function chunk<T>(
  acc: v128, blk: usize, bt: usize, xp: usize, sq: usize, vx: v128, m0f: v128, m000f: v128, dot: bool,
  c7c00: v128, inf: v128, vmul: v128,
): v128 {
  const s0 = idot<T>(blk, xp, m0f, m000f, dot);
  const s1 = idot<T>(blk + bt, xp + 64, m0f, m000f, dot);
  const s2 = idot<T>(blk + 2 * bt, xp + 128, m0f, m000f, dot);
  let s = reduce4(s0, s1, s2, idot<T>(blk + 3 * bt, xp + 192, m0f, m000f, dot));
  if (!isSigned<T>()) s = i32x4.sub(s, i32x4.shl(v128.load(sq), 3));
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
  const dx = (work + 63) & ~(<usize>63); // nb scales (f32)
  const sx = dx + (<usize>nb << 2); // Q4_0: nb sums of quants (i32)
  const xq = (sx + (<usize>nb << 2) + 63) & ~(<usize>63); // 64 bytes per block
  const dot = !isSigned<T>() && useDot8(xq, k);
  quantizeRow(ai, k, xq, dx, sx, isSigned<T>() ? XQ_I16 : dot ? XQ_I8 : XQ_I16_NIBBLES);
  const bt = bb<T>();
  const rs = <usize>nb * bt;
  const M = reinterpret<f32>(0x77800000); // 2^112: the plain f16 value
  // the loops' vector constants, hoisted (common.ts)
  const m0f = hoist(i8x16.splat(15), k);
  const m000f = hoist(i16x8.splat(15), k);
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
        acc0 = chunk<T>(acc0, blk, bt, xp, 0, vx, m0f, m000f, false, c7c00, inf, vmul);
        acc1 = chunk<T>(acc1, blk + rs, bt, xp, 0, vx, m0f, m000f, false, c7c00, inf, vmul);
        acc2 = chunk<T>(acc2, blk + 2 * rs, bt, xp, 0, vx, m0f, m000f, false, c7c00, inf, vmul);
        acc3 = chunk<T>(acc3, blk + 3 * rs, bt, xp, 0, vx, m0f, m000f, false, c7c00, inf, vmul);
        blk += 4 * bt;
      }
      for (; q < nb; q++) {
        const d = load<f32>(dx + (<usize>q << 2));
        const xp = xq + (<usize>q << 6);
        acc0 = fma(half1(blk, M, d), f32x4.convert_i32x4_s(idot<T>(blk, xp, m0f, m000f, false)), acc0);
        acc1 = fma(half1(blk + rs, M, d), f32x4.convert_i32x4_s(idot<T>(blk + rs, xp, m0f, m000f, false)), acc1);
        acc2 = fma(half1(blk + 2 * rs, M, d), f32x4.convert_i32x4_s(idot<T>(blk + 2 * rs, xp, m0f, m000f, false)), acc2);
        acc3 = fma(half1(blk + 3 * rs, M, d), f32x4.convert_i32x4_s(idot<T>(blk + 3 * rs, xp, m0f, m000f, false)), acc3);
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
      const sq = sx + (<usize>q << 2);
      acc = chunk<T>(acc, blk, bt, xq + (<usize>q << 6), sq, vx, m0f, m000f, dot, c7c00, inf, vmul);
      blk += 4 * bt;
    }
    for (; q < nb; q++) {
      const d = load<f32>(dx + (<usize>q << 2));
      const s = blockSum<T>(blk, xq + (<usize>q << 6), sx + (<usize>q << 2), m0f, m000f, dot);
      acc = fma(half1(blk, M, d), f32x4.convert_i32x4_s(s), acc);
      blk += bt;
    }
    finish(out, acc, a2, b2, k2, n, alpha, beta, i, j);
  }
}
