// Attention over a KV cache: the float32 WebAssembly kernel (assembly/attention.ts, via select.ts attention with a
// cache in kernel memory) against float64, and the TypeScript kernel (attentionScalar, float64) where the cache is
// a plain array. The bound follows the float32 evaluation per (row, head), u = 2^−24:
//   each score s_j = scale·(q·k_j) is off by at most E_j = (D + 2)·u·scale·Σ_d |q_d·k_jd|, E = max_j E_j, so
//   s_j − max is off by ≤ 2E plus its own rounding |s_j − max|·u; exp adds a few units (exp4: ≤ 8 u relative);
//   the sum of n terms adds n·u, the scaling by 1/sum 2 u, and the weighted sum of n values n·u more; so
//   |out_d − ref_d| ≤ Σ_j p_j·|v_jd| · (4E + 2·max_j |s_j − max|·u + (2n + 24)·u).
import { describe, expect, it } from "vitest";
import { fill } from "../../test/helpers/random.js";
import { attentionScalar } from "./attention.js";
import { attention, kernelFloat32Array, kernelInfo, releaseKernelArray } from "./select.js";

const U = 2 ** -24;

interface Case {
  numHeads: number;
  numKvHeads: number;
  D: number;
  past: number;
  t: number;
  seed: number;
}

// q [t, qStride] with qStride > numHeads·D (as GPT-2's fused qkv rows), K and V [past + t, W] in kernel memory
function operands(c: Case, resident = true) {
  const W = c.numKvHeads * c.D;
  const width = c.numHeads * c.D;
  const qStride = width + 3;
  const q = fill(new Float32Array(c.t * qStride), c.seed);
  const rows = c.past + c.t;
  const K = resident ? kernelFloat32Array(rows * W) : new Float32Array(rows * W);
  const V = resident ? kernelFloat32Array(rows * W) : new Float32Array(rows * W);
  K.set(fill(new Float32Array(rows * W), c.seed + 1).map((x) => Math.fround(2 * x)));
  V.set(fill(new Float32Array(rows * W), c.seed + 2));
  return { q, qStride, K, V, W, width, scale: 1 / Math.sqrt(c.D) };
}

// float64 attention with the bound above, per output element
function reference(c: Case, o: ReturnType<typeof operands>) {
  const { q, qStride, K, V, W, width, scale } = o;
  const group = c.numHeads / c.numKvHeads;
  const ref = new Float64Array(c.t * width);
  const bound = new Float64Array(c.t * width);
  for (let i = 0; i < c.t; i++) {
    const n = c.past + i + 1;
    for (let h = 0; h < c.numHeads; h++) {
      const kv = Math.floor(h / group) * c.D;
      const s = new Float64Array(n);
      let E = 0;
      for (let j = 0; j < n; j++) {
        let dot = 0;
        let mag = 0;
        for (let d = 0; d < c.D; d++) {
          const p = q[i * qStride + h * c.D + d]! * K[j * W + kv + d]!;
          dot += p;
          mag += Math.abs(p);
        }
        s[j] = dot * scale;
        E = Math.max(E, (c.D + 2) * U * scale * mag);
      }
      const max = Math.max(...s);
      const spread = Math.max(...s.map((x) => max - x));
      const e = s.map((x) => Math.exp(x - max));
      const sum = e.reduce((a, b) => a + b, 0);
      const rel = 4 * E + 2 * spread * U + (2 * n + 24) * U;
      for (let d = 0; d < c.D; d++) {
        let v = 0;
        let a = 0;
        for (let j = 0; j < n; j++) {
          v += (e[j]! / sum) * V[j * W + kv + d]!;
          a += (e[j]! / sum) * Math.abs(V[j * W + kv + d]!);
        }
        ref[i * width + h * c.D + d] = v;
        bound[i * width + h * c.D + d] = a * rel + 1e-30;
      }
    }
  }
  return { ref, bound };
}

const cases: Case[] = [];
for (const [numHeads, numKvHeads] of <[number, number][]>[
  [1, 1],
  [2, 2],
  [4, 2],
  [3, 1],
])
  for (const D of [1, 3, 4, 5, 8, 33, 64])
    for (const [past, t] of <[number, number][]>[
      [0, 1],
      [0, 3],
      [1, 1],
      [5, 2],
      [17, 7],
    ])
      cases.push({ numHeads, numKvHeads, D, past, t, seed: cases.length + 1 });

describe("attention", () => {
  it("runs in WebAssembly here over a cache in kernel memory (float32: it rounds unlike the float64 kernel)", () => {
    expect(["wasm-simd", "wasm-relaxed-simd"]).toContain(kernelInfo().backend);
    const o = operands({ numHeads: 2, numKvHeads: 1, D: 8, past: 3, t: 2, seed: 9 });
    const wasm = new Float32Array(2 * o.width);
    attention(wasm, o.q, o.qStride, o.K, o.V, o.W, 3, 2, 2, 1, 8, o.scale);
    const ts = new Float32Array(2 * o.width);
    attentionScalar(ts, o.q, o.qStride, o.K, o.V, o.W, 3, 2, 2, 1, 8, o.scale);
    // float32 and float64 arithmetic round differently somewhere over 32 outputs of random data
    expect(wasm).not.toEqual(ts);
  });

  it("is within the derived bound of float64: heads 1–4, grouped kv, D 1 … 64 (odd, under and over 32), past 0 … 17, t 1 … 7", () => {
    for (const c of cases) {
      const o = operands(c);
      const { ref, bound } = reference(c, o);
      for (const [name, run] of [
        ["wasm", attention],
        ["typescript", attentionScalar],
      ] as const) {
        const out = new Float32Array(c.t * o.width);
        run(out, o.q, o.qStride, o.K, o.V, o.W, c.past, c.t, c.numHeads, c.numKvHeads, c.D, o.scale);
        for (let x = 0; x < out.length; x++)
          expect(Math.abs(out[x]! - ref[x]!), `${name} ${JSON.stringify(c)} element ${x}`).toBeLessThanOrEqual(
            bound[x]!,
          );
      }
      releaseKernelArray(o.K);
      releaseKernelArray(o.V);
    }
  });

  it("gives a row the same bits whatever t: t rows at once equal one row at a time (decode equals prefill)", () => {
    for (const resident of [true, false]) {
      const c = { numHeads: 4, numKvHeads: 2, D: 37, past: 6, t: 9, seed: 77 };
      const o = operands(c, resident);
      const all = new Float32Array(c.t * o.width);
      attention(all, o.q, o.qStride, o.K, o.V, o.W, c.past, c.t, 4, 2, 37, o.scale);
      for (let i = 0; i < c.t; i++) {
        const one = new Float32Array(o.width);
        attention(one, o.q.subarray(i * o.qStride), o.qStride, o.K, o.V, o.W, c.past + i, 1, 4, 2, 37, o.scale);
        expect(one).toEqual(all.slice(i * o.width, (i + 1) * o.width));
      }
    }
  });

  it("uses the TypeScript kernel (the same bits as attentionScalar) when the cache is a plain array", () => {
    const c = { numHeads: 2, numKvHeads: 2, D: 16, past: 4, t: 3, seed: 5 };
    const o = operands(c, false);
    const a = new Float32Array(c.t * o.width);
    const b = new Float32Array(c.t * o.width);
    attention(a, o.q, o.qStride, o.K, o.V, o.W, c.past, c.t, 2, 2, 16, o.scale);
    attentionScalar(b, o.q, o.qStride, o.K, o.V, o.W, c.past, c.t, 2, 2, 16, o.scale);
    expect(a).toEqual(b);
  });

  it("fails the bound when a position is skipped (the test can fail)", () => {
    const c = { numHeads: 2, numKvHeads: 1, D: 8, past: 5, t: 1, seed: 3 };
    const o = operands(c);
    const { ref, bound } = reference(c, o);
    const out = new Float32Array(o.width);
    attention(out, o.q, o.qStride, o.K, o.V, o.W, c.past - 1, 1, 2, 1, 8, o.scale); // sees one position fewer
    expect(out.some((x, i) => Math.abs(x - ref[i]!) > bound[i]!)).toBe(true);
  });
});
