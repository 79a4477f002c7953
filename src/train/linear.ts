// Dense layer h = x·W + b for training. x: [n, dIn], W: [dIn, dOut] (lorakit's "in_out" layout), b: [dOut],
// h: [n, dOut]. A frozen layer still returns dX but keeps no gradients. One dtype per layer (float64 by default).

import { AdapterStateError, ArgumentError, ShapeError } from "../errors.js";
import { gemm } from "../kernels/select.js";
import type { Rng } from "../lora/rng.js";
import { localFloatArray } from "../lora/typed.js";
import { dtypeName, type FloatArray, type Matrix } from "../matrix.js";
import { checkResultSize, fmtShape } from "../shape.js";
import {
  badArgument,
  optionsObject,
  requireInteger,
  requireMatrix,
  requireMatrixView,
  requireObject,
  requireRng,
} from "./check.js";
import type { Module, TrainParam } from "./module.js";

/** Options of the Linear constructor. */
export interface LinearOptions {
  /** W: [dIn, dOut]. Used in place (not copied). */
  weight: Matrix;
  /** b: [dOut], same dtype as W; omitted means no bias. Used in place. */
  bias?: FloatArray;
  /** Whether W and b receive gradients and appear in parameters(). Default true. */
  trainable?: boolean;
}

/** A dense layer with explicit forward/backward. */
export class Linear implements Module {
  readonly weight: Matrix;
  readonly bias: FloatArray | undefined;
  trainable: boolean;
  readonly weightGrad: FloatArray;
  readonly biasGrad: FloatArray | undefined;
  private input: Matrix | null = null;

  constructor(options: LinearOptions) {
    requireObject("Linear", "options", options, "an options object { weight, bias?, trainable? }");
    const { bias, trainable = true } = options;
    const weight = requireMatrixView("Linear", "weight", options.weight);
    if (bias !== undefined) {
      const b = localFloatArray(bias);
      if (b === null) throw badArgument("Linear", "bias", bias, "a Float32Array or Float64Array [dOut], or undefined");
      if (dtypeName(b) !== dtypeName(weight.data))
        throw new ArgumentError(
          "dtype_mismatch",
          `Linear: bias is ${dtypeName(b)}, expected ${dtypeName(weight.data)} like the weight`,
          { dtype: dtypeName(b), expected: dtypeName(weight.data) },
        );
    }
    if (weight.data.length !== weight.rows * weight.cols)
      throw new ShapeError(
        "data_length_mismatch",
        `Linear: weight has ${weight.data.length} values, expected ${weight.rows * weight.cols} for shape ${fmtShape([weight.rows, weight.cols])}`,
        { shape: [weight.rows, weight.cols], length: weight.data.length },
      );
    if (bias !== undefined && bias.length !== weight.cols)
      throw new ShapeError(
        "shape_mismatch",
        `Linear: bias has shape ${fmtShape([bias.length])}, expected ${fmtShape([weight.cols])} because weight is ${fmtShape([weight.rows, weight.cols])} (dOut = ${weight.cols})`,
        { shape: [bias.length], expected: [weight.cols] },
      );
    this.weight = weight;
    this.bias = bias;
    this.trainable = trainable;
    const Ctor = weight.data.constructor as new (n: number) => FloatArray;
    this.weightGrad = new Ctor(weight.data.length);
    this.biasGrad = bias === undefined ? undefined : new Ctor(bias.length);
  }

  /** A float64 layer with He-uniform weights U(−√(6/dIn), √(6/dIn)) (suits ReLU/GELU) and a zero bias. */
  static init(dIn: number, dOut: number, rng: Rng, options: { bias?: boolean } = {}): Linear {
    requireInteger("Linear.init", "dIn", dIn, 1);
    requireInteger("Linear.init", "dOut", dOut, 1);
    requireRng("Linear.init", "rng", rng);
    checkResultSize("Linear.init", "weight", [dIn, dOut]);
    options = optionsObject("Linear.init", options);
    const w = new Float64Array(dIn * dOut);
    const bound = Math.sqrt(6 / dIn);
    for (let i = 0; i < w.length; i++) w[i] = (2 * rng.uniform() - 1) * bound;
    const bias = options.bias === false ? undefined : new Float64Array(dOut);
    return new Linear({ weight: { data: w, rows: dIn, cols: dOut }, bias });
  }

  get dIn(): number {
    return this.weight.rows;
  }

  get dOut(): number {
    return this.weight.cols;
  }

  /** A deep copy (weights, bias, trainable flag); gradients start at zero. */
  clone(): Linear {
    const w = this.weight;
    return new Linear({
      weight: { data: w.data.slice(), rows: w.rows, cols: w.cols },
      bias: this.bias?.slice(),
      trainable: this.trainable,
    });
  }

  /** h = x·W + b. x: [n, dIn] in W's dtype → h: [n, dOut]. */
  forward(x: Matrix): Matrix {
    const { rows: dIn, cols: dOut } = this.weight;
    requireMatrix("Linear.forward", "x", x);
    if (x.cols !== dIn)
      throw new ShapeError(
        "shape_mismatch",
        `Linear.forward: x has shape ${fmtShape([x.rows, x.cols])}, expected [n, ${dIn}] because weight is ${fmtShape([dIn, dOut])} (dIn = ${dIn})`,
        { shape: [x.rows, x.cols], expected: [x.rows, dIn] },
      );
    if (dtypeName(x.data) !== dtypeName(this.weight.data))
      throw new ArgumentError(
        "dtype_mismatch",
        `Linear.forward: x is ${dtypeName(x.data)}, expected ${dtypeName(this.weight.data)} like the weight`,
        { dtype: dtypeName(x.data), expected: dtypeName(this.weight.data) },
      );
    const n = x.rows;
    const Ctor = this.weight.data.constructor as new (len: number) => FloatArray;
    const h = new Ctor(n * dOut);
    const b = this.bias;
    if (b !== undefined) for (let i = 0; i < n; i++) h.set(b, i * dOut);
    // x: [n, dIn] · W: [dIn, dOut] → [n, dOut], added onto the broadcast bias
    gemm(h, x.data, this.weight.data, n, dIn, dOut, false, false, 1, b === undefined ? 0 : 1);
    this.input = x;
    return { data: h, rows: n, cols: dOut };
  }

  /** dX = dH·Wᵀ; when trainable also dW += xᵀ·dH and db += Σ_rows dH. dH: [n, dOut] → dX: [n, dIn]. */
  backward(dH: Matrix): Matrix {
    const x = this.input;
    const { rows: dIn, cols: dOut } = this.weight;
    if (x === null)
      throw new AdapterStateError(
        "adapter_state",
        "Linear.backward: called before forward (no cached input to differentiate)",
      );
    requireMatrix("Linear.backward", "dH", dH);
    if (dH.rows !== x.rows || dH.cols !== dOut)
      throw new ShapeError(
        "shape_mismatch",
        `Linear.backward: dH has shape ${fmtShape([dH.rows, dH.cols])}, expected ${fmtShape([x.rows, dOut])} because the last forward produced [${x.rows}, ${dOut}]`,
        { shape: [dH.rows, dH.cols], expected: [x.rows, dOut] },
      );
    if (dtypeName(dH.data) !== dtypeName(this.weight.data))
      throw new ArgumentError(
        "dtype_mismatch",
        `Linear.backward: dH is ${dtypeName(dH.data)}, expected ${dtypeName(this.weight.data)} like the weight`,
        { dtype: dtypeName(dH.data), expected: dtypeName(this.weight.data) },
      );
    const n = x.rows;
    if (this.trainable) {
      // xᵀ: [dIn, n] · dH: [n, dOut] → [dIn, dOut], accumulated
      gemm(this.weightGrad, x.data, dH.data, dIn, n, dOut, true, false, 1, 1);
      const db = this.biasGrad;
      if (db !== undefined)
        for (let i = 0; i < n; i++) for (let j = 0; j < dOut; j++) db[j] = db[j]! + dH.data[i * dOut + j]!;
    }
    const Ctor = this.weight.data.constructor as new (len: number) => FloatArray;
    const dX = new Ctor(n * dIn);
    // dH: [n, dOut] · Wᵀ (W stored [dIn, dOut]) → [n, dIn]
    gemm(dX, dH.data, this.weight.data, n, dOut, dIn, false, true, 1, 0);
    return { data: dX, rows: n, cols: dIn };
  }

  parameters(): TrainParam[] {
    if (!this.trainable) return [];
    const ps: TrainParam[] = [{ value: this.weight.data, grad: this.weightGrad, role: "weight" }];
    if (this.bias !== undefined && this.biasGrad !== undefined)
      ps.push({ value: this.bias, grad: this.biasGrad, role: "bias" });
    return ps;
  }

  zeroGrad(): void {
    this.weightGrad.fill(0);
    this.biasGrad?.fill(0);
  }
}
