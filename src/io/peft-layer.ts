// A LoraLinear for one loaded adapter module, over its base tensors as stored in the model file: the weight in the
// module's stored layout ([dOut, dIn] for nn.Linear, [dIn, dOut] for Conv1D with fan_in_fan_out and embeddings)
// and the base bias [dOut], each replaced by the adapter's own when it carries one (PEFT bias "lora_only"/"all",
// save_embedding_layers). The weight is held, not copied.

import { ShapeError } from "../errors.js";
import { LoraLinear } from "../lora/layer.js";
import type { PeftModuleAdapter } from "./peft-adapter.js";
import { baseIsTransposed } from "./peft-keys.js";

/** Base tensors of one module as read from the model file (float32). */
export interface ModuleBase {
  /** dIn·dOut values in the module's stored layout; ignored when the adapter carries its own base weight. */
  weight: Float32Array;
  /** [dOut]; ignored when the adapter carries its own bias. */
  bias?: Float32Array;
  /**
   * The weight's stored shape. A linear module with fan_in_fan_out false whose weight is stored [dIn, dOut] ≠
   * [dOut, dIn] is a Conv1D layer and is read as one, as PEFT switches fan_in_fan_out on for Conv1D.
   */
  shape?: readonly number[];
}

/**
 * Builds a LoraLinear holding the module's base weight and its adapter (named "default", active).
 * h = x·W + b + scaling·(x·down)·up (DoRA: rescaled per output feature), b the adapter's bias when it has one.
 * @param m a module from loadPeftAdapter / loadMlxAdapter   @param base the stored weight and bias
 * @throws {ShapeError} "shape_mismatch" when the weight has not dIn·dOut values
 * @example loraLinearForModule(adapter.modules[0], { weight, bias }).forward(x)
 */
export function loraLinearForModule(m: PeftModuleAdapter, base: ModuleBase): LoraLinear {
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  const weight = m.baseWeight?.data ?? base.weight;
  if (weight.length !== dIn * dOut)
    throw new ShapeError(
      "shape_mismatch",
      `loraLinearForModule: weight of module "${m.modulePath}" has ${weight.length} values, expected ${dIn * dOut} (dIn ${dIn} × dOut ${dOut})`,
      { module: m.modulePath, length: weight.length, expected: dIn * dOut },
    );
  const conv1d =
    m.kind === "linear" &&
    !m.fanInFanOut &&
    dIn !== dOut &&
    base.shape?.length === 2 &&
    base.shape[0] === dIn &&
    base.shape[1] === dOut;
  const transposed = baseIsTransposed(m.kind, m.fanInFanOut || conv1d);
  const layer = new LoraLinear({
    weight: transposed ? { data: weight, rows: dOut, cols: dIn } : { data: weight, rows: dIn, cols: dOut },
    layout: transposed ? "out_in" : "in_out",
    bias: m.bias ?? base.bias,
  });
  layer.addAdapter("default", {
    down: m.down,
    up: m.up,
    alpha: m.alpha,
    scale: m.scaling,
    useDora: m.magnitude !== undefined,
    magnitude: m.magnitude,
  });
  return layer;
}
