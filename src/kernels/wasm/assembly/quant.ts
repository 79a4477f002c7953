// Products with a ggml-quantized b (Q8_0 / Q4_0 blocks, see src/lora/quant.ts), called by gemm() in gemm.ts when
// bits 1–2 of its transB argument name a block type (1 = Q8_0, 2 = Q4_0). b is stored row-major with its blocks
// along each stored row: [k, n] with blocks along n (transB = 0, W "in_out") or [n, k] with blocks along k
// (transB = 1, W "out_in", GGUF / PEFT). The block axis is a multiple of 32; column ranges [j0, j1) start at
// multiples of 32. Every block is read in place, never expanded into a whole float32 copy of b.
//   Q8_0 block (34 bytes): f16 d, 32 × int8 q, value j = q[j]·d
//   Q4_0 block (18 bytes): f16 d, 16 bytes; byte j holds value j (low nibble) and value j + 16 (high), value = (nib − 8)·d
// A dequantized value q·d is exact in float32 (8-bit q times an 11-bit significand), so the packed path (m ≥ 4)
// gives exactly the float32 GEMM's bits on the dequantized matrix. The m < 4 paths (quant-gemv.ts, with the
// widening kernels below as their fallback) scale per block instead (x·d·q, or d·Σ q·x) and stay within the float32
// error bound of the same product.

import { fma, KC, NR, transpose4 } from "./common";

/** Columns of one accumulator strip of qgemvRow (16 KiB, in L1). */
const QCOLS = 4096;

/** Bytes of one block: 34 (Q8_0) or 18 (Q4_0). */
@inline export function blockBytes(t: i32): i32 {
  return t == 1 ? 34 : 18;
}

/** float32 value of IEEE half bits (exact: normals, subnormals, ±0, ±Inf, NaN). */
@inline function halfToF32(h: u32): f32 {
  const e = (h & 0x7fff) << 13;
  let v = reinterpret<f32>(e) * reinterpret<f32>(0x77800000); // · 2^112 rebiases the exponent, scales subnormals
  if ((h & 0x7c00) == 0x7c00) v = reinterpret<f32>(e | 0x7f800000);
  return h & 0x8000 ? -v : v;
}

// int8 lanes 0–3, 4–7, 8–11, 12–15 of v as float32
@inline function cvt0(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v)));
}
@inline function cvt1(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_low_i8x16_s(v)));
}
@inline function cvt2(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_high_i8x16_s(v)));
}
@inline function cvt3(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_high_i8x16_s(v)));
}

// The 16 signed quants of half h (values 16h .. 16h + 15) of the block at blk, as int8 lanes.
@inline function quants(blk: usize, t: i32, h: i32): v128 {
  if (t == 1) return h ? v128.load(blk, 18) : v128.load(blk, 2);
  const raw = v128.load(blk, 2);
  // a 16-bit shift then a mask: V8 has no byte shift on x64 and emulates i8x16.shr_u with several instructions
  const nib = v128.and(h ? i16x8.shr_u(raw, 4) : raw, i8x16.splat(15));
  return i8x16.sub(nib, i8x16.splat(8));
}

// dst[0 .. 16) = values 16h .. 16h + 15 of the block at blk (q·d, exact).
@inline function deq16(dst: usize, blk: usize, t: i32, h: i32): void {
  const vd = f32x4.splat(halfToF32(load<u16>(blk)));
  const q = quants(blk, t, h);
  v128.store(dst, f32x4.mul(cvt0(q), vd));
  v128.store(dst, f32x4.mul(cvt1(q), vd), 16);
  v128.store(dst, f32x4.mul(cvt2(q), vd), 32);
  v128.store(dst, f32x4.mul(cvt3(q), vd), 48);
}

// Value (r, c) of a stored quantized matrix with rowBytes bytes per row.
function deq(b: usize, rowBytes: usize, t: i32, r: i32, c: i32): f32 {
  const blk = b + <usize>r * rowBytes + <usize>(c >> 5) * blockBytes(t);
  const d = halfToF32(load<u16>(blk));
  const j = c & 31;
  let q: i32;
  if (t == 1) q = load<i8>(blk + 2 + j);
  else {
    const byte = <i32>load<u8>(blk + 2 + (j & 15));
    q = (j < 16 ? byte & 15 : byte >> 4) - 8;
  }
  return <f32>q * d;
}

/** Scratch bytes packBQ needs beyond gemm's own (one [NR, KC] float block). */
export const PACKQ_BYTES: i32 = NR * KC * 4;

/**
 * gemm.ts's packB for a quantized b: packs op(b)[pc .. pe, jc .. jc+nc) (dequantized) followed by
 * b2[0 .. ext, jc .. jc+nc) as strips of NR columns, the layout micro() reads. tmp: PACKQ_BYTES of scratch.
 */
export function packBQ(
  dst: usize, b: usize, b2: usize, k: i32, n: i32, transB: i32, pc: i32, pe: i32, ext: i32, jc: i32, nc: i32,
  t: i32, tmp: usize,
): void {
  const kc = pe - pc + ext;
  const bb = blockBytes(t);
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    let d = dst + ((<usize>jr * kc) << 2);
    const col = jc + jr;
    if (!transB) {
      // b [k, n], blocks along n: a 16-column strip starting at a multiple of 16 is one half of one block per row
      const rowBytes = <usize>(n >> 5) * bb;
      if (nr == NR && (col & 15) == 0) {
        const blk0 = b + <usize>(col >> 5) * bb;
        const h = (col >> 4) & 1;
        for (let p = pc; p < pe; p++) {
          deq16(d, blk0 + <usize>p * rowBytes, t, h);
          d += NR << 2;
        }
      } else {
        for (let p = pc; p < pe; p++) {
          for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), j < nr ? deq(b, rowBytes, t, p, col + j) : 0);
          d += NR << 2;
        }
      }
    } else {
      // b [n, k], blocks along k (pc is a multiple of KC, pe − pc of 32): each of the strip's rows dequantized into
      // tmp [NR, KC], then transposed 4×4 in registers into the strip
      const rowBytes = <usize>(k >> 5) * bb;
      const len = pe - pc;
      for (let j = 0; j < NR; j++) {
        const row = tmp + ((<usize>j * KC) << 2);
        if (j >= nr) {
          memory.fill(row, 0, <usize>len << 2);
          continue;
        }
        let src = b + <usize>(col + j) * rowBytes + <usize>(pc >> 5) * bb;
        for (let q = 0; q < len; q += 32) {
          deq16(row + (<usize>q << 2), src, t, 0);
          deq16(row + (<usize>q << 2) + 64, src, t, 1);
          src += bb;
        }
      }
      for (let p = 0; p < len; p += 4) {
        for (let g = 0; g < NR; g += 4) transpose4(d + (<usize>g << 2), tmp + ((<usize>g * KC + p) << 2), KC << 2);
        d += (NR << 2) * 4;
      }
    }
    for (let q = 0; q < ext; q++) {
      const s = b2 + ((<usize>q * n + col) << 2);
      for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), j < nr ? load<f32>(s + (<usize>j << 2)) : 0);
      d += NR << 2;
    }
  }
}

// The two GEMVs below widen each quant int8 → int16 → int32 → f32: the general kernels for any x, used by
// quant-gemv.ts when a row of x leaves the range its faster kernels are exact in (see there).

/**
 * Row i of out over [j0, j1) for b stored [n, k] (blocks along k): out[i, j] = alpha·(Σ_blocks d·(Σ q·x) +
 * Σ_q a2[i, q]·b2[q, j]) (+ out[i, j] when beta = 1). Each row of b is one sequential stream; two rows of b at a
 * time share the loads of x.
 */
export function qgemvRowTWide(
  out: usize, a: usize, b: usize, k: i32, n: i32, t: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, i: i32,
): void {
  const ai = a + ((<usize>i * k) << 2);
  const bb = blockBytes(t);
  const rowBytes = <usize>(k >> 5) * bb;
  const nb = k >> 5;
  for (let j = j0; j < j1; j++) {
    let acc = f32x4.splat(0);
    let blk = b + <usize>j * rowBytes;
    let xp = ai;
    for (let q = 0; q < nb; q++) {
      const vd = f32x4.splat(halfToF32(load<u16>(blk)));
      const lo = quants(blk, t, 0);
      const hi = quants(blk, t, 1);
      let s0 = f32x4.mul(cvt0(lo), v128.load(xp));
      let s1 = f32x4.mul(cvt1(lo), v128.load(xp, 16));
      s0 = fma(cvt2(lo), v128.load(xp, 32), s0);
      s1 = fma(cvt3(lo), v128.load(xp, 48), s1);
      s0 = fma(cvt0(hi), v128.load(xp, 64), s0);
      s1 = fma(cvt1(hi), v128.load(xp, 80), s1);
      s0 = fma(cvt2(hi), v128.load(xp, 96), s0);
      s1 = fma(cvt3(hi), v128.load(xp, 112), s1);
      acc = fma(vd, f32x4.add(s0, s1), acc);
      blk += bb;
      xp += 128;
    }
    let sum =
      f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
    for (let q = 0; q < k2; q++) sum += load<f32>(a2 + ((<usize>i * k2 + q) << 2)) * load<f32>(b2 + ((<usize>q * n + j) << 2));
    const c = out + ((<usize>i * n + j) << 2);
    store<f32>(c, beta ? load<f32>(c) + alpha * sum : alpha * sum);
  }
}

/**
 * Row i of out over [j0, j1) for b stored [k, n] (blocks along n; j0 and j1 multiples of 32): an accumulator
 * strip of up to QCOLS columns takes (x[i, p]·d)·q for every row p of b, then the k2 extension, then
 * out = alpha·acc (+ out when beta = 1). work: 64-byte aligned scratch of QCOLS floats.
 */
export function qgemvRowWide(
  out: usize, a: usize, b: usize, k: i32, n: i32, t: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const acc0 = (work + 63) & ~(<usize>63);
  const ai = a + ((<usize>i * k) << 2);
  const bb = blockBytes(t);
  const rowBytes = <usize>(n >> 5) * bb;
  for (let jc = j0; jc < j1; jc += QCOLS) {
    const nc = min(QCOLS, j1 - jc);
    memory.fill(acc0, 0, <usize>nc << 2);
    const nbk = nc >> 5;
    for (let p = 0; p < k; p++) {
      const xs = load<f32>(ai + (<usize>p << 2));
      let blk = b + <usize>p * rowBytes + <usize>(jc >> 5) * bb;
      let acc = acc0;
      for (let q = 0; q < nbk; q++) {
        const vs = f32x4.splat(xs * halfToF32(load<u16>(blk)));
        const lo = quants(blk, t, 0);
        const hi = quants(blk, t, 1);
        v128.store(acc, fma(vs, cvt0(lo), v128.load(acc)));
        v128.store(acc, fma(vs, cvt1(lo), v128.load(acc, 16)), 16);
        v128.store(acc, fma(vs, cvt2(lo), v128.load(acc, 32)), 32);
        v128.store(acc, fma(vs, cvt3(lo), v128.load(acc, 48)), 48);
        v128.store(acc, fma(vs, cvt0(hi), v128.load(acc, 64)), 64);
        v128.store(acc, fma(vs, cvt1(hi), v128.load(acc, 80)), 80);
        v128.store(acc, fma(vs, cvt2(hi), v128.load(acc, 96)), 96);
        v128.store(acc, fma(vs, cvt3(hi), v128.load(acc, 112)), 112);
        blk += bb;
        acc += 128;
      }
    }
    stripTail(out, acc0, a2, b2, k2, i, n, jc, nc, alpha, beta);
  }
}

/**
 * The end of an accumulator strip acc0[0 .. nc) of row i (nc a multiple of 4): the k2 extension (acc += a2[i, q]·
 * b2[q, jc ..] for each q), then out[i, jc ..] = alpha·acc (+ out when beta = 1). Shared by the [k, n] GEMVs.
 */
@inline export function stripTail(
  out: usize, acc0: usize, a2: usize, b2: usize, k2: i32, i: i32, n: i32, jc: i32, nc: i32, alpha: f32, beta: i32,
): void {
  for (let q = 0; q < k2; q++) {
    const vs = f32x4.splat(load<f32>(a2 + ((<usize>i * k2 + q) << 2)));
    const row = b2 + ((<usize>q * n + jc) << 2);
    for (let j = 0; j < nc; j += 4) {
      const o: usize = <usize>j << 2;
      v128.store(acc0 + o, fma(vs, v128.load(row + o), v128.load(acc0 + o)));
    }
  }
  const va = f32x4.splat(alpha);
  const c = out + ((<usize>i * n + jc) << 2);
  for (let j = 0; j < nc; j += 4) {
    const o: usize = <usize>j << 2;
    const x = f32x4.mul(va, v128.load(acc0 + o));
    v128.store(c + o, beta ? f32x4.add(v128.load(c + o), x) : x);
  }
}
