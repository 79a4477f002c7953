// Scaling rules of the LoRA variants. Standard LoRA scales the low-rank term by alpha / r; rsLoRA
// (rank-stabilised LoRA, PEFT's use_rslora) by alpha / √r.

import { ArgumentError } from "../errors.js";
import type { AddLowRankKernel, GemmKernel, KernelArray } from "../kernels/contract.js";
import { isZeroArray } from "../kernels/select.js";

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
// Variant hooks (PEFT's LoraVariant): how an adapter changes the running output, back-propagates, merges and
// unmerges. The layer picks a variant once, when the adapter is created, and never branches on its name.
// The active adapters are applied in order to a running output h (which starts as x·W + bias); a variant may
// read h (DoRA rescales it, as PEFT does). Row-major arrays of one dtype: xb (the branch input, x after dropout)
// [n, dIn], h/dH [n, dOut], down [dIn, r], up [r, dOut], magnitude [dOut]; weights in the context's layout (base.ts).

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
  /** The live base weight (merged adapters folded in), in the layout below. */
  weight: KernelArray;
  /** The base weight with no adapter merged (the live weight when nothing is merged). */
  unmergedWeight(): KernelArray;
  bias: KernelArray | undefined;
  dIn: number;
  dOut: number;
  gemm: GemmKernel;
  addLowRank: AddLowRankKernel;
  /** xb·W (live weight) without bias, [n, dOut], a fresh array. */
  baseProduct(xb: KernelArray, n: number): KernelArray;
  /** out = alpha·dH·Wᵀ (+ out when beta = 1), [n, dIn], live weight. */
  baseGradInput(out: KernelArray, dH: KernelArray, n: number, alpha: number, beta: 0 | 1): void;
  /** s·down·up in the weight's layout, a fresh array. */
  delta(a: VariantAdapter): KernelArray;
  /** Column norms (one per output feature, [dOut]) of a weight in the layout, in its dtype. */
  columnNorms(v: KernelArray): KernelArray;
  /** Index of element (i, j) of the logical [dIn, dOut] weight in the stored array (any layout, packed too). */
  at(i: number, j: number): number;
}

/** Behaviour of one LoRA variant. */
export interface LoraVariant {
  readonly name: string;
  /** Whether the variant may take part in a mixed-adapter batch. */
  readonly mixedBatch: boolean;
  /** Whether merge reads w0, the weight with nothing merged (the layer then snapshots it before merging). */
  readonly mergeReadsUnmerged: boolean;
  /** Called once when an adapter is created, after down and up are filled (DoRA: m ← ‖W + ΔW‖_col). */
  init(ctx: VariantContext, a: VariantAdapter): void;
  /**
   * Updates the running output h [n, dOut] in place for branch input xb; `dropped` says xb is a dropout copy of
   * the layer input. Returns what backward needs.
   */
  forward(
    ctx: VariantContext,
    a: VariantAdapter,
    xb: KernelArray,
    n: number,
    h: KernelArray,
    dropped: boolean,
  ): unknown;
  /**
   * Given dH, the gradient w.r.t. the running output after this adapter, accumulates the adapter's gradients,
   * adds the gradient w.r.t. xb into dXb, and returns the gradient w.r.t. the running output before it.
   */
  backward(
    ctx: VariantContext,
    a: VariantAdapter,
    cache: unknown,
    xb: KernelArray,
    n: number,
    dH: KernelArray,
    dXb: KernelArray,
  ): KernelArray;
  /**
   * Folds the adapter into w (the live weight or a copy, modified in place); w0 is the weight with nothing merged.
   * Returns what unmerge needs.
   */
  merge(ctx: VariantContext, a: VariantAdapter, w: KernelArray, w0: KernelArray): unknown;
  /** Takes a merged adapter out of w again. */
  unmerge(ctx: VariantContext, a: VariantAdapter, w: KernelArray, record: unknown): void;
}

function allocLike<T extends KernelArray>(like: T, len: number): T {
  return new (like.constructor as { new (n: number): T })(len);
}

/** Gradients of s·(xb·down)·up for upstream g [n, dOut]; t = xb·down [n, r]. */
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

/** Plain LoRA (and rsLoRA, which differs only in scaling): h += s·(xb·down)·up; merge W ← W + ΔW. */
export const LORA_VARIANT: LoraVariant = {
  name: "lora",
  mixedBatch: true,
  mergeReadsUnmerged: false,
  init() {},
  forward(ctx, a, xb, n, h) {
    const t = ctx.gemm(allocLike(xb, n * a.r), xb, a.down.data, n, ctx.dIn, a.r, false, false, 1, 0); // [n, r]
    ctx.addLowRank(h, t, a.up.data, n, a.r, ctx.dOut, a.scaling); // skips exact zeros: up = 0 is bit-exact
    return t;
  },
  backward(ctx, a, cache, xb, n, dH, dXb) {
    lowRankBackward(ctx, a, cache as KernelArray, xb, n, dH, dXb);
    return dH;
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
  norm: KernelArray;
  /** what g rescales: h − bias before this adapter, or xb·W with dropout */
  base: KernelArray;
  low: KernelArray;
  dropped: boolean;
}

/** ‖W0 + ΔW‖ per output column in the weight's dtype (W0: nothing merged). */
function doraNorm(ctx: VariantContext, a: VariantAdapter, w0: KernelArray): KernelArray {
  const v = ctx.delta(a);
  for (let i = 0; i < v.length; i++) v[i] = w0[i]! + v[i]!;
  return ctx.columnNorms(v);
}

/** g = m / ‖W0 + ΔW‖ per output column. */
function doraScale(ctx: VariantContext, a: VariantAdapter, w0: KernelArray): { norm: KernelArray; g: Float64Array } {
  const norm = doraNorm(ctx, a, w0);
  const m = a.magnitude!;
  const g = new Float64Array(ctx.dOut);
  for (let j = 0; j < ctx.dOut; j++) g[j] = m[j]! / norm[j]!;
  return { norm, g };
}

/**
 * DoRA (PEFT use_dora): with V = W0 + s·down·up and g = m/‖V‖_col, h ← h + (g − 1)⊙base + g⊙s·(xb·down)·up where
 * base is the running output without bias (so one DoRA adapter alone gives (m/‖V‖)⊙(x·W + s·x·down·up) + bias),
 * or xb·W when dropout is on (PEFT's choice). ‖V‖ is a constant for gradients (PEFT detaches it) and is taken from
 * the weight with nothing merged (PEFT after PR #3609). m starts at ‖V‖, so g = 1 and a fresh adapter is a no-op.
 */
export const DORA_VARIANT: LoraVariant = {
  name: "dora",
  mixedBatch: false,
  mergeReadsUnmerged: true,
  init(ctx, a) {
    a.magnitude!.set(doraNorm(ctx, a, ctx.unmergedWeight()));
  },
  forward(ctx, a, xb, n, h, dropped): DoraCache {
    const { dIn, dOut, gemm, bias } = ctx;
    const { norm, g } = doraScale(ctx, a, ctx.unmergedWeight());
    let base: KernelArray;
    if (dropped) base = ctx.baseProduct(xb, n);
    else {
      base = h.slice();
      if (bias) for (let k = 0; k < base.length; k++) base[k] = base[k]! - bias[k % dOut]!;
    }
    const t = gemm(allocLike(xb, n * a.r), xb, a.down.data, n, dIn, a.r, false, false, 1, 0); // [n, r]
    // t·up [n, dOut]; an all-zero up gives exact zeros even where t overflowed (the exactly-zero term rule)
    const low = isZeroArray(a.up.data, a.up.data.length)
      ? allocLike(xb, n * dOut)
      : gemm(allocLike(xb, n * dOut), t, a.up.data, n, a.r, dOut, false, false, 1, 0);
    const s = a.scaling;
    for (let k = 0; k < h.length; k++) {
      const gj = g[k % dOut]!;
      const d = (gj - 1) * base[k]! + gj * s * low[k]!;
      if (d !== 0) h[k] = h[k]! + d; // g = 1 and low = 0 add nothing, bit for bit
    }
    return { t, g, norm, base, low, dropped };
  },
  backward(ctx, a, cache, xb, n, dH, dXb) {
    const { t, g, norm, base, low, dropped } = cache as DoraCache;
    const { dOut } = ctx;
    const s = a.scaling;
    const dHg = allocLike(dH, dH.length); // dH ⊙ g
    const dHg1 = allocLike(dH, dH.length); // dH ⊙ (g − 1)
    const dm = a.gradMagnitude!;
    for (let k = 0; k < dH.length; k++) {
      const j = k % dOut;
      const gj = g[j]!;
      dHg[k] = dH[k]! * gj;
      dHg1[k] = dH[k]! * (gj - 1);
      dm[j] = dm[j]! + (dH[k]! * (base[k]! + s * low[k]!)) / norm[j]!; // ∂h/∂m_j = (base + s·low) / ‖V‖_j
    }
    lowRankBackward(ctx, a, t, xb, n, dHg, dXb);
    if (!dropped) return dHg; // h_after = g⊙(h_before − bias) + bias + g⊙s·low
    ctx.baseGradInput(dXb, dHg1, n, 1, 1); // through (g − 1)⊙(xb·W)
    return dH;
  },
  merge(ctx, a, w, w0) {
    const { g } = doraScale(ctx, a, w0);
    const delta = ctx.delta(a);
    eachElement(ctx, (k, j) => {
      w[k] = g[j]! * (w[k]! + delta[k]!); // W ← (m/‖V‖) ⊙ (W + ΔW)
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
  for (let i = 0; i < ctx.dIn; i++) for (let j = 0; j < ctx.dOut; j++) f(ctx.at(i, j), j);
}

/** The variant of an adapter: DoRA when useDora, plain LoRA otherwise (rsLoRA is plain LoRA with another scaling). */
export function variantFor(useDora: boolean): LoraVariant {
  return useDora ? DORA_VARIANT : LORA_VARIANT;
}
