// The LoRA forward pass as data, step by step: frozen path x·W, low-rank path x·B then (x·B)·A, the rank r
// and where it comes from, the scaling, and the combined output. Same validation and arithmetic as
// loraForward (its output is loraForward's, bit for bit); every matrix is returned as number[][].

import { gemm, isZeroArray } from "../kernels/select.js";
import { type FloatArray, toNested } from "../matrix.js";
import { type LoraForwardOptions, resolveScaling, runLora } from "./forward.js";
import { planLora } from "./plan.js";
import { readScalingRule, type ScalingRule, scalingFormula } from "./variants.js";

/** Every intermediate of one LoRA forward pass, in the order a learner follows. */
export interface LoraExplanation {
  dims: { n: number; dIn: number; dOut: number; r: number };
  inputs: { x: number[][]; W: number[][]; B: number[][]; A: number[][]; alpha: number };
  /** Step 1, frozen path: x·W, [n, dOut]. */
  frozen: number[][];
  /** Step 2, low-rank path: x·B ([n, r]) then (x·B)·A ([n, dOut]). */
  lowRank: { xB: number[][]; xBA: number[][] };
  /** Step 3: r and where it came from. */
  rank: { r: number; source: string };
  /** Step 4: the scaling factor and how it was obtained. */
  scaling: { alpha: number; r: number; rule: ScalingRule; formula: string; value: number; overridden: boolean };
  /** Step 5: s·(x·B)·A and h = x·W + s·(x·B)·A. */
  combined: { scaledLowRank: number[][]; output: number[][] };
}

/**
 * Runs the LoRA forward pass and returns every intermediate as data (see LoraExplanation). Takes the same
 * arguments as loraForward and throws the same errors.
 * @example explainLoraForward([[2]], [[3]], [[1]], [[1]], 4).combined.output // [[14]]
 */
export function explainLoraForward(
  x: unknown,
  W: unknown,
  B: unknown,
  A: unknown,
  alpha: number,
  options: LoraForwardOptions = {},
): LoraExplanation {
  const op = "explainLoraForward";
  const p = planLora(op, x, W, B, A, { down: "B", up: "A" });
  const s = resolveScaling(op, alpha, p.r, options);
  const rule = readScalingRule(op, options.scaling);
  const { n, dIn, dOut, r } = p;
  const Ctor = p.xData.constructor as { new (len: number): FloatArray };
  const frozen = gemm(new Ctor(n * dOut), p.xData, p.wData, n, dIn, dOut, false, false, 1, 0);
  const xB = gemm(new Ctor(n * r), p.xData, p.downData, n, dIn, r, false, false, 1, 0);
  // the exactly-zero term rule (forward.ts): an all-zero A or scaling 0 skips the term, shown as exact zeros
  const skipped = s === 0 || isZeroArray(p.upData, r * dOut);
  const xBA = isZeroArray(p.upData, r * dOut)
    ? new Ctor(n * dOut)
    : gemm(new Ctor(n * dOut), xB, p.upData, n, r, dOut, false, false, 1, 0);
  const h = runLora(new Ctor(n * dOut), p.xData, p.wData, p.downData, p.upData, s, n, dIn, dOut, r);
  const nest = (data: FloatArray, rows: number, cols: number) => toNested({ data, rows, cols });
  return {
    dims: { n, dIn, dOut, r },
    inputs: {
      x: nest(p.xData, n, dIn),
      W: nest(p.wData, dIn, dOut),
      B: nest(p.downData, dIn, r),
      A: nest(p.upData, r, dOut),
      alpha,
    },
    frozen: nest(frozen, n, dOut),
    lowRank: { xB: nest(xB, n, r), xBA: nest(xBA, n, dOut) },
    rank: { r, source: `columns of B [${dIn}, ${r}] = rows of A [${r}, ${dOut}]` },
    scaling: { alpha, r, rule, formula: scalingFormula(rule), value: s, overridden: options.scale !== undefined },
    combined: {
      scaledLowRank: nest(skipped ? new Ctor(n * dOut) : (xBA.map((v) => s * v) as FloatArray), n, dOut),
      output: nest(h, n, dOut),
    },
  };
}
