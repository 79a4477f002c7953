// Causal self-attention of one sequence over its KV cache, grouped-query aware. The new tokens' rows of the batch
// are [rowStart, rowStart + t); q: [N, numHeads·headDim], k and v: [N, numKvHeads·headDim] (the whole batch's rows;
// row stride given). Query head h reads key/value head ⌊h / (numHeads / numKvHeads)⌋. The arithmetic is the
// kernels' (kernels/select.ts attention): float32 WebAssembly over a cache in kernel memory, else float64
// TypeScript; either way a row's result depends only on its own query and its sequence's cache.

import { attention } from "../kernels/select.js";
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
  const width = numHeads * D;
  attention(
    out.subarray(rowStart * width, (rowStart + t) * width),
    q.subarray(rowStart * qStride),
    qStride,
    K,
    V,
    W,
    past,
    t,
    numHeads,
    numKvHeads,
    D,
    scale,
  );
}
