// Adds one module's LoRA update into its base weight, in place, in the weight's stored layout.
//   stored [dIn, dOut] (= W: Conv1D with fan_in_fan_out, embeddings):  W  += s·down·up
//   stored [dOut, dIn] (= Wᵀ: nn.Linear, MLX Linear):                  Wᵀ += s·upᵀ·downᵀ
// down: [dIn, r], up: [r, dOut]. Float32 throughout; the gemm kernel accumulates into the weight (beta = 1).
// DoRA (magnitude m [dOut]): W' = (m / ‖W + ΔW‖_col) ⊙ (W + ΔW), one norm per output feature.

// A 16-bit base weight (BF16, F16) gets ΔW rounded to its dtype before the add, as PEFT's merge computes it
// (lora/layer.py get_delta_weight casts ΔW to the weight's dtype, then weight.data += ΔW), so the merged tensor
// equals PEFT's; the sum is rounded once more when it is encoded.

import type { PeftModuleAdapter } from "../io/peft-adapter.js";
import { decodeBf16Array, decodeF16Array, encodeBf16Array, encodeF16Array } from "../io/safetensors.js";
import { gemm } from "../kernels/select.js";

// Rounds float32 values to the nearest bfloat16 / float16 in place (round to nearest even, as torch's cast).
function roundTo16(values: Float32Array, dtype: "BF16" | "F16"): void {
  const back = dtype === "BF16" ? decodeBf16Array(encodeBf16Array(values)) : decodeF16Array(encodeF16Array(values));
  values.set(back);
}

/**
 * weight += scaling·down·up (in the layout given by `transposed`), then the DoRA rescale when the module has a
 * magnitude. `weight` holds dIn·dOut float32 values; shapes are checked by the caller. `storedDtype` is the base
 * tensor's dtype in the file: BF16 / F16 round ΔW to it before the add, as PEFT does.
 */
export function mergeModuleInto(
  weight: Float32Array,
  m: PeftModuleAdapter,
  transposed: boolean,
  storedDtype = "F32",
): Float32Array {
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  const r = m.r;
  const round16 = (storedDtype === "BF16" || storedDtype === "F16") && m.magnitude === undefined;
  const target = round16 ? new Float32Array(weight.length) : weight;
  const beta = round16 ? 0 : 1;
  if (transposed) {
    // op(a) = upᵀ [dOut, r] (up stored [r, dOut]), op(b) = downᵀ [r, dIn] (down stored [dIn, r])
    gemm(target, m.up.data, m.down.data, dOut, r, dIn, true, true, m.scaling, beta);
  } else {
    gemm(target, m.down.data, m.up.data, dIn, r, dOut, false, false, m.scaling, beta);
  }
  if (round16) {
    roundTo16(target, storedDtype as "BF16" | "F16");
    for (let k = 0; k < weight.length; k++) weight[k] = weight[k]! + target[k]!;
  }
  if (m.magnitude !== undefined) applyDora(weight, m.magnitude, dIn, dOut, transposed);
  return weight;
}

// Scales each output feature j of W + ΔW by m[j] / ‖(W + ΔW)[:, j]‖ (norms accumulated in float64).
function applyDora(w: Float32Array, mag: Float32Array, dIn: number, dOut: number, transposed: boolean): void {
  const norms = new Float64Array(dOut);
  if (transposed) {
    for (let j = 0; j < dOut; j++) {
      let s = 0;
      for (let i = 0; i < dIn; i++) s += w[j * dIn + i]! ** 2;
      norms[j] = Math.sqrt(s);
    }
    for (let j = 0; j < dOut; j++) {
      const f = mag[j]! / norms[j]!;
      for (let i = 0; i < dIn; i++) w[j * dIn + i] = w[j * dIn + i]! * f;
    }
    return;
  }
  for (let i = 0; i < dIn; i++) for (let j = 0; j < dOut; j++) norms[j] = norms[j]! + w[i * dOut + j]! ** 2;
  const f = new Float64Array(dOut);
  for (let j = 0; j < dOut; j++) f[j] = mag[j]! / Math.sqrt(norms[j]!);
  for (let i = 0; i < dIn; i++) for (let j = 0; j < dOut; j++) w[i * dOut + j] = w[i * dOut + j]! * f[j]!;
}
