// Adds one module's LoRA update into its base weight, in place, in the weight's stored layout.
//   stored [dIn, dOut] (= W: Conv1D with fan_in_fan_out, embeddings):  W  += s·down·up
//   stored [dOut, dIn] (= Wᵀ: nn.Linear, MLX Linear):                  Wᵀ += s·upᵀ·downᵀ
// down: [dIn, r], up: [r, dOut]. Float32 throughout; the gemm kernel accumulates into the weight (beta = 1).
// DoRA (magnitude m [dOut]): W' = (m / ‖W + ΔW‖_col) ⊙ (W + ΔW), one norm per output feature.

import type { PeftModuleAdapter } from "../io/peft-adapter.js";
import { gemm } from "../kernels/select.js";

/**
 * weight += scaling·down·up (in the layout given by `transposed`), then the DoRA rescale when the module has a
 * magnitude. `weight` holds dIn·dOut float32 values; shapes are checked by the caller.
 */
export function mergeModuleInto(weight: Float32Array, m: PeftModuleAdapter, transposed: boolean): Float32Array {
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  const r = m.r;
  if (transposed) {
    // op(a) = upᵀ [dOut, r] (up stored [r, dOut]), op(b) = downᵀ [r, dIn] (down stored [dIn, r])
    gemm(weight, m.up.data, m.down.data, dOut, r, dIn, true, true, m.scaling, 1);
  } else {
    gemm(weight, m.down.data, m.up.data, dIn, r, dOut, false, false, m.scaling, 1);
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
