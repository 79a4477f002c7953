// The contract every trainable layer in src/train follows: explicit forward and backward, no autograd graph.
// forward(x) caches what backward needs; backward(dH) returns dX and adds (+=) into the parameters' grads.
// Matrices are row-major {data, rows, cols}; x: [n, dIn], h: [n, dOut].

import type { FloatArray, Matrix } from "../matrix.js";

/** What a parameter is: a dense layer's weight or bias, or a LoRA adapter's down / up / magnitude tensor. */
export type ParamRole = "weight" | "bias" | "down" | "up" | "magnitude";

/** One trainable tensor and its gradient buffer (same length). LoraLinear's parameters() have this shape. */
export interface TrainParam {
  value: FloatArray;
  grad: FloatArray;
  role: ParamRole;
  /** The adapter name, for LoRA parameters. */
  adapter?: string;
}

/** A layer with explicit forward and backward passes. */
export interface Module {
  /** h = f(x); caches what backward needs. x: [n, dIn] → h: [n, dOut]. */
  forward(x: Matrix): Matrix;
  /** Takes dL/dh [n, dOut] for the last forward, returns dL/dx [n, dIn] and accumulates the parameter grads. */
  backward(dH: Matrix): Matrix;
  /** The trainable parameters (empty for frozen layers and activations). */
  parameters(): TrainParam[];
  /** Sets every parameter's grad to 0. */
  zeroGrad(): void;
  /** Switches training behaviour (dropout) on or off; optional. */
  train?(on: boolean): void;
}
