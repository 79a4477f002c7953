// Elementwise pieces of the forward, row-major over [n, d] rows, computed in float64 and rounded once, as
// transformers computes them in float32: RMSNorm (llama family), LayerNorm (gpt2), rotary positions with
// rotate_half (llama family), SiLU-gated MLP and the tanh GELU ("gelu_new").

import type { Norm } from "./weights.js";

/** out[i] = x[i] / √(mean(x[i]²) + eps) ⊙ weight. x, out: [n, d] (may alias). */
export function rmsNorm(
  out: Float32Array,
  x: Float32Array,
  n: number,
  d: number,
  norm: Norm,
  eps: number,
): Float32Array {
  const w = norm.weight;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[o + j]! * x[o + j]!;
    // transformers rounds the normalised value to float32 before multiplying by the weight
    const inv = 1 / Math.sqrt(Math.fround(ss / d) + eps);
    for (let j = 0; j < d; j++) out[o + j] = w[j]! * Math.fround(x[o + j]! * inv);
  }
  return out;
}

/** out[i] = (x[i] − mean) / √(var + eps) ⊙ weight + bias (biased variance). x, out: [n, d] (may alias). */
export function layerNorm(
  out: Float32Array,
  x: Float32Array,
  n: number,
  d: number,
  norm: Norm,
  eps: number,
): Float32Array {
  const w = norm.weight;
  const b = norm.bias;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[o + j]!;
    mean /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[o + j]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let j = 0; j < d; j++) out[o + j] = (x[o + j]! - mean) * inv * w[j]! + (b ? b[j]! : 0);
  }
  return out;
}

/**
 * Rotary tables for positions: cos/sin [positions.length, headDim/2], angle = (pos / factor)·θ^(−2i/headDim),
 * with the inverse frequencies and angles rounded to float32 as transformers forms them.
 */
export function ropeTables(positions: readonly number[], headDim: number, theta: number, factor: number) {
  const half = headDim / 2;
  const cos = new Float64Array(positions.length * half);
  const sin = new Float64Array(positions.length * half);
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
  for (let p = 0; p < positions.length; p++) {
    const pos = Math.fround(positions[p]! / factor);
    for (let i = 0; i < half; i++) {
      const a = Math.fround(pos * inv[i]!);
      cos[p * half + i] = Math.fround(Math.cos(a));
      sin[p * half + i] = Math.fround(Math.sin(a));
    }
  }
  return { cos, sin, half };
}

/**
 * Rotates every head of row p in place (rotate_half: pairs (i, i + headDim/2)). x: [n, heads·headDim], row p uses
 * the tables' row p.
 */
export function applyRope(
  x: Float32Array,
  n: number,
  heads: number,
  headDim: number,
  t: { cos: Float64Array; sin: Float64Array; half: number },
): void {
  const { cos, sin, half } = t;
  const stride = heads * headDim;
  for (let p = 0; p < n; p++) {
    for (let h = 0; h < heads; h++) {
      const o = p * stride + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[p * half + i]!;
        const s = sin[p * half + i]!;
        const x1 = x[o + i]!;
        const x2 = x[o + i + half]!;
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/** gate ← silu(gate) ⊙ up, elementwise (SwiGLU). */
export function siluMul(gate: Float32Array, up: Float32Array): Float32Array {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i]!;
    gate[i] = Math.fround(g / (1 + Math.exp(-g))) * up[i]!;
  }
  return gate;
}

/** GPT-2's "gelu_new" in place (kernels/select.ts: WebAssembly where the kernels run there). */
export { geluNew } from "../kernels/select.js";
