// AdamW with decoupled weight decay and bias correction (PyTorch's torch.optim.AdamW update, step for step),
// optional LoRA+ (a larger learning rate for LoRA `up` tensors), and global-norm gradient clipping.
// Parameters are updated in place; moment buffers are float64 whatever the parameter dtype.

import { ArgumentError } from "../errors.js";
import type { TrainParam } from "./module.js";

/** Options of AdamW. */
export interface AdamWOptions {
  /** Learning rate (> 0). */
  lr: number;
  /** First-moment decay, default 0.9. */
  beta1?: number;
  /** Second-moment decay, default 0.999. */
  beta2?: number;
  /** Denominator term, default 1e-8. */
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
 * @throws {ArgumentError} an option out of range ("invalid_argument")
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
    const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, loraPlusRatio = 1 } = options;
    requireNumber("lr", lr, 0, Number.POSITIVE_INFINITY, true, true);
    requireNumber("beta1", beta1, 0, 1, false, true);
    requireNumber("beta2", beta2, 0, 1, false, true);
    requireNumber("eps", eps, 0, Number.POSITIVE_INFINITY, false, true);
    requireNumber("weightDecay", weightDecay, 0, Number.POSITIVE_INFINITY, false, true);
    requireNumber("loraPlusRatio", loraPlusRatio, 0, Number.POSITIVE_INFINITY, true, true);
    this.params = params;
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

  /** Applies one update to every parameter from its current grad. */
  step(): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** this.t;
    const bc2Sqrt = Math.sqrt(1 - b2 ** this.t);
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      const lr = p.role === "up" ? this.lr * this.loraPlusRatio : this.lr;
      const decay = 1 - lr * this.weightDecay;
      const stepSize = lr / bc1;
      const value = p.value;
      const grad = p.grad;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i]!;
        const mi = b1 * m[i]! + (1 - b1) * g;
        const vi = b2 * v[i]! + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        value[i] = value[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      }
    }
  }
}

/**
 * Scales all gradients so that their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_: factor
 * maxNorm / (norm + 1e-6) when the norm exceeds maxNorm). Returns the norm before clipping.
 * @throws {ArgumentError} maxNorm not a positive number ("invalid_argument")
 */
export function clipGradNorm(params: readonly TrainParam[], maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm))
    throw new ArgumentError("invalid_argument", `clipGradNorm: maxNorm is ${maxNorm}, expected a positive number`, {
      value: maxNorm,
    });
  let sq = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) sq += p.grad[i]! * p.grad[i]!;
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) {
    const f = maxNorm / (norm + 1e-6);
    for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i] = p.grad[i]! * f;
  }
  return norm;
}

/** Cosine learning-rate factor in [0, 1] at `step` of `total`, after `warmup` linear-warmup steps. */
export function cosineFactor(step: number, total: number, warmup = 0): number {
  if (step < warmup) return (step + 1) / warmup;
  if (total <= warmup) return 1;
  const progress = Math.min(1, (step - warmup) / (total - warmup));
  return 0.5 * (1 + Math.cos(Math.PI * progress));
}
