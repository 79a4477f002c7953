// Scaling rules of the LoRA variants. Standard LoRA scales the low-rank term by alpha / r; rsLoRA
// (rank-stabilised LoRA, PEFT's use_rslora) by alpha / √r.

import { ArgumentError } from "../errors.js";

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
