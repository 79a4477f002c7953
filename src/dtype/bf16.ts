// bfloat16 (BF16): the top 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits), stored as uint16 bits.
// Decoding is exact: f32 bits = bf16 bits << 16 (NaN payloads kept). Encoding rounds to nearest, ties to even, on
// the dropped bits; overflow goes to ±Inf and NaN stays NaN (the quiet bit is set so rounding never makes it Inf).

import { encodeMinifloat } from "./minifloat.js";

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Decodes one bf16 bit pattern to its exact value. */
export function decodeBf16(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

/** bf16 bits of a float32 bit pattern, rounding the 16 dropped bits to nearest even. */
export function f32BitsToBf16Bits(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Encodes a number into bf16 bits with round-to-nearest-even. A float64 is rounded once, directly (no detour
 * through float32, which could round twice). NaN → 0x7fc0.
 */
export function encodeBf16(x: number): number {
  return encodeMinifloat(x, 8, 7);
}

/** Decodes bf16 bit patterns into float32, bit-exactly. `out` (same length) is allocated when omitted. */
export function decodeBf16Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/**
 * Encodes numbers into bf16 bits with round-to-nearest-even. A Float32Array takes the bit-level fast path (NaN
 * payloads keep their top bits); other inputs are rounded from their exact value. `out` is allocated when omitted.
 */
export function encodeBf16Array(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = encodeMinifloat(src[i]!, 8, 7);
  return out;
}
