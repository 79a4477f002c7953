// AdamW with decoupled weight decay and bias correction (PyTorch's torch.optim.AdamW update, step for step),
// optional LoRA+ (a larger learning rate for LoRA `up` tensors), and global-norm gradient clipping.
// Parameters are updated in place; moment buffers are float64 whatever the parameter dtype.

import { ArgumentError, type LoraError, ShapeError } from "../errors.js";
import { localFloatArray } from "../lora/typed.js";
import { fmtShape } from "../shape.js";
import { requireObject } from "./check.js";
import type { TrainParam } from "./module.js";

/** Options of AdamW. */
export interface AdamWOptions {
  /** Learning rate (> 0). */
  lr: number;
  /** First-moment decay, default 0.9. */
  beta1?: number;
  /** Second-moment decay, default 0.999. */
  beta2?: number;
  /** Denominator term (> 0: with 0, a gradient that is exactly 0 at step 1 gives 0/0), default 1e-8. */
  eps?: number;
  /** Decoupled weight decay λ: p ← p·(1 − lr·λ) before the Adam step. Default 0.01 (PyTorch's default). */
  weightDecay?: number;
  /** LoRA+ ratio: parameters with role "up" use lr·ratio (Hayou et al. 2024 suggest 16). Default 1 (plain AdamW). */
  loraPlusRatio?: number;
}

function requireNumber(name: string, v: number, lo: number, hi: number, loOpen: boolean, hiOpen: boolean): void {
  const ok = Number.isFinite(v) && (loOpen ? v > lo : v >= lo) && (hiOpen ? v < hi : v <= hi);
  if (!ok) {
    const range = `${loOpen ? "(" : "["}${lo}, ${hi === Number.POSITIVE_INFINITY ? "∞" : hi}${hiOpen ? ")" : "]"}`;
    throw new ArgumentError("invalid_argument", `AdamW: ${name} is ${v}, expected a number in ${range}`, {
      name,
      value: v,
    });
  }
}

/**
 * AdamW: for each parameter p with gradient g at step t (1-based):
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;  p ← p·(1 − lr·λ);
 *   p ← p − lr·(m / (1 − β1ᵗ)) / (√v / √(1 − β2ᵗ) + eps)
 * where lr is multiplied by loraPlusRatio for LoRA `up` tensors.
 * @throws {ArgumentError} params not an array of {value, grad} float arrays, or an option out of range ("invalid_argument")
 * @throws {ShapeError} a parameter whose grad and value lengths differ ("shape_mismatch")
 * @example const opt = new AdamW(model.parameters(), { lr: 1e-3 }); opt.step();
 */
export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly loraPlusRatio: number;
  private readonly params: TrainParam[];
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;

  constructor(params: TrainParam[], options: AdamWOptions) {
    checkParams("AdamW", params);
    requireObject("AdamW", "options", options, "an options object { lr, … }");
    const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, loraPlusRatio = 1 } = options;
    requireNumber("lr", lr, 0, Number.POSITIVE_INFINITY, true, true);
    requireNumber("beta1", beta1, 0, 1, false, true);
    requireNumber("beta2", beta2, 0, 1, false, true);
    requireNumber("eps", eps, 0, Number.POSITIVE_INFINITY, true, true);
    requireNumber("weightDecay", weightDecay, 0, Number.POSITIVE_INFINITY, false, true);
    requireNumber("loraPlusRatio", loraPlusRatio, 0, Number.POSITIVE_INFINITY, true, true);
    this.params = [...params];
    this.lr = lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.loraPlusRatio = loraPlusRatio;
    this.m = params.map((p) => new Float64Array(p.value.length));
    this.v = params.map((p) => new Float64Array(p.value.length));
  }

  /** Number of steps taken. */
  get steps(): number {
    return this.t;
  }

  /**
   * Applies one update to every parameter from its current grad. All or nothing: a non-finite gradient, or an
   * update that would leave a parameter non-finite (in its own dtype), is refused before anything is written.
   * @throws {ArgumentError} lr (a public field) set out of range ("invalid_argument"); a non-finite grad or result
   *   ("non_finite", naming the step, the parameter and the element); parameters and moments are left unchanged
   */
  step(): void {
    requireNumber("lr", this.lr, 0, Number.POSITIVE_INFINITY, true, true);
    const t = this.t + 1;
    // first pass: compute every update without writing; second pass: the same arithmetic, written
    for (const write of [false, true]) for (let k = 0; k < this.params.length; k++) this.update(k, t, write);
    this.t = t;
  }

  private update(k: number, t: number, write: boolean): void {
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** t;
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const p = this.params[k]!;
    const m = this.m[k]!;
    const v = this.v[k]!;
    const lr = p.role === "up" ? this.lr * this.loraPlusRatio : this.lr;
    const decay = 1 - lr * this.weightDecay;
    const stepSize = lr / bc1;
    const value = p.value;
    const grad = p.grad;
    const isF32 = value instanceof Float32Array;
    for (let i = 0; i < value.length; i++) {
      const g = grad[i]!;
      const mi = b1 * m[i]! + (1 - b1) * g;
      const vi = b2 * v[i]! + (1 - b2) * g * g;
      const next = value[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      if (write) {
        m[i] = mi;
        v[i] = vi;
        value[i] = next;
      } else if (!Number.isFinite(isF32 ? Math.fround(next) : next)) {
        throw nonFinite(t, k, p, i, g, next);
      }
    }
  }
}

function nonFinite(t: number, k: number, p: TrainParam, i: number, g: number, next: number): LoraError {
  const what = Number.isFinite(g) ? `its update gives ${next} (lr too large?)` : `its grad is ${g}`;
  const name = `params[${k}] (${p.role}${p.adapter === undefined ? "" : ` of adapter "${p.adapter}"`})`;
  return new ArgumentError(
    "non_finite",
    `AdamW.step: step ${t}: ${name} element ${i}: ${what}; no parameter was changed`,
    { step: t, param: k, index: i, grad: g, value: next },
  );
}

/** params: an array of {value, grad} float arrays of equal length. */
function checkParams(op: string, params: readonly TrainParam[]): void {
  if (!Array.isArray(params))
    throw new ArgumentError(
      "invalid_argument",
      `${op}: params is ${params === null ? "null" : `a ${typeof params}`}, expected an array of parameters (model.parameters())`,
      { name: "params" },
    );
  params.forEach((p, k) => {
    const value = p !== null && typeof p === "object" ? localFloatArray(p.value) : null;
    const grad = p !== null && typeof p === "object" ? localFloatArray(p.grad) : null;
    if (value === null || grad === null)
      throw new ArgumentError(
        "invalid_argument",
        `${op}: params[${k}] is not a {value, grad, role} parameter with Float32Array or Float64Array value and grad`,
        { name: `params[${k}]` },
      );
    if (value.length !== grad.length)
      throw new ShapeError(
        "shape_mismatch",
        `${op}: params[${k}].grad has shape ${fmtShape([grad.length])}, expected ${fmtShape([value.length])} like its value`,
        { name: `params[${k}].grad`, shape: [grad.length], expected: [value.length] },
      );
  });
}

/**
 * Scales all gradients so that their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_: factor
 * maxNorm / (norm + 1e-6) when the norm exceeds maxNorm). Returns the norm before clipping.
 * @throws {ArgumentError} maxNorm not a positive number ("invalid_argument")
 */
export function clipGradNorm(params: readonly TrainParam[], maxNorm: number): number {
  checkParams("clipGradNorm", params);
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm))
    throw new ArgumentError("invalid_argument", `clipGradNorm: maxNorm is ${maxNorm}, expected a positive number`, {
      value: maxNorm,
    });
  let sq = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) sq += p.grad[i]! * p.grad[i]!;
  let norm = Math.sqrt(sq);
  // Σ g² overflows to Infinity for |g| ≳ 1e154 although every g is finite; maxNorm / Infinity = 0 would silently
  // zero every gradient, so the norm is then taken again scaled by the largest |g|, as hypot does
  if (norm === Number.POSITIVE_INFINITY) norm = scaledNorm(params);
  if (norm > maxNorm) {
    const f = maxNorm / (norm + 1e-6);
    for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i] = p.grad[i]! * f;
  }
  return norm;
}

/** √(Σ g²) as big·√(Σ (g / big)²), big = max |g|: no overflow while every g is finite (Infinity otherwise). */
function scaledNorm(params: readonly TrainParam[]): number {
  let big = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) big = Math.max(big, Math.abs(p.grad[i]!));
  if (!Number.isFinite(big)) return big;
  let sq = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) sq += (p.grad[i]! / big) ** 2;
  return big * Math.sqrt(sq);
}

/**
 * Cosine learning-rate factor in [0, 1] at `step` of `total`, after `warmup` linear-warmup steps.
 * @throws {ArgumentError} step, total or warmup not a finite number ≥ 0 ("invalid_argument")
 */
export function cosineFactor(step: number, total: number, warmup = 0): number {
  for (const [name, v] of [
    ["step", step],
    ["total", total],
    ["warmup", warmup],
  ] as const)
    if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v))
      throw new ArgumentError("invalid_argument", `cosineFactor: ${name} is ${v}, expected a finite number ≥ 0`, {
        name,
        value: v,
      });
  if (step < warmup) return (step + 1) / warmup;
  if (total <= warmup) return 1;
  const progress = Math.min(1, (step - warmup) / (total - warmup));
  return 0.5 * (1 + Math.cos(Math.PI * progress));
}
