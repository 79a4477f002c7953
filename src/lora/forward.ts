// LoRA forward ops. Row-major, one dtype per call. x: [n, dIn], W: [dIn, dOut], down: [dIn, r], up: [r, dOut],
// h: [n, dOut]. h = x·W + scaling·(x·down)·up, computed as (x·down) first ([n, r], cheap), never down·up.
// A low-rank term that is exactly zero (alpha = 0, down = 0 or up = 0) leaves h bit-for-bit equal to x·W; with
// scaling 0 or up all zero the term is skipped, so this holds even when x·down overflows to ±Infinity.

import { ArgumentError, ShapeError } from "../errors.js";
import { gemm, isZeroArray, loraGemm } from "../kernels/select.js";
import { type FloatArray, type Matrix, type TensorLike, toNested } from "../matrix.js";
import type { MatrixInput } from "./operand.js";
import { requireFinite } from "./operand.js";
import { type LoraPlan, planLora } from "./plan.js";
import type { QuantMatrix } from "./quant.js";
import { isQuantMatrix } from "./quant.js";
import { quantLoraForward } from "./quant-ops.js";
import { describeArray, localFloatArray, sharesMemory } from "./typed.js";
import { readScalingRule, type ScalingRule, scalingFor } from "./variants.js";

/** Options of loraForward. */
export interface LoraForwardOptions {
  /** "standard" (alpha / r, the default) or "rslora" (alpha / √r). */
  scaling?: ScalingRule;
  /** Explicit scaling factor; overrides alpha and the rule. */
  scale?: number;
  /** Output buffer of n·dOut elements in x's dtype (typed inputs only); written and returned as the result's data. */
  out?: FloatArray;
}

/** A low-rank update by role: down [dIn, r] applied first, up [r, dOut] second, times scaling. */
export interface LowRank<T extends FloatArray = FloatArray> {
  down: Matrix<T>;
  up: Matrix<T>;
  scaling: number;
}

type Nested = readonly (readonly number[])[];
type Typed<T extends FloatArray> = Matrix<T> | TensorLike<T>;

/**
 * LoRA forward pass: h = x·W + (alpha / r)·(x·B)·A.
 * B is the down-projection [dIn, r] (PEFT's lora_A transposed), A the up-projection [r, dOut] (PEFT's lora_B
 * transposed); r is B's column count and must equal A's row count. Nested arrays compute in float64 and return
 * number[][]; {data, rows, cols} views and {data, dims} tensors return the same form and dtype (float32 in →
 * float32 arithmetic and output). All four matrices must have one dtype, except that W may be a QuantMatrix
 * (Q8_0/Q4_0, stored in its layout; x, B and A float32; see docs/quant.md).
 * @param x [n, dIn] (a tensor may have leading dims [..., dIn])   @param W [dIn, dOut]
 * @param B [dIn, r] (down)   @param A [r, dOut] (up)   @param alpha finite number; scaling = alpha / r
 * @throws {ShapeError} shapes disagree ("shape_mismatch"), r = 0 ("invalid_rank"), malformed matrices
 * @throws {ArgumentError} non-finite entries or alpha, mixed dtypes ("dtype_mismatch"), bad options
 * @example loraForward([[1, 2]], [[1, 0], [0, 1]], [[1], [1]], [[0.5, 0.5]], 2) // [[4, 5]]
 */
export function loraForward(
  x: Nested,
  W: Nested,
  B: Nested,
  A: Nested,
  alpha: number,
  options?: LoraForwardOptions,
): number[][];
export function loraForward<T extends FloatArray>(
  x: Matrix<T>,
  W: Typed<T>,
  B: Typed<T>,
  A: Typed<T>,
  alpha: number,
  options?: LoraForwardOptions,
): Matrix<T>;
export function loraForward<T extends FloatArray>(
  x: TensorLike<T>,
  W: Typed<T>,
  B: Typed<T>,
  A: Typed<T>,
  alpha: number,
  options?: LoraForwardOptions,
): TensorLike<T>;
export function loraForward<T extends Float32Array>(
  x: Matrix<T> | TensorLike<T>,
  W: QuantMatrix,
  B: Typed<T>,
  A: Typed<T>,
  alpha: number,
  options?: LoraForwardOptions,
): Matrix<Float32Array> | TensorLike<Float32Array>;
export function loraForward(
  x: MatrixInput,
  W: MatrixInput,
  B: MatrixInput,
  A: MatrixInput,
  alpha: number,
  options?: LoraForwardOptions,
): unknown;
export function loraForward(
  x: unknown,
  W: unknown,
  B: unknown,
  A: unknown,
  alpha: number,
  options: LoraForwardOptions = {},
): unknown {
  const op = "loraForward";
  if (isQuantMatrix(W)) {
    const scaling = (r: number) => resolveScaling(op, alpha, r, options);
    return quantLoraForward(op, x, W, B, A, { down: "B", up: "A" }, scaling, options.out);
  }
  const plan = planLora(op, x, W, B, A, { down: "B", up: "A" });
  const s = resolveScaling(op, alpha, plan.r, options);
  const out = prepareOut(op, plan, options.out);
  runLora(out, plan.xData, plan.wData, plan.downData, plan.upData, s, plan.n, plan.dIn, plan.dOut, plan.r);
  return wrapLike(plan, options.out ?? out); // the caller's out (out may be its view in this realm)
}

/**
 * Role-named forward op: h = x·W + scaling·(x·down)·up on typed views of one dtype.
 * W may be a QuantMatrix (Q8_0/Q4_0, float32 x; see docs/quant.md).
 * @param x [n, dIn]   @param W [dIn, dOut]   @param adapter {down [dIn, r], up [r, dOut], scaling}
 * @throws {ShapeError} when the shapes disagree
 * @example lowRankForward(x, W, { down, up, scaling: 2 })
 */
export function lowRankForward<T extends FloatArray>(
  x: Matrix<T>,
  W: Matrix<T> | QuantMatrix,
  adapter: LowRank<T>,
  options: { out?: T } = {},
): Matrix<T> {
  const op = "lowRankForward";
  options ??= {};
  if (adapter === null || typeof adapter !== "object")
    throw new ArgumentError("invalid_argument", `${op}: adapter must be an object {down, up, scaling}`, {
      name: "adapter",
    });
  if (isQuantMatrix(W)) {
    const scaling = () => requireFinite(op, "adapter.scaling", adapter.scaling);
    const names = { down: "down", up: "up" };
    return quantLoraForward(op, x, W, adapter?.down, adapter?.up, names, scaling, options.out) as Matrix<T>;
  }
  const plan = planLora(op, x, W, adapter.down, adapter.up, { down: "down", up: "up" });
  const s = requireFinite(op, "adapter.scaling", adapter.scaling);
  const out = prepareOut(op, plan, options.out);
  runLora(out, plan.xData, plan.wData, plan.downData, plan.upData, s, plan.n, plan.dIn, plan.dOut, plan.r);
  return { data: (options.out ?? out) as T, rows: plan.n, cols: plan.dOut };
}

/** The scaling of a loraForward call: options.scale, else alpha / r (or alpha / √r for rsLoRA). */
export function resolveScaling(op: string, alpha: unknown, r: number, options: LoraForwardOptions): number {
  const a = requireFinite(op, "alpha", alpha);
  const rule = readScalingRule(op, options.scaling);
  if (options.scale !== undefined) return requireFinite(op, "options.scale", options.scale);
  return scalingFor(a, r, rule);
}

/** h = x·W + s·(x·down)·up into out (no checks; plan dims). The [n, r] temporary is the only allocation. */
export function runLora<T extends FloatArray>(
  out: T,
  x: T,
  w: T,
  down: T,
  up: T,
  s: number,
  n: number,
  dIn: number,
  dOut: number,
  r: number,
): T {
  // the exactly-zero term is skipped: h = x·W bit for bit, whatever x·down is
  if (s === 0 || n === 0 || r === 0 || isZeroArray(up, r * dOut))
    return gemm(out, x, w, n, dIn, dOut, false, false, 1, 0);
  const Ctor = x.constructor as { new (len: number): T };
  const t = gemm(new Ctor(n * r), x, down, n, dIn, r, false, false, 1, 0); // x: [n, dIn] · down: [dIn, r] → t: [n, r]
  return loraGemm(out, x, w, t, up, n, dIn, dOut, r, s); // x·W + s·t·up, fused where the kernel supports it
}

function prepareOut(op: string, plan: LoraPlan, given: FloatArray | undefined): FloatArray {
  const len = plan.n * plan.dOut;
  const Ctor = plan.xData.constructor as { new (len: number): FloatArray };
  if (given === undefined) return new Ctor(len);
  if (plan.x.form === "nested") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: options.out is only for typed inputs; x is a nested number[][]`,
      { name: "out" },
    );
  }
  const out = localFloatArray(given);
  if (out === null || out.constructor !== plan.xData.constructor) {
    throw new ArgumentError(
      "dtype_mismatch",
      `${op}: options.out is ${describeArray(given)}, expected a ${plan.xData.constructor.name} like x`,
      { name: "out" },
    );
  }
  if (out.length !== len) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: options.out has length ${out.length}, expected ${len} for h [${plan.n}, ${plan.dOut}]`,
      {
        name: "out",
        length: out.length,
        expected: len,
      },
    );
  }
  for (const [name, d] of [
    ["x", plan.xData],
    ["W", plan.wData],
    ["down", plan.downData],
    ["up", plan.upData],
  ] as const) {
    if (sharesMemory(out, d))
      throw new ArgumentError(
        "invalid_argument",
        `${op}: options.out overlaps the memory of ${name}; pass a separate buffer`,
        { name: "out" },
      );
  }
  return out;
}

/** Returns h in the form x came in: number[][], {data, rows, cols} or {data, dims}. */
export function wrapLike(plan: LoraPlan, h: FloatArray): unknown {
  const m = { data: h, rows: plan.n, cols: plan.dOut };
  if (plan.x.form === "nested") return toNested(m);
  if (plan.x.form === "tensor") return { data: h, dims: [...plan.x.lead, plan.dOut] };
  return m;
}
