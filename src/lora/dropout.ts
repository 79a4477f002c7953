// Inverted dropout on the LoRA branch input: xb = x ⊙ keep / (1 − p), keep[i] ~ Bernoulli(1 − p) from a seeded
// Rng. x, xb: [n, dIn] row-major; keep: one byte per element, kept for backward.

import type { FloatArray } from "../matrix.js";
import { alloc } from "./base.js";
import type { Rng } from "./rng.js";

/** A dropped-out copy of x and its keep mask. */
export interface DropoutResult<T extends FloatArray> {
  xb: T;
  keep: Uint8Array;
}

/** Draws a keep mask with probability 1 − p per element and returns x ⊙ keep / (1 − p). */
export function dropout<T extends FloatArray>(x: T, p: number, rng: Rng): DropoutResult<T> {
  const xb = alloc(x, x.length);
  const keep = new Uint8Array(x.length);
  const scale = 1 / (1 - p);
  for (let i = 0; i < x.length; i++) {
    if (rng.uniform() >= p) {
      keep[i] = 1;
      xb[i] = x[i]! * scale;
    }
  }
  return { xb, keep };
}

/** dX += keep ⊙ dXb / (1 − p): the gradient through the dropout of dropout(). */
export function dropoutBackward(dX: FloatArray, dXb: FloatArray, keep: Uint8Array, p: number): void {
  const scale = 1 / (1 - p);
  for (let i = 0; i < dX.length; i++) if (keep[i] === 1) dX[i] = dX[i]! + dXb[i]! * scale;
}
