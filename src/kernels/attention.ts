// Causal self-attention of one sequence's t new rows over its KV cache: the TypeScript kernel (float64 arithmetic,
// rounded once into out), used where the WebAssembly one (wasm/assembly/attention.ts, float32) cannot run and as
// its reference in tests. Flat row-major arrays, output first, no checks:
//   out [t, numHeads·D]; q [t, qStride], row i's query heads 0 … numHeads−1 (D floats each) from offset 0;
//   K, V [past + t, W] with W = numKvHeads·D, the new rows already appended.
// Row i sits at position past + i and sees positions 0 … past + i; query head h reads kv head ⌊h / group⌋,
// group = numHeads / numKvHeads. The arithmetic of a row depends only on its own query and positions, never on t.

export function attentionScalar(
  out: Float32Array,
  q: Float32Array,
  qStride: number,
  K: Float32Array,
  V: Float32Array,
  W: number,
  past: number,
  t: number,
  numHeads: number,
  numKvHeads: number,
  D: number,
  scale: number,
): void {
  const group = numHeads / numKvHeads;
  const scores = new Float64Array(past + t);
  const acc = new Float64Array(D);
  const qh = new Float64Array(D); // the query head, read once
  const outStride = numHeads * D;
  const D4 = D - (D % 4);
  for (let i = 0; i < t; i++) {
    const last = past + i; // this row's position: it sees 0 … last
    for (let h = 0; h < numHeads; h++) {
      const kvOff = Math.floor(h / group) * D;
      const qOff = i * qStride + h * D;
      for (let d = 0; d < D; d++) qh[d] = q[qOff + d]!;
      let max = Number.NEGATIVE_INFINITY;
      // two positions per pass share the loads of the query; each dot product is four partial sums added in a
      // fixed order, the same for every position and every batch
      let j = 0;
      for (; j + 1 <= last; j += 2) {
        const k0 = j * W + kvOff;
        const k1 = k0 + W;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let b0 = 0;
        let b1 = 0;
        let b2 = 0;
        let b3 = 0;
        let d = 0;
        for (; d < D4; d += 4) {
          const q0 = qh[d]!;
          const q1 = qh[d + 1]!;
          const q2 = qh[d + 2]!;
          const q3 = qh[d + 3]!;
          a0 += q0 * K[k0 + d]!;
          a1 += q1 * K[k0 + d + 1]!;
          a2 += q2 * K[k0 + d + 2]!;
          a3 += q3 * K[k0 + d + 3]!;
          b0 += q0 * K[k1 + d]!;
          b1 += q1 * K[k1 + d + 1]!;
          b2 += q2 * K[k1 + d + 2]!;
          b3 += q3 * K[k1 + d + 3]!;
        }
        for (; d < D; d++) {
          a0 += qh[d]! * K[k0 + d]!;
          b0 += qh[d]! * K[k1 + d]!;
        }
        const s0 = (a0 + a1 + (a2 + a3)) * scale;
        const s1 = (b0 + b1 + (b2 + b3)) * scale;
        scores[j] = s0;
        scores[j + 1] = s1;
        if (s0 > max) max = s0;
        if (s1 > max) max = s1;
      }
      for (; j <= last; j++) {
        const k0 = j * W + kvOff;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let d = 0;
        for (; d < D4; d += 4) {
          a0 += qh[d]! * K[k0 + d]!;
          a1 += qh[d + 1]! * K[k0 + d + 1]!;
          a2 += qh[d + 2]! * K[k0 + d + 2]!;
          a3 += qh[d + 3]! * K[k0 + d + 3]!;
        }
        for (; d < D; d++) a0 += qh[d]! * K[k0 + d]!;
        const s0 = (a0 + a1 + (a2 + a3)) * scale;
        scores[j] = s0;
        if (s0 > max) max = s0;
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        const e = Math.exp(scores[j]! - max);
        scores[j] = e;
        sum += e;
      }
      acc.fill(0);
      const inv = 1 / sum;
      // four positions per pass over acc (a quarter of its loads and stores), then the rest one by one
      j = 0;
      for (; j + 4 <= last + 1; j += 4) {
        const p0 = scores[j]! * inv;
        const p1 = scores[j + 1]! * inv;
        const p2 = scores[j + 2]! * inv;
        const p3 = scores[j + 3]! * inv;
        const v0 = j * W + kvOff;
        const v1 = v0 + W;
        const v2 = v1 + W;
        const v3 = v2 + W;
        for (let d = 0; d < D; d++)
          acc[d] = acc[d]! + (p0 * V[v0 + d]! + p1 * V[v1 + d]! + (p2 * V[v2 + d]! + p3 * V[v3 + d]!));
      }
      for (; j <= last; j++) {
        const p = scores[j]! * inv;
        const vOff = j * W + kvOff;
        for (let d = 0; d < D; d++) acc[d] = acc[d]! + p * V[vOff + d]!;
      }
      const o = i * outStride + h * D;
      for (let d = 0; d < D; d++) out[o + d] = acc[d]!;
    }
  }
}
