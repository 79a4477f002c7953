// ggml Q8_0 / Q4_0 blocks → float32 in TypeScript: the reference the WebAssembly quantized products are tested
// against (dequantize, then the float32 kernel) and their fallback where WebAssembly is unavailable.
// A quantized matrix is stored row-major with its blocks along each stored row (cols a multiple of 32):
//   Q8_0 block (34 bytes): f16 d, 32 × int8 q;            value j = q[j]·d
//   Q4_0 block (18 bytes): f16 d, 16 bytes of nibbles;     byte j: value j (low nibble), value j + 16 (high); (nib − 8)·d
// Each value q·d is exact in float32. Preconditions (checked by the ops, not here): bytes holds rows·cols/32 blocks.

/** Block types the kernels read: 1 = Q8_0, 2 = Q4_0 (the code gemm's transB bits carry). */
export type QuantKernelType = 1 | 2;

/** Bytes of one 32-value block. */
export function quantBlockBytes(t: QuantKernelType): number {
  return t === 1 ? 34 : 18;
}

/** float32 value of IEEE half bits (exact). */
export function halfBitsToNumber(h: number): number {
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 0x1f) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1024 + f) * 2 ** (e - 25);
}

/**
 * out[0 .. count·32) = the float32 values of `count` consecutive blocks starting at byte `offset`. Returns out.
 */
export function dequantizeBlocks(
  out: Float32Array,
  bytes: Uint8Array,
  t: QuantKernelType,
  count: number,
  offset = 0,
  outOffset = 0,
): Float32Array {
  const bb = quantBlockBytes(t);
  for (let i = 0; i < count; i++) {
    const at = offset + i * bb;
    const d = halfBitsToNumber(bytes[at]! | (bytes[at + 1]! << 8));
    const o = outOffset + i * 32;
    if (t === 1) {
      for (let j = 0; j < 32; j++) out[o + j] = ((bytes[at + 2 + j]! << 24) >> 24) * d;
    } else {
      for (let j = 0; j < 16; j++) {
        const b = bytes[at + 2 + j]!;
        out[o + j] = ((b & 15) - 8) * d;
        out[o + j + 16] = ((b >> 4) - 8) * d;
      }
    }
  }
  return out;
}
