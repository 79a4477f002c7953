// IEEE binary16 (F16): 1 sign, 5 exponent (bias 15), 10 mantissa bits, stored as a uint16 bit pattern.
// Decoding to float32 is exact (subnormals, ±0, ±Inf, NaN payloads); encoding rounds to nearest, ties to even,
// overflows to ±Inf, and maps NaN to the quiet NaN 0x7e00.

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

/** Encodes numbers into f16 bit patterns with round-to-nearest-even. `out` is allocated when omitted. */
export function encodeF16Array(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = encodeMinifloat(src[i]!, 5, 10);
  return out;
}
