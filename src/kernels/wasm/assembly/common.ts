// Shared by the AssemblyScript kernels (gemm.ts, gemv.ts, quant.ts, panel.ts).

/** Depth of a k block: every path sums each output element block by block, from +0, in this size. */
export const KC = 256;
/** Rows of the register tile (gemm.ts's micro, panel.ts's slice). */
export const MR = 2;
/** Columns of a packed B strip, of the register tile and of a pre-packed panel (four f32x4). */
export const NR = 16;

/** c + a·b per lane: relaxed_madd in the relaxed build (fused where the engine fuses), else one mul and one add. */
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * v itself, made opaque to the compilers for a loop's vector constants; n must be >= 0 (a dimension). Node 24's V8
 * rebuilds a v128 constant at every use inside a loop (a 64-bit immediate, vmovq, vpinsrq or vpunpcklqdq: 3–5
 * instructions each), which doubled the quantized decode loops' time there; a value the engine cannot fold is
 * computed once before the loop and kept in a register, or reloaded from the stack in one instruction.
 */
@inline export function hoist(v: v128, n: i32): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return v;
  return v128.or(v, i32x4.splat(n >> 31));
}

// Stores the 4×4 block q[c·ld + t] (row c, p-offset t) transposed: dst[t·NR + c] = q[c·ld + t], i.e. four p-rows
// of a packed B strip, four columns each.
@inline export function transpose4(dst: usize, q: usize, ld: usize): void {
  const v0 = v128.load(q);
  const v1 = v128.load(q + ld);
  const v2 = v128.load(q + 2 * ld);
  const v3 = v128.load(q + 3 * ld);
  const l01 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5);
  const l23 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const h01 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
  const h23 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(l01, l23, 0, 1, 4, 5));
  v128.store(dst + (NR << 2), v128.shuffle<f32>(l01, l23, 2, 3, 6, 7));
  v128.store(dst + (NR << 3), v128.shuffle<f32>(h01, h23, 0, 1, 4, 5));
  v128.store(dst + 3 * (NR << 2), v128.shuffle<f32>(h01, h23, 2, 3, 6, 7));
}
