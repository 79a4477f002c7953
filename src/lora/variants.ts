// Scaling rules of the LoRA variants. Standard LoRA scales the low-rank term by alpha / r; rsLoRA
// (rank-stabilised LoRA, PEFT's use_rslora) by alpha / √r.

import { ArgumentError } from "../errors.js";
import type { AddLowRankKernel, GemmKernel, KernelArray } from "../kernels/contract.js";

/** How the low-rank term is scaled: "standard" = alpha / r, "rslora" = alpha / √r. */
export type ScalingRule = "standard" | "rslora";

export const SCALING_RULES: readonly ScalingRule[] = ["standard", "rslora"];

/** The scaling factor for rank r and alpha under a rule. */
export function scalingFor(alpha: number, r: number, rule: ScalingRule = "standard"): number {
  return rule === "rslora" ? alpha / Math.sqrt(r) : alpha / r;
}

/** Human-readable formula of a rule, as the explanation prints it. */
export function scalingFormula(rule: ScalingRule): string {
  return rule === "rslora" ? "alpha / sqrt(r)" : "alpha / r";
}

/** Validates a scaling rule option. */
export function readScalingRule(op: string, v: unknown): ScalingRule {
  if (v === undefined) return "standard";
  if (v === "standard" || v === "rslora") return v;
  throw new ArgumentError(
    "invalid_argument",
    `${op}: options.scaling is ${JSON.stringify(v)}, expected "standard" or "rslora"`,
    {
      name: "scaling",
      value: v,
    },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Variant hooks (PEFT's LoraVariant): how an adapter adds to the forward pass, back-propagates, merges and
// unmerges. The layer picks a variant once, when the adapter is created, and never branches on its name.
// Row-major arrays of one dtype: xb (the branch input, x after dropout) [n, dIn], out/dH [n, dOut], down [dIn, r],
// up [r, dOut], magnitude [dOut]; weights are in the context's layout (see base.ts).

/** What a variant sees of an adapter: matrices, scaling and gradient accumulators (all live arrays). */
export interface VariantAdapter {
  r: number;
  scaling: number;
  down: { data: KernelArray; rows: number; cols: number };
  up: { data: KernelArray; rows: number; cols: number };
  gradDown: KernelArray;
  gradUp: KernelArray;
  /** DoRA: per-output-feature magnitude m [dOut] and its gradient. */
  magnitude?: KernelArray;
  gradMagnitude?: KernelArray;
}

/** The base layer as the variants see it: dims, kernels and the products of the frozen weight. */
export interface VariantContext {
  /** The live base weight (with any merged adapters folded in), in the layout below. */
  weight: KernelArray;
  dIn: number;
  dOut: number;
  gemm: GemmKernel;
  addLowRank: AddLowRankKernel;
  /** xb·W without bias, [n, dOut] (shared with the base pass when xb is the layer input). */
  baseProduct(xb: KernelArray, n: number): KernelArray;
  /** out = alpha·dH·Wᵀ (+ out when beta = 1), [n, dIn]. */
  baseGradInput(out: KernelArray, dH: KernelArray, n: number, alpha: number, beta: 0 | 1): void;
  /** s·down·up in the weight's layout, a fresh array. */
  delta(a: VariantAdapter): KernelArray;
  /** Column norms (one per output feature) of a weight in the layout. */
  columnNorms(v: KernelArray): Float64Array;
  /** Element (i, j) of the logical [dIn, dOut] weight is at i·rowStep + j·colStep. */
  rowStep: number;
  colStep: number;
}

/** Behaviour of one LoRA variant. */
export interface LoraVariant {
  readonly name: string;
  /** Whether the variant may take part in a mixed-adapter batch. */
  readonly mixedBatch: boolean;
  /** Whether forward calls ctx.baseProduct (the layer then keeps x·W without bias for it). */
  readonly usesBaseProduct: boolean;
  /** Called once when an adapter is created, after down and up are filled (DoRA: m ← ‖W + ΔW‖_col). */
  init(ctx: VariantContext, a: VariantAdapter, w: KernelArray): void;
  /** Adds the adapter's contribution for branch input xb to out; returns what backward needs. */
  forward(ctx: VariantContext, a: VariantAdapter, xb: KernelArray, n: number, out: KernelArray): unknown;
  /** Accumulates the adapter's gradients from dH and adds the gradient w.r.t. xb into dXb. */
  backward(
    ctx: VariantContext,
    a: VariantAdapter,
    cache: unknown,
    xb: KernelArray,
    n: number,
    dH: KernelArray,
    dXb: KernelArray,
  ): void;
  /** Folds the adapter into w (a weight in the layout, modified in place); returns what unmerge needs. */
  merge(ctx: VariantContext, a: VariantAdapter, w: KernelArray): unknown;
  /** Takes a merged adapter out of w again. */
  unmerge(ctx: VariantContext, a: VariantAdapter, w: KernelArray, record: unknown): void;
}

function allocLike<T extends KernelArray>(like: T, len: number): T {
  return new (like.constructor as { new (n: number): T })(len);
}

/** Gradients of s·(xb·down)·up given g = dH (plain) or dH⊙(m/‖V‖) (DoRA); t = xb·down [n, r]. */
function lowRankBackward(
  ctx: VariantContext,
  a: VariantAdapter,
  t: KernelArray,
  xb: KernelArray,
  n: number,
  g: KernelArray,
  dXb: KernelArray,
): void {
  const { gemm, dIn, dOut } = ctx;
  const { r, scaling: s } = a;
  gemm(a.gradUp, t, g, r, n, dOut, true, false, s, 1); // dUp += s · tᵀ [r, n] · g [n, dOut]
  const u = gemm(allocLike(g, n * r), g, a.up.data, n, dOut, r, false, true, 1, 0); // g · upᵀ → [n, r]
  gemm(a.gradDown, xb, u, dIn, n, r, true, false, s, 1); // dDown += s · xbᵀ [dIn, n] · u [n, r]
  gemm(dXb, u, a.down.data, n, r, dIn, false, true, s, 1); // dXb += s · u [n, r] · downᵀ [r, dIn]
}

/** Plain LoRA (and rsLoRA, which differs only in scaling): out += s·(xb·down)·up; merge W ← W + ΔW. */
export const LORA_VARIANT: LoraVariant = {
  name: "lora",
  mixedBatch: true,
  usesBaseProduct: false,
  init() {},
  forward(ctx, a, xb, n, out) {
    const t = ctx.gemm(allocLike(xb, n * a.r), xb, a.down.data, n, ctx.dIn, a.r, false, false, 1, 0); // [n, r]
    ctx.addLowRank(out, t, a.up.data, n, a.r, ctx.dOut, a.scaling); // skips exact zeros: up = 0 is bit-exact
    return t;
  },
  backward(ctx, a, cache, xb, n, dH, dXb) {
    lowRankBackward(ctx, a, cache as KernelArray, xb, n, dH, dXb);
  },
  merge(ctx, a, w) {
    const delta = ctx.delta(a);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! + delta[i]!;
    return null;
  },
  unmerge(ctx, a, w) {
    const delta = ctx.delta(a);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! - delta[i]!;
  },
};

interface DoraCache {
  t: KernelArray;
  g: Float64Array;
  norm: Float64Array;
  base: KernelArray;
  low: KernelArray;
}

/** ‖W + ΔW‖ per output column, computed in the weight's dtype then reduced in float64. */
function doraNorm(ctx: VariantContext, a: VariantAdapter, w: KernelArray): { v: KernelArray; norm: Float64Array } {
  const v = ctx.delta(a);
  for (let i = 0; i < v.length; i++) v[i] = w[i]! + v[i]!;
  return { v, norm: ctx.columnNorms(v) };
}

/**
 * DoRA (PEFT use_dora): h = (m/‖V‖_col) ⊙ (x·W + s·(x·down)·up) + bias with V = W + s·down·up, written as
 * out += (g − 1)⊙(xb·W) + g⊙s·(xb·down)·up, g = m/‖V‖ per output column. ‖V‖ is a constant for gradients (PEFT
 * detaches it). The magnitude m starts at ‖W + ΔW‖_col, so g = 1 exactly and a fresh adapter changes nothing.
 */
export const DORA_VARIANT: LoraVariant = {
  name: "dora",
  mixedBatch: false,
  usesBaseProduct: true,
  init(ctx, a, w) {
    const { norm } = doraNorm(ctx, a, w);
    const m = a.magnitude!;
    for (let j = 0; j < ctx.dOut; j++) m[j] = norm[j]!;
  },
  forward(ctx, a, xb, n, out): DoraCache {
    const { dIn, dOut, gemm } = ctx;
    const { norm } = doraNorm(ctx, a, ctx.weight);
    const m = a.magnitude!;
    const g = new Float64Array(dOut);
    for (let j = 0; j < dOut; j++) g[j] = m[j]! / norm[j]!;
    const base = ctx.baseProduct(xb, n); // xb·W [n, dOut]
    const t = gemm(allocLike(xb, n * a.r), xb, a.down.data, n, dIn, a.r, false, false, 1, 0); // [n, r]
    const low = gemm(allocLike(xb, n * dOut), t, a.up.data, n, a.r, dOut, false, false, 1, 0); // t·up [n, dOut]
    const s = a.scaling;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < dOut; j++) {
        const k = i * dOut + j;
        const gj = g[j]!;
        const d = (gj - 1) * base[k]! + gj * s * low[k]!;
        if (d !== 0) out[k] = out[k]! + d;
      }
    }
    return { t, g, norm, base, low };
  },
  backward(ctx, a, cache, xb, n, dH, dXb) {
    const { t, g, norm, base, low } = cache as DoraCache;
    const { dOut } = ctx;
    const s = a.scaling;
    const dHg = allocLike(dH, dH.length);
    const dHg1 = allocLike(dH, dH.length);
    const dm = a.gradMagnitude!;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < dOut; j++) {
        const k = i * dOut + j;
        const gj = g[j]!;
        dHg[k] = dH[k]! * gj;
        dHg1[k] = dH[k]! * (gj - 1);
        dm[j] = dm[j]! + (dH[k]! * (base[k]! + s * low[k]!)) / norm[j]!; // ∂h/∂m_j = V·x / ‖V‖_j
      }
    }
    lowRankBackward(ctx, a, t, xb, n, dHg, dXb);
    ctx.baseGradInput(dXb, dHg1, n, 1, 1); // through (g − 1)⊙(xb·W)
  },
  merge(ctx, a, w) {
    const { v, norm } = doraNorm(ctx, a, w);
    const m = a.magnitude!;
    const g = new Float64Array(ctx.dOut);
    for (let j = 0; j < ctx.dOut; j++) g[j] = m[j]! / norm[j]!;
    eachElement(ctx, (k, j) => {
      w[k] = g[j]! * v[k]!; // W ← (m/‖V‖) ⊙ (W + ΔW)
    });
    return g;
  },
  unmerge(ctx, a, w, record) {
    const g = record as Float64Array;
    const delta = ctx.delta(a);
    eachElement(ctx, (k, j) => {
      w[k] = w[k]! / g[j]! - delta[k]!; // W ← W'/(m/‖V‖) − ΔW
    });
  },
};

function eachElement(ctx: VariantContext, f: (k: number, j: number) => void): void {
  for (let i = 0; i < ctx.dIn; i++) for (let j = 0; j < ctx.dOut; j++) f(i * ctx.rowStep + j * ctx.colStep, j);
}

/** The variant of an adapter: DoRA when useDora, plain LoRA otherwise (rsLoRA is plain LoRA with another scaling). */
export function variantFor(useDora: boolean): LoraVariant {
  return useDora ? DORA_VARIANT : LORA_VARIANT;
}
