// A float64 model of llama.cpp's decode arithmetic over Q8_0 / Q4_0 weights (ggml_vec_dot_q8_0_q8_0 and
// _q4_0_q8_0 after quantize_row_q8_0_ref on each row of x), for the opt-in decodeActivations: "q8_0" kernels.
// Shared by test/quant/decode-q8.test.ts and the relaxed-SIMD child (ggml-dot-child.mjs). The library's own
// quantizeMatrix (bit-exact to ggml's reference quantizer) and decodeF16 are passed in, from src/ or dist/.

const U = 2 ** -24;

// the blocks of stored Q8_0/Q4_0 bytes as (d, 32 integer quants); Q4_0 quants are nibble − 8
function blocks(bytes, type, count, decodeF16) {
  const bb = type === "q8_0" ? 34 : 18;
  const out = [];
  for (let b = 0; b < count; b++) {
    const o = b * bb;
    const d = decodeF16(bytes[o] | (bytes[o + 1] << 8));
    const q = [];
    if (type === "q8_0") for (let j = 0; j < 32; j++) q.push((bytes[o + 2 + j] << 24) >> 24);
    else {
      for (let j = 0; j < 16; j++) q.push((bytes[o + 2 + j] & 15) - 8);
      for (let j = 0; j < 16; j++) q.push((bytes[o + 2 + j] >> 4) - 8);
    }
    out.push({ d, q });
  }
  return out;
}

/**
 * Rows [0, n) of x [n, dIn] times W stored [dOut, dIn] (blocks along dIn) in llama.cpp's arithmetic, plus
 * s·(x·down)·up when lr is given, in float64: h, and the float32 rounding bound of the kernel's float part
 * 2u·(dIn/32 + r + 8)·(Σ|q_w·q_x·d_w·d_x| + the low-rank term's) + u·|h|.
 */
export function ggmlDotModel(x, w, n, dIn, dOut, lr, { quantizeMatrix, decodeF16 }) {
  const nb = dIn / 32;
  const wb = blocks(w.bytes, w.type, dOut * nb, decodeF16);
  const h = new Float64Array(n * dOut);
  const bound = new Float64Array(n * dOut);
  const r = lr ? lr.r : 0;
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * dIn, (i + 1) * dIn);
    const xb = blocks(quantizeMatrix({ data: row, rows: 1, cols: dIn }, "q8_0").bytes, "q8_0", nb, decodeF16);
    const t = new Float64Array(r);
    const ta = new Float64Array(r);
    for (let p = 0; p < dIn; p++)
      for (let k = 0; k < r; k++) {
        t[k] += row[p] * lr.down[p * r + k];
        ta[k] += Math.abs(row[p] * lr.down[p * r + k]);
      }
    for (let j = 0; j < dOut; j++) {
      let s = 0;
      let g = 0;
      for (let b = 0; b < nb; b++) {
        const { d, q } = wb[j * nb + b];
        let sumi = 0;
        let gi = 0;
        for (let e = 0; e < 32; e++) {
          sumi += q[e] * xb[b].q[e];
          gi += Math.abs(q[e] * xb[b].q[e]);
        }
        s += sumi * d * xb[b].d;
        g += gi * Math.abs(d * xb[b].d);
      }
      for (let k = 0; k < r; k++) {
        s += lr.s * t[k] * lr.up[k * dOut + j];
        g += Math.abs(lr.s) * ta[k] * Math.abs(lr.up[k * dOut + j]);
      }
      h[i * dOut + j] = s;
      bound[i * dOut + j] = 2 * U * (nb + r + 8) * g + U * Math.abs(s);
    }
  }
  return { h, bound };
}
