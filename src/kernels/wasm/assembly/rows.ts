// Elementwise epilogues of a layer's output, in place, four float32 lanes at a time; each element gets exactly
// the operations of the TypeScript loops they replace (select.ts addRowVector, addLowRank), so either path gives
// the same bits.

/** h[i, j] += v[j] for the rows × d matrix h (row-major) and v [d]: one float32 add per element. */
export function addRowVector(h: usize, rows: i32, d: i32, v: usize): void {
  for (let i = 0; i < rows; i++) {
    const row = h + ((<usize>i * d) << 2);
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      const p = row + (<usize>j << 2);
      v128.store(p, f32x4.add(v128.load(p), v128.load(v + (<usize>j << 2))));
    }
    for (; j < d; j++) {
      const p = row + (<usize>j << 2);
      store<f32>(p, load<f32>(p) + load<f32>(v + (<usize>j << 2)));
    }
  }
}

/**
 * out[i] += s·low[i] over [0, n) as JavaScript computes `d = s * low[i]; if (d !== 0) out[i] = out[i] + d` on
 * float32 arrays: the product and the sum in float64, rounded to float32 once when stored; d = 0 (either sign)
 * leaves out[i] as it was (−0 stays −0).
 */
export function addScaled(out: usize, low: usize, n: i32, s: f64): void {
  const vs = f64x2.splat(s);
  const zero = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const po = out + (<usize>i << 2);
    const o = v128.load(po);
    const l = v128.load(low + (<usize>i << 2));
    const d0 = f64x2.mul(vs, f64x2.promote_low_f32x4(l));
    const d1 = f64x2.mul(vs, f64x2.promote_low_f32x4(v128.shuffle<f32>(l, l, 2, 3, 2, 3)));
    const r0 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.promote_low_f32x4(o), d0));
    const r1 = f32x4.demote_f64x2_zero(f64x2.add(f64x2.promote_low_f32x4(v128.shuffle<f32>(o, o, 2, 3, 2, 3)), d1));
    const r = v128.shuffle<f32>(r0, r1, 0, 1, 4, 5);
    // lanes where d ≠ 0: the low 32 bits of each 64-bit compare mask, in lane order
    const m = v128.shuffle<i32>(f64x2.ne(d0, zero), f64x2.ne(d1, zero), 0, 2, 4, 6);
    v128.store(po, v128.bitselect(r, o, m));
  }
  for (; i < n; i++) {
    const d = s * <f64>load<f32>(low + (<usize>i << 2));
    const p = out + (<usize>i << 2);
    if (d != 0) store<f32>(p, <f32>(<f64>load<f32>(p) + d));
  }
}
