// Causal self-attention of one sequence's new rows over its KV cache, float32, four lanes at a time (the model
// runtime's decode and prefill; src/kernels/attention.ts holds the float64 TypeScript kernel it is tested against).
// Pointers are byte offsets into the memory; arrays are row-major float32:
//   q   [t, qStride]: row i holds query heads 0 … numHeads−1 (D floats each) from offset 0
//   K,V [past + t, W]: keys and values of every position so far, W = numKvHeads·D (the new rows already appended)
//   out [t, numHeads·D]
//   scores: scratch of past + t floats (16-byte aligned)
// Row i sits at position past + i and sees positions 0 … past + i. Query head h reads kv head ⌊h / group⌋.
// Arithmetic per (row, head), the same whatever t, past or the batch: s_j = scale·(q·k_j) with one f32x4
// accumulator over D in steps of 4, its lanes added as (l0 + l1) + (l2 + l3), then the D mod 4 tail in order;
// e_j = exp(s_j − max s) (gelu.ts's exp4: a few ulps); sum = Σ e_j in increasing j (four lanes, then the rest);
// out = Σ_j (e_j·(1/sum))·v_j in increasing j, per lane.

import { fma } from "./common";
import { exp4 } from "./gelu";

export function attend(
  out: usize, q: usize, qStride: i32, K: usize, V: usize, W: i32, past: i32, t: i32,
  numHeads: i32, numKvHeads: i32, D: i32, scale: f32, scores: usize,
): void {
  const group = numHeads / numKvHeads;
  const D4 = D & ~3;
  const rowBytes = <usize>W << 2;
  for (let i = 0; i < t; i++) {
    const n = past + i + 1; // positions seen
    for (let h = 0; h < numHeads; h++) {
      const qh = q + ((<usize>i * qStride + <usize>h * D) << 2);
      const kv = <usize>((h / group) * D) << 2;
      // scores, four positions per pass over q
      let top: f32 = -Infinity;
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const k0 = K + <usize>j * rowBytes + kv;
        const k1 = k0 + rowBytes;
        const k2 = k1 + rowBytes;
        const k3 = k2 + rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let d = 0; d < D4; d += 4) {
          const o = <usize>d << 2;
          const qv = v128.load(qh + o);
          a0 = fma(qv, v128.load(k0 + o), a0);
          a1 = fma(qv, v128.load(k1 + o), a1);
          a2 = fma(qv, v128.load(k2 + o), a2);
          a3 = fma(qv, v128.load(k3 + o), a3);
        }
        const s0 = dotTail(a0, qh, k0, D4, D) * scale;
        const s1 = dotTail(a1, qh, k1, D4, D) * scale;
        const s2 = dotTail(a2, qh, k2, D4, D) * scale;
        const s3 = dotTail(a3, qh, k3, D4, D) * scale;
        const sp = scores + (<usize>j << 2);
        store<f32>(sp, s0);
        store<f32>(sp, s1, 4);
        store<f32>(sp, s2, 8);
        store<f32>(sp, s3, 12);
        top = max(top, max(max(s0, s1), max(s2, s3)));
      }
      for (; j < n; j++) {
        const k0 = K + <usize>j * rowBytes + kv;
        let a0 = f32x4.splat(0);
        for (let d = 0; d < D4; d += 4) {
          const o = <usize>d << 2;
          a0 = fma(v128.load(qh + o), v128.load(k0 + o), a0);
        }
        const s0 = dotTail(a0, qh, k0, D4, D) * scale;
        store<f32>(scores + (<usize>j << 2), s0);
        top = max(top, s0);
      }
      // e_j = exp(s_j − top) in place, and their sum in increasing j
      const vmax = f32x4.splat(top);
      let sum: f32 = 0;
      j = 0;
      for (; j + 4 <= n; j += 4) {
        const sp = scores + (<usize>j << 2);
        const e = exp4(f32x4.sub(v128.load(sp), vmax));
        v128.store(sp, e);
        sum += f32x4.extract_lane(e, 0);
        sum += f32x4.extract_lane(e, 1);
        sum += f32x4.extract_lane(e, 2);
        sum += f32x4.extract_lane(e, 3);
      }
      for (; j < n; j++) {
        const sp = scores + (<usize>j << 2);
        const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(sp) - top)), 0);
        store<f32>(sp, e);
        sum += e;
      }
      const inv: f32 = 1 / sum;
      const oh = out + ((<usize>i * numHeads * D + <usize>h * D) << 2);
      weighted(oh, V, rowBytes, kv, scores, n, inv, D);
    }
  }
}

// (a0's lanes, then q·k over [D4, D) in order) as one float
@inline function dotTail(a: v128, qh: usize, k: usize, D4: i32, D: i32): f32 {
  let s = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (let d = D4; d < D; d++) s += load<f32>(qh + (<usize>d << 2)) * load<f32>(k + (<usize>d << 2));
  return s;
}

// oh[0 .. D) = Σ_j (e_j·inv)·V[j, kv .. kv + D), 32 floats (eight f32x4 accumulators) per pass over the positions,
// then 4 at a time, then one at a time
function weighted(oh: usize, V: usize, rowBytes: usize, kv: usize, scores: usize, n: i32, inv: f32, D: i32): void {
  let d = 0;
  for (; d + 32 <= D; d += 32) {
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
    let v = V + kv + (<usize>d << 2);
    for (let j = 0; j < n; j++) {
      const p = f32x4.splat(load<f32>(scores + (<usize>j << 2)) * inv);
      c0 = fma(p, v128.load(v), c0);
      c1 = fma(p, v128.load(v, 16), c1);
      c2 = fma(p, v128.load(v, 32), c2);
      c3 = fma(p, v128.load(v, 48), c3);
      c4 = fma(p, v128.load(v, 64), c4);
      c5 = fma(p, v128.load(v, 80), c5);
      c6 = fma(p, v128.load(v, 96), c6);
      c7 = fma(p, v128.load(v, 112), c7);
      v += rowBytes;
    }
    const o = oh + (<usize>d << 2);
    v128.store(o, c0);
    v128.store(o, c1, 16);
    v128.store(o, c2, 32);
    v128.store(o, c3, 48);
    v128.store(o, c4, 64);
    v128.store(o, c5, 80);
    v128.store(o, c6, 96);
    v128.store(o, c7, 112);
  }
  for (; d + 4 <= D; d += 4) {
    let c0 = f32x4.splat(0);
    let v = V + kv + (<usize>d << 2);
    for (let j = 0; j < n; j++) {
      c0 = fma(f32x4.splat(load<f32>(scores + (<usize>j << 2)) * inv), v128.load(v), c0);
      v += rowBytes;
    }
    v128.store(oh + (<usize>d << 2), c0);
  }
  for (; d < D; d++) {
    let c: f32 = 0;
    let v = V + kv + (<usize>d << 2);
    for (let j = 0; j < n; j++) {
      c += load<f32>(scores + (<usize>j << 2)) * inv * load<f32>(v);
      v += rowBytes;
    }
    store<f32>(oh + (<usize>d << 2), c);
  }
}
