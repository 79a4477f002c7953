// LoRA over a float32 or quantized (Q8_0 / Q4_0) copy of a trained float64 model's dense layers, QLoRA-style: the
// base stays frozen in its reduced precision, gradients flow through the dequantized base to the input, and only
// the adapters train. Each layer is a LoraLinear (float32) inside the float64 model: x is rounded to float32 on the
// way in and h widened back to float64 on the way out (dH and dX alike), so activations and the loss stay float64.
// W [dIn, dOut] is quantized with its blocks along whichever axis is a multiple of 32: dOut ("in_out" as stored) or
// else dIn (stored transposed, "out_in"); a layer with neither stays float32.

import { quantizeMatrix } from "../io/quant-matrix.js";
import { LoraLinear } from "../lora/layer.js";
import type { Matrix } from "../matrix.js";
import { badArgument } from "./check.js";
import { Linear } from "./linear.js";
import { Mlp } from "./mlp.js";
import type { Module, TrainParam } from "./module.js";

/** The precision of the frozen base under the adapters. */
export type BasePrecision = "float32" | "q8_0" | "q4_0";

const PRECISIONS: readonly BasePrecision[] = ["float32", "q8_0", "q4_0"];

const widen = (m: Matrix): Matrix => ({ data: Float64Array.from(m.data), rows: m.rows, cols: m.cols });
const narrow = (m: Matrix): Matrix<Float32Array> => ({ data: Float32Array.from(m.data), rows: m.rows, cols: m.cols });

/** A float32 LoraLinear used as a float64 Module (see the module header). */
export class Float32LoraModule implements Module {
  constructor(readonly layer: LoraLinear) {}
  forward(x: Matrix): Matrix {
    return widen(this.layer.forward(narrow(x)));
  }
  backward(dH: Matrix): Matrix {
    return widen(this.layer.backward(narrow(dH)));
  }
  parameters(): TrainParam[] {
    return this.layer.parameters();
  }
  zeroGrad(): void {
    this.layer.zeroGrad();
  }
  train(on: boolean): void {
    this.layer.train(on);
  }
}

/** The frozen base weight of dense layer `l` in `precision`, for a LoraLinear. */
function baseOf(l: Linear, precision: BasePrecision) {
  const { rows: dIn, cols: dOut } = l.weight;
  const w = Float32Array.from(l.weight.data); // [dIn, dOut]
  if (precision !== "float32" && dOut % 32 === 0)
    return quantizeMatrix({ data: w, rows: dIn, cols: dOut }, precision, { layout: "in_out" });
  if (precision !== "float32" && dIn % 32 === 0) {
    const t = new Float32Array(w.length); // Wᵀ: [dOut, dIn]
    for (let i = 0; i < dIn; i++) for (let j = 0; j < dOut; j++) t[j * dIn + i] = w[i * dOut + j]!;
    return quantizeMatrix({ data: t, rows: dOut, cols: dIn }, precision, { layout: "out_in" });
  }
  return { data: w, rows: dIn, cols: dOut };
}

/**
 * The model's dense layers (each a Linear) as LoraLinear layers over a `precision` copy of their weights, each with
 * a fresh adapter from `addAdapter(layer, i)`. The float64 model is left unchanged.
 * @throws {ArgumentError} model not an Mlp, an unknown precision, addAdapter not a function ("invalid_argument")
 */
export function withLowPrecisionBase(
  model: Mlp,
  precision: BasePrecision,
  addAdapter: (layer: LoraLinear, index: number) => void,
): Mlp {
  const op = "withLowPrecisionBase";
  if (!(model instanceof Mlp)) throw badArgument(op, "model", model, "an Mlp");
  if (!PRECISIONS.includes(precision)) throw badArgument(op, "precision", precision, '"float32", "q8_0" or "q4_0"');
  if (typeof addAdapter !== "function") throw badArgument(op, "addAdapter", addAdapter, "a function (layer, index)");
  return model.mapLinears((m, i) => {
    const l = m as Linear;
    if (!(l instanceof Linear)) return m;
    const bias = l.bias ? Float32Array.from(l.bias) : undefined;
    const layer = new LoraLinear({ weight: baseOf(l, precision), bias });
    addAdapter(layer, i);
    return new Float32LoraModule(layer);
  });
}
