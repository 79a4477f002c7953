// Causal self-attention of one sequence over its KV cache, grouped-query aware. The new tokens' rows of the batch
// are [rowStart, rowStart + t); q: [N, numHeads·headDim], k and v: [N, numKvHeads·headDim] (the whole batch's rows;
// row stride given). Query head h reads key/value head ⌊h / (numHeads / numKvHeads)⌋. Scores, softmax and the
// weighted sum are computed in float64 and rounded once into out [N, numHeads·headDim].

import type { KvCache } from "./kv-cache.js";

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Multiplies q·k (1/√headDim). */
  scale: number;
}

/**
 * Appends the t new keys/values to layer l of the cache at positions cache.length … cache.length + t − 1 (the caller
 * advances cache.length after the last layer), then writes each new token's attention over positions ≤ its own.
 */
export function attendSequence(
  s: AttentionShape,
  cache: KvCache,
  l: number,
  q: Float32Array,
  qStride: number,
  k: Float32Array,
  v: Float32Array,
  kvStride: number,
  rowStart: number,
  t: number,
  out: Float32Array,
): void {
  const { numHeads, numKvHeads, headDim: D, scale } = s;
  const W = numKvHeads * D;
  const past = cache.length;
  const K = cache.keysOf(l);
  const V = cache.valuesOf(l);
  for (let i = 0; i < t; i++) {
    const src = (rowStart + i) * kvStride;
    K.set(k.subarray(src, src + W), (past + i) * W);
    V.set(v.subarray(src, src + W), (past + i) * W);
  }
  const group = numHeads / numKvHeads;
  const scores = new Float64Array(past + t);
  const acc = new Float64Array(D);
  const qh = new Float64Array(D); // the query head, read once
  const outStride = numHeads * D;
  const D4 = D - (D % 4);
  for (let i = 0; i < t; i++) {
    const last = past + i; // this token's position: it sees 0 … last
    const qRow = (rowStart + i) * qStride;
    for (let h = 0; h < numHeads; h++) {
      const kvOff = Math.floor(h / group) * D;
      const qOff = qRow + h * D;
      for (let d = 0; d < D; d++) qh[d] = q[qOff + d]!;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j <= last; j++) {
        const kOff = j * W + kvOff;
        // four partial sums, added in a fixed order: the same for every position and every batch
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let d = 0;
        for (; d < D4; d += 4) {
          d0 += qh[d]! * K[kOff + d]!;
          d1 += qh[d + 1]! * K[kOff + d + 1]!;
          d2 += qh[d + 2]! * K[kOff + d + 2]!;
          d3 += qh[d + 3]! * K[kOff + d + 3]!;
        }
        for (; d < D; d++) d0 += qh[d]! * K[kOff + d]!;
        const sc = (d0 + d1 + (d2 + d3)) * scale;
        scores[j] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        const e = Math.exp(scores[j]! - max);
        scores[j] = e;
        sum += e;
      }
      acc.fill(0);
      const inv = 1 / sum;
      for (let j = 0; j <= last; j++) {
        const p = scores[j]! * inv;
        const vOff = j * W + kvOff;
        for (let d = 0; d < D; d++) acc[d] = acc[d]! + p * V[vOff + d]!;
      }
      const o = (rowStart + i) * outStride + h * D;
      for (let d = 0; d < D; d++) out[o + d] = acc[d]!;
    }
  }
}
