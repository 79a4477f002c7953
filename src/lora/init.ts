// Initialisers for the low-rank matrices, filling row-major typed arrays in place from a seeded Rng.
// down: [dIn, r] ~ U(−1/√dIn, +1/√dIn) (PyTorch kaiming_uniform_(a=√5), PEFT's default) or N(0, (1/r)²)
// ("gaussian"); up: [r, dOut] = 0 for both, so a fresh adapter leaves the layer's output bit for bit unchanged.

import type { FloatArray } from "../matrix.js";
import type { Rng } from "./rng.js";

/** How a new adapter's matrices are filled: PEFT's default, "gaussian", or "none" (both random, not a no-op). */
export type InitKind = "default" | "gaussian" | "none";

export const INIT_KINDS: readonly InitKind[] = ["default", "gaussian", "none"];

/** Fills out with U(−1/√fanIn, +1/√fanIn) (kaiming_uniform_ with a = √5). Returns out. */
export function kaimingUniform<T extends FloatArray>(out: T, fanIn: number, rng: Rng): T {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.uniform() - 1) * bound;
  return out;
}

/** Fills out with N(0, std²). Returns out. */
export function gaussian<T extends FloatArray>(out: T, std: number, rng: Rng): T {
  for (let i = 0; i < out.length; i++) out[i] = std * rng.normal();
  return out;
}

/** Fills out with zeros. Returns out. */
export function zeros<T extends FloatArray>(out: T): T {
  return out.fill(0) as T;
}

/**
 * Fills down [dIn, r] and up [r, dOut] for an init kind: "default" → down kaiming-uniform, up 0; "gaussian" → down
 * N(0, 1/r²), up 0; "none" → both kaiming-uniform (down with fan-in dIn, up with fan-in r), a non-zero delta
 * for debugging and merge tests.
 */
export function initLowRank(kind: InitKind, down: FloatArray, up: FloatArray, dIn: number, r: number, rng: Rng): void {
  if (kind === "gaussian") gaussian(down, 1 / r, rng);
  else kaimingUniform(down, dIn, rng);
  if (kind === "none") kaimingUniform(up, r, rng);
  else zeros(up);
}
