// IEEE binary16 (F16): 1 sign, 5 exponent (bias 15), 10 mantissa bits, stored as a uint16 bit pattern.
// Decoding to float32 is exact (subnormals, ±0, ±Inf, NaN payloads); encoding rounds to nearest, ties to even,
// overflows to ±Inf. NaN stays NaN: 0x7e00 from a number, sign and top payload bits kept from float32 bits.

import { encodeMinifloat } from "./minifloat.js";

/** float32 bit pattern of an f16 bit pattern, by integer arithmetic (exact, NaN payload kept). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: value = mant · 2^-24; shift until the implicit bit (0x400) is set.
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let table: Uint32Array | undefined;
/** 65,536-entry f16 → f32 bit table, built on first use (256 KiB). */
function f16Table(): Uint32Array {
  if (table === undefined) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
    table = t;
  }
  return table;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Decodes one f16 bit pattern to its exact value. */
export function decodeF16(h: number): number {
  scratchU32[0] = f16BitsToF32Bits(h & 0xffff);
  return scratchF32[0]!;
}

/** Encodes a number into f16 bits, rounding to nearest even (overflow → ±Inf, NaN → 0x7e00). */
export function encodeF16(x: number): number {
  return encodeMinifloat(x, 5, 10);
}

/** Decodes f16 bit patterns into float32, bit-exactly. `out` (same length) is allocated when omitted. */
export function decodeF16Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = f16Table();
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = t[src[i]!]!;
  return out;
}

/**
 * f16 bits of a float32 bit pattern, rounding the dropped mantissa bits to nearest even (integer arithmetic).
 * NaN keeps its sign and top payload bits, with the quiet bit set so it cannot become Inf.
 */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant === 0 ? 0 : 0x200 | (mant >>> 13));
  const e = exp - 112; // f16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal (or zero): value = m · 2^-24 with m = (1.mant) · 2^(e + 9), rounded to nearest even.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24 dropped bits
    const half = 1 << (shift - 1);
    const rest = full & ((1 << shift) - 1);
    let m = full >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  // Normal: keep 10 mantissa bits; a carry moves into the exponent, and from 30 into Inf (0x7c00).
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/**
 * Encodes numbers into f16 bit patterns with round-to-nearest-even. A Float32Array takes an integer fast path
 * on its bits; other inputs are rounded from their exact value. `out` is allocated when omitted.
 */
export function encodeF16Array(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = encodeMinifloat(src[i]!, 5, 10);
  return out;
}
