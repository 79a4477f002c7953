// Elementwise activations with explicit backward. x, h, dH, dX: [n, d], any float dtype (output keeps x's dtype).
// GELU uses the tanh approximation (PyTorch's approximate="tanh"), whose derivative is exact in closed form.

import { AdapterStateError, ShapeError } from "../errors.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { requireMatrix } from "./check.js";
import type { Module, TrainParam } from "./module.js";

/** The activations Mlp supports by name. */
export type ActivationName = "relu" | "gelu";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

abstract class Elementwise implements Module {
  private input: Matrix | null = null;
  protected abstract value(x: number): number;
  protected abstract slope(x: number): number;
  protected abstract readonly label: string;

  forward(x: Matrix): Matrix {
    requireMatrix(`${this.label}.forward`, "x", x);
    const Ctor = x.data.constructor as new (n: number) => FloatArray;
    const h = new Ctor(x.data.length);
    for (let i = 0; i < h.length; i++) h[i] = this.value(x.data[i]!);
    this.input = x;
    return { data: h, rows: x.rows, cols: x.cols };
  }

  backward(dH: Matrix): Matrix {
    const x = this.input;
    if (x === null)
      throw new AdapterStateError(
        "adapter_state",
        `${this.label}.backward: called before forward (no cached input to differentiate)`,
      );
    requireMatrix(`${this.label}.backward`, "dH", dH);
    if (dH.rows !== x.rows || dH.cols !== x.cols)
      throw new ShapeError(
        "shape_mismatch",
        `${this.label}.backward: dH has shape ${fmtShape([dH.rows, dH.cols])}, expected ${fmtShape([x.rows, x.cols])} like the last forward's input`,
        { shape: [dH.rows, dH.cols], expected: [x.rows, x.cols] },
      );
    const Ctor = x.data.constructor as new (n: number) => FloatArray;
    const dX = new Ctor(x.data.length);
    for (let i = 0; i < dX.length; i++) dX[i] = dH.data[i]! * this.slope(x.data[i]!);
    return { data: dX, rows: x.rows, cols: x.cols };
  }

  parameters(): TrainParam[] {
    return [];
  }

  zeroGrad(): void {}
}

/** ReLU: h = max(x, 0); the derivative at exactly 0 is taken as 0. */
export class Relu extends Elementwise {
  protected readonly label = "Relu";
  protected value(x: number): number {
    return Math.max(x, 0);
  }
  protected slope(x: number): number {
    return x > 0 ? 1 : 0;
  }
}

/** GELU, tanh form: h = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export class Gelu extends Elementwise {
  protected readonly label = "Gelu";
  protected value(x: number): number {
    return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
  }
  protected slope(x: number): number {
    const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x);
  }
}

/** A fresh activation layer by name. */
export function activation(name: ActivationName): Module {
  return name === "relu" ? new Relu() : new Gelu();
}
