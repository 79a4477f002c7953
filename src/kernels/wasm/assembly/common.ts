// Shared by the AssemblyScript kernels (gemm.ts, gemv.ts).

/** Depth of a k block: every path sums each output element block by block, from +0, in this size. */
export const KC = 256;

/** c + a·b per lane: relaxed_madd in the relaxed build (fused where the engine fuses), else one mul and one add. */
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
